import CJPEG

/// JPEG through libjpeg-turbo's TurboJPEG API. The classic libjpeg API needs an error_exit
/// handler that longjmps, which must never cross Swift frames; TurboJPEG keeps its
/// setjmp/longjmp inside the C library and returns error codes. Its defaults (accurate
/// integer DCT, fancy upsampling) are libjpeg's, the same decoding Pillow does.
enum JPEGCodec {
    /// Decodes baseline and progressive JPEGs in YCbCr, RGB, greyscale, CMYK or YCCK to RGB.
    ///
    /// libjpeg warnings (corrupt entropy data it can decode around) are accepted, as Pillow
    /// accepts them; data that ends before its end-of-image marker is rejected as truncated,
    /// as Pillow does, instead of coming back with its missing part grey. So is data whose
    /// scans end before every pixel the header declares is decoded (libjpeg's "premature
    /// end"), which Pillow would pad silently.
    ///
    /// Before anything is allocated the header's size is checked against `maximumPixels`, and
    /// against the data: Huffman coding spends at least one bit on each 8x8 block of the
    /// first component, so a header that declares more blocks than the file has bits is a lie.
    static func decode(_ bytes: [UInt8], source: String, maximumPixels: Int = ImageSize.defaultMaximumDecodedPixels)
        throws -> (width: Int, height: Int, rgb: [UInt8], exif: ArraySlice<UInt8>?) {
        guard let handle = tjInitDecompress() else {
            throw ImageError.corrupt(source: source, format: .jpeg, detail: "TurboJPEG could not start: out of memory?")
        }
        defer { tjDestroy(handle) }
        let structure = JPEGStructure(bytes)
        func failure() -> ImageError {
            structure.isTruncated
                ? .truncated(source: source, format: .jpeg)
                : .corrupt(source: source, format: .jpeg, detail: String(cString: tjGetErrorStr2(handle)))
        }

        return try bytes.withUnsafeBufferPointer { input in
            var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
            let header = tjDecompressHeader3(handle, input.baseAddress, UInt(input.count), &width, &height, &subsampling, &colorspace)
            // A header cut short can "succeed" with a 0x0 size.
            if header != 0 || (structure.isTruncated && (width <= 0 || height <= 0)) {
                throw failure()
            }
            let size = ImageSize(width: Int(width), height: Int(height))
            try size.validateDecoded(source, maximumPixels: maximumPixels)
            let blocks = ((size.width + 7) / 8) * ((size.height + 7) / 8)
            if !structure.isArithmeticCoded, blocks / 8 > bytes.count {
                throw ImageError.corrupt(source: source, format: .jpeg,
                                         detail: "its header declares \(size) pixels, more than its \(bytes.count) bytes can encode")
            }
            // libjpeg cannot convert CMYK to RGB itself; take the inks and convert below.
            let isCMYK = colorspace == Int32(TJCS_CMYK.rawValue) || colorspace == Int32(TJCS_YCCK.rawValue)
            let pixelFormat = isCMYK ? TJPF_CMYK : TJPF_RGB
            let channels = isCMYK ? 4 : 3
            var samples = [UInt8](repeating: 0, count: size.pixelCount * channels)
            let status = samples.withUnsafeMutableBufferPointer { out in
                // LIMITSCANS refuses progressive files with absurd scan counts, a known way
                // to make a tiny file take minutes to decode.
                tjDecompress2(handle, input.baseAddress, UInt(input.count), out.baseAddress, width, 0, height,
                              Int32(pixelFormat.rawValue), TJFLAG_LIMITSCANS)
            }
            if status != 0 && (tjGetErrorCode(handle) == Int32(TJERR_FATAL.rawValue) || structure.isTruncated) {
                throw failure()
            }
            if status != 0, String(cString: tjGetErrorStr2(handle)).lowercased().contains("premature end") {
                // The scans stop short of the declared size: libjpeg filled the rest with grey.
                throw ImageError.corrupt(source: source, format: .jpeg,
                                         detail: "its data ends before all \(size) pixels its header declares (libjpeg: \(String(cString: tjGetErrorStr2(handle))))")
            }
            let rgb = isCMYK ? rgbFromAdobeCMYK(samples) : samples
            return (size.width, size.height, rgb, structure.exif)
        }
    }

    /// Pillow's CMYK-to-RGB conversion for a CMYK JPEG. Like Pillow it assumes Adobe's
    /// convention (inks stored inverted), which is what Photoshop and Pillow itself write and
    /// nearly every CMYK JPEG in the wild uses; then R = (255 - C)(255 - K) / 255, rounded
    /// the way Pillow's integer code rounds.
    static func rgbFromAdobeCMYK(_ cmyk: [UInt8]) -> [UInt8] {
        var rgb = [UInt8](repeating: 0, count: cmyk.count / 4 * 3)
        for pixel in 0..<cmyk.count / 4 {
            // Stored values are inverted: the ink amount is 255 - stored.
            let notK = Int(cmyk[4 * pixel + 3])
            for channel in 0..<3 {
                let ink = 255 - Int(cmyk[4 * pixel + channel])
                let product = ink * notK + 128   // MULDIV255: a / 255 rounded, in shifts
                let scaled = ((product >> 8) + product) >> 8
                rgb[3 * pixel + channel] = UInt8(clamping: notK - scaled)
            }
        }
        return rgb
    }

    /// A baseline JPEG of `image` with 4:2:0 chroma subsampling (Pillow's default).
    static func encode(_ image: RGBImage, quality: Int) throws -> [UInt8] {
        guard let handle = tjInitCompress() else {
            throw ImageError.encodingFailed(format: .jpeg, detail: "TurboJPEG could not start: out of memory?")
        }
        defer { tjDestroy(handle) }
        var output: UnsafeMutablePointer<UInt8>? = nil
        var outputSize: UInt = 0
        let status = image.pixels.withUnsafeBufferPointer { pixels in
            tjCompress2(handle, pixels.baseAddress, Int32(image.width), 0, Int32(image.height), Int32(TJPF_RGB.rawValue),
                        &output, &outputSize, Int32(TJSAMP_420.rawValue), Int32(quality), 0)
        }
        defer { if let output { tjFree(output) } }
        guard status == 0, let output else {
            throw ImageError.encodingFailed(format: .jpeg, detail: String(cString: tjGetErrorStr2(handle)))
        }
        return Array(UnsafeBufferPointer(start: output, count: Int(outputSize)))
    }
}
