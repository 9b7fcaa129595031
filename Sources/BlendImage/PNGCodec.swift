import CPNG
import CPNG16

/// PNG through libpng's simplified API (`png_image_*`). Unlike the classic API, whose error
/// handler must longjmp out of libpng (which would skip Swift frames and leak or corrupt
/// them), it catches errors itself and reports them in `png_image.message`.
enum PNGCodec {
    /// 8-bit samples: RGB, or RGBA when the file has alpha (an alpha channel or tRNS).
    struct Decoded {
        var width: Int
        var height: Int
        var hasAlpha: Bool
        var samples: [UInt8]
    }

    /// Decodes any valid PNG: every colour type, bit depths 1 to 16, palettes with or without
    /// transparency, interlaced or not. 16-bit samples are scaled to 8 bits, rounded. The
    /// samples are taken as they are stored, as Pillow takes them: colour-space chunks are
    /// not applied (see ``withoutColorSpaceChunks(_:)``).
    ///
    /// Before anything is allocated the header's size is checked against `maximumPixels`, and
    /// against the file: the smallest PNG pixels (1-bit grey) take `height * (1 + width / 8)`
    /// bytes before compression, which DEFLATE shrinks at most 1032 times.
    static func decode(_ bytes: [UInt8], source: String, maximumPixels: Int = ImageSize.defaultMaximumDecodedPixels) throws -> Decoded {
        try withoutColorSpaceChunks(bytes).withUnsafeBytes { raw -> Decoded in
            var image = png_image()
            image.version = png_uint_32(PNG_IMAGE_VERSION)
            // The reader keeps pointing into `raw`, so the whole read stays inside this closure.
            guard png_image_begin_read_from_memory(&image, raw.baseAddress, raw.count) != 0 else {
                let detail = message(of: image)
                png_image_free(&image)
                throw failure(bytes, source: source, detail: detail)
            }
            let size = ImageSize(width: Int(image.width), height: Int(image.height))
            do {
                try size.validateDecoded(source, maximumPixels: maximumPixels)
                let smallestRaw = size.height * (1 + (size.width + 7) / 8)
                guard smallestRaw / 1032 <= bytes.count else {
                    throw ImageError.corrupt(source: source, format: .png,
                                             detail: "its header declares \(size) pixels, more than its \(bytes.count) bytes can encode")
                }
            } catch {
                png_image_free(&image)
                throw error
            }
            // Without this libpng takes 16-bit samples with no gAMA/sRGB chunk (and those
            // chunks are removed above) as linear light and gamma-encodes them on the way to
            // 8 bits, which brightens the image. Pillow treats them as sRGB, like 8-bit ones.
            image.flags |= png_uint_32(PNG_IMAGE_FLAG_16BIT_sRGB)
            let hasAlpha = image.format & png_uint_32(PNG_FORMAT_FLAG_ALPHA) != 0
            image.format = png_uint_32(PNG_FORMAT_FLAG_COLOR) | (hasAlpha ? png_uint_32(PNG_FORMAT_FLAG_ALPHA) : 0)
            let channels = hasAlpha ? 4 : 3
            var samples = [UInt8](repeating: 0, count: size.pixelCount * channels)
            let ok = samples.withUnsafeMutableBytes { out in
                // With an 8-bit output format that keeps alpha there is nothing to composite,
                // so no background colour is needed; finish_read frees the png_image.
                png_image_finish_read(&image, nil, out.baseAddress, png_int_32(size.width * channels), nil)
            }
            guard ok != 0 else {
                let detail = message(of: image)
                png_image_free(&image)
                throw failure(bytes, source: source, detail: detail)
            }
            return Decoded(width: size.width, height: size.height, hasAlpha: hasAlpha, samples: samples)
        }
    }

    /// An 8-bit RGB PNG of `image`.
    static func encode(_ image: RGBImage) throws -> [UInt8] {
        try encode(width: image.width, height: image.height, samples: image.pixels, hasAlpha: false)
    }

    /// An 8-bit RGB (or RGBA, with `hasAlpha`) PNG of interleaved `samples`.
    static func encode(width: Int, height: Int, samples: [UInt8], hasAlpha: Bool) throws -> [UInt8] {
        let channels = hasAlpha ? 4 : 3
        func header() -> png_image {
            var png = png_image()
            png.version = png_uint_32(PNG_IMAGE_VERSION)
            png.width = png_uint_32(width)
            png.height = png_uint_32(height)
            png.format = png_uint_32(PNG_FORMAT_FLAG_COLOR) | (hasAlpha ? png_uint_32(PNG_FORMAT_FLAG_ALPHA) : 0)
            return png
        }
        // A first guess that fits nearly every image (deflate's worst case is the raw data plus
        // a few bytes per 16 KiB block, plus a filter byte per row and the chunk headers); if
        // libpng needs more it says how much and the second pass uses that.
        var capacity = samples.count + height + samples.count / 1000 + 4096
        for _ in 0..<2 {
            var png = header()
            var output = [UInt8](repeating: 0, count: capacity)
            var written = png_alloc_size_t(capacity)
            let ok = samples.withUnsafeBytes { pixels in
                output.withUnsafeMutableBytes { out in
                    png_image_write_to_memory(&png, out.baseAddress, &written, 0, pixels.baseAddress,
                                              png_int_32(channels * width), nil)
                }
            }
            if ok != 0 {
                output.removeSubrange(Int(written)...)
                return output
            }
            let detail = message(of: png)
            png_image_free(&png)
            guard Int(written) > capacity else {
                throw ImageError.encodingFailed(format: .png, detail: detail)
            }
            capacity = Int(written)
        }
        throw ImageError.encodingFailed(format: .png, detail: "libpng asked for a growing output buffer")
    }

    /// 16-bit samples as stored, RGB or RGBA (grey expanded to R = G = B; tRNS as alpha).
    struct Decoded16 {
        var width: Int
        var height: Int
        var hasAlpha: Bool
        var isGrey: Bool
        var samples: [UInt16]
    }

    /// The bit depth in the IHDR chunk (byte 24 of the file), nil when the header is cut.
    static func bitDepth(_ bytes: [UInt8]) -> Int? {
        bytes.count > 24 && bytes[12..<16].elementsEqual("IHDR".utf8) ? Int(bytes[24]) : nil
    }

    /// A 16-bit PNG's samples exactly as stored (no gamma or colour conversion), through
    /// `CPNG16`. Call after ``decode(_:source:maximumPixels:)`` has read the same bytes, which
    /// checks the size limit and the data.
    static func decode16(_ bytes: [UInt8], source: String) throws -> Decoded16 {
        var samples: UnsafeMutablePointer<UInt16>?
        var width: UInt32 = 0, height: UInt32 = 0
        var channels: Int32 = 0, isGrey: Int32 = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = bytes.withUnsafeBufferPointer { data in
            blend_png16_decode(data.baseAddress, data.count, &samples, &width, &height, &channels, &isGrey, &message, message.count)
        }
        guard status == 0, let samples else {
            throw failure(bytes, source: source, detail: String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        defer { blend_png16_free(samples) }
        let count = Int(width) * Int(height) * Int(channels)
        return Decoded16(width: Int(width), height: Int(height), hasAlpha: channels == 4, isGrey: isGrey != 0,
                         samples: Array(UnsafeBufferPointer(start: samples, count: count)))
    }

    /// A 16-bit PNG of interleaved `samples`: RGB, or RGBA with `hasAlpha`; with `grey`, one
    /// grey sample (and alpha) per pixel.
    static func encode16(width: Int, height: Int, samples: [UInt16], hasAlpha: Bool, grey: Bool = false) throws -> [UInt8] {
        let channels = (grey ? 1 : 3) + (hasAlpha ? 1 : 0)
        guard samples.count == width * height * channels else {
            throw ImageError.pixelCountMismatch(width: width, height: height, byteCount: samples.count)
        }
        var png: UnsafeMutablePointer<UInt8>?
        var size = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = samples.withUnsafeBufferPointer { data in
            blend_png16_encode(data.baseAddress, UInt32(width), UInt32(height), Int32(channels), &png, &size, &message, message.count)
        }
        guard status == 0, let png else {
            throw ImageError.encodingFailed(format: .png, detail: String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        defer { blend_png16_free(png) }
        return Array(UnsafeBufferPointer(start: png, count: size))
    }

    static func message(of image: png_image) -> String {
        withUnsafeBytes(of: image.message) { raw in
            let text = String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            return text.isEmpty ? "libpng reported no detail" : text
        }
    }

    /// A decoding failure as the most useful error: truncation if the chunk structure runs off
    /// the end of the data (libpng's own message for that is cryptic), corrupt otherwise.
    static func failure(_ bytes: [UInt8], source: String, detail: String) -> ImageError {
        isTruncated(bytes) ? .truncated(source: source, format: .png) : .corrupt(source: source, format: .png, detail: detail)
    }

    /// The PNG without its gAMA, cHRM, sRGB and iCCP chunks.
    ///
    /// The simplified API colour-manages: given a gAMA other than sRGB's it converts the
    /// samples to sRGB, so a file marked linear would come out much brighter than the same
    /// file in Pillow, which ignores these chunks, and the model would see other pixels than
    /// in the reference. Without them libpng assumes sRGB and passes the samples through.
    /// Data with a broken chunk structure is returned as is, for the decoder to report.
    static func withoutColorSpaceChunks(_ bytes: [UInt8]) -> [UInt8] {
        let dropped: Set<String> = ["gAMA", "cHRM", "sRGB", "iCCP"]
        let structure = PNGChunks(bytes)
        guard !structure.isCut, structure.chunks.contains(where: { dropped.contains($0.type) }) else { return bytes }
        var kept = Array(bytes.prefix(ImageFormat.pngSignature.count))
        for chunk in structure.chunks where !dropped.contains(chunk.type) { kept += bytes[chunk.whole] }
        return kept
    }

    /// Whether the chunk sequence (length, type, data, CRC) ends before an IEND chunk.
    static func isTruncated(_ bytes: [UInt8]) -> Bool { !PNGChunks(bytes).reachesEnd }
}
