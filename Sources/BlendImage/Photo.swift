/// A photo as read from disk with what ``RGBImage`` leaves out: its transparency, its
/// colour profile and, for a 16-bit PNG, its 16-bit samples. The colour samples are the ones stored in the file (under transparent
/// pixels too); EXIF orientation is applied as ``RGBImage/init(encoded:source:alpha:appliesExifOrientation:)``
/// applies it.
public struct Photo: Sendable, Hashable {
    /// The stored colour of every pixel.
    public var image: RGBImage
    /// One opacity byte per pixel (255 = opaque), row-major; nil when the file has no
    /// transparency (no alpha channel or tRNS, or every pixel fully opaque).
    public var alpha: [UInt8]?
    /// The embedded ICC profile, if any.
    public var colorProfile: ColorProfile?
    /// A 16-bit PNG's samples as stored; nil for 8-bit files and JPEGs. `image` and `alpha`
    /// hold them scaled to 8 bits (for the model and previews); a photo with deep samples is
    /// written back at 16 bits (``encodedPNG()``), so its untouched pixels keep every bit.
    public var deep: DeepSamples?

    /// 16 for a photo with ``deep`` samples, else 8.
    public var bitsPerChannel: Int { deep == nil ? 8 : 16 }

    public init(image: RGBImage, alpha: [UInt8]? = nil, colorProfile: ColorProfile? = nil, deep: DeepSamples? = nil) throws {
        if let alpha, alpha.count != image.width * image.height {
            throw ImageError.pixelCountMismatch(width: image.width, height: image.height, byteCount: alpha.count)
        }
        if let deep, deep.rgb.count != 3 * image.width * image.height
            || (deep.alpha.map { $0.count != image.width * image.height } ?? false) {
            throw ImageError.pixelCountMismatch(width: image.width, height: image.height, byteCount: deep.rgb.count)
        }
        self.image = image
        self.alpha = alpha.flatMap { $0.allSatisfy { $0 == 255 } ? nil : $0 }
        self.colorProfile = colorProfile
        self.deep = deep
    }

    /// Reads a PNG or JPEG file (the format comes from its first bytes).
    public init(contentsOf path: String, maximumPixels: Int = ImageSize.defaultMaximumDecodedPixels) throws {
        try self.init(encoded: FileIO.contents(of: path), source: path, maximumPixels: maximumPixels)
    }

    /// Decodes PNG or JPEG bytes; `source` names them in error messages. Images larger than
    /// `maximumPixels` are refused from their header (`ImageError.exceedsPixelLimit`).
    public init(encoded bytes: [UInt8], source: String = "image data",
                maximumPixels: Int = ImageSize.defaultMaximumDecodedPixels) throws {
        switch ImageFormat.detect(bytes) {
        case .png:
            let decoded = try PNGCodec.decode(bytes, source: source, maximumPixels: maximumPixels)
            let count = decoded.width * decoded.height
            var rgb = decoded.samples, alpha: [UInt8]?
            if decoded.hasAlpha {
                rgb = RGBImage.removeAlpha(decoded.samples, .drop)
                alpha = (0..<count).map { decoded.samples[4 * $0 + 3] }
            }
            var deep: DeepSamples?
            if PNGCodec.bitDepth(bytes) == 16 {
                let wide = try PNGCodec.decode16(PNGCodec.withoutColorSpaceChunks(bytes), source: source)
                deep = DeepSamples(interleaved: wide.samples, hasAlpha: wide.hasAlpha, isGrey: wide.isGrey)
            }
            try self.init(image: RGBImage(validatedWidth: decoded.width, height: decoded.height, pixels: rgb),
                          alpha: alpha, colorProfile: ColorProfile.fromPNG(bytes), deep: deep)
        case .jpeg:
            try self.init(image: RGBImage(encoded: bytes, source: source, maximumPixels: maximumPixels),
                          colorProfile: ColorProfile.fromJPEG(JPEGStructure(bytes).iccSegments))
        case nil:
            throw ImageError.unsupportedFormat(source: source, detected: ImageFormat.describeUnsupported(bytes))
        }
    }

    public var size: ImageSize { image.size }

    /// The photo with `image`'s pixels (same size), keeping the alpha and colour profile (and
    /// dropping 16-bit samples, which would no longer match).
    public func replacingImage(_ image: RGBImage) throws -> Photo {
        guard image.size == size else {
            throw MaskError.sizeMismatch(mask: image.size, expected: size, operation: "Photo.replacingImage")
        }
        return try Photo(image: image, alpha: alpha, colorProfile: colorProfile)
    }

    /// The photo as a PNG: RGB, or RGBA when it has transparency, with its colour profile
    /// (if any) in an iCCP chunk; 16 bits per channel when it has ``deep`` samples.
    public func encodedPNG() throws -> [UInt8] {
        if let deep {
            let png = try PNGCodec.encode16(width: image.width, height: image.height, samples: deep.interleaved,
                                            hasAlpha: deep.alpha != nil)
            return try colorProfile?.embedded(inPNG: png) ?? png
        }
        var samples = image.pixels
        if let alpha {
            samples = [UInt8](repeating: 0, count: 4 * alpha.count)
            for i in 0..<alpha.count {
                samples[4 * i] = image.pixels[3 * i]
                samples[4 * i + 1] = image.pixels[3 * i + 1]
                samples[4 * i + 2] = image.pixels[3 * i + 2]
                samples[4 * i + 3] = alpha[i]
            }
        }
        let png = try PNGCodec.encode(width: image.width, height: image.height, samples: samples, hasAlpha: alpha != nil)
        return try colorProfile?.embedded(inPNG: png) ?? png
    }

    /// Writes the photo as PNG (see ``encodedPNG()``), atomically, like ``RGBImage/write(to:jpegQuality:)``.
    /// - Throws: ``ImageError/unsupportedOutputExtension(path:)`` unless `path` ends in .png.
    public func writePNG(to path: String) throws {
        guard try ImageFormat(outputPath: path) == .png else { throw ImageError.unsupportedOutputExtension(path: path) }
        let bytes = try encodedPNG()
        try FileIO.writeAtomically(path) { emit in try emit(bytes) }
    }
}

/// The samples of a 16-bit PNG, as stored: 0 to 65535 per channel.
public struct DeepSamples: Sendable, Hashable {
    /// R, G, B of every pixel, row-major; a grey file's grey in all three.
    public var rgb: [UInt16]
    /// One opacity per pixel (65535 = opaque); nil when the file has no alpha channel or tRNS.
    public var alpha: [UInt16]?
    /// The file was grey (colour type 0 or 4); it is written back as RGB, since an edit adds colour.
    public var isGrey: Bool

    public init(rgb: [UInt16], alpha: [UInt16]? = nil, isGrey: Bool = false) {
        self.rgb = rgb
        self.alpha = alpha
        self.isGrey = isGrey
    }

    /// From interleaved RGB or RGBA samples.
    init(interleaved samples: [UInt16], hasAlpha: Bool, isGrey: Bool) {
        if hasAlpha {
            let count = samples.count / 4
            var rgb = [UInt16](repeating: 0, count: 3 * count), alpha = [UInt16](repeating: 0, count: count)
            for i in 0..<count {
                rgb[3 * i] = samples[4 * i]
                rgb[3 * i + 1] = samples[4 * i + 1]
                rgb[3 * i + 2] = samples[4 * i + 2]
                alpha[i] = samples[4 * i + 3]
            }
            self.init(rgb: rgb, alpha: alpha, isGrey: isGrey)
        } else {
            self.init(rgb: samples, isGrey: isGrey)
        }
    }

    /// RGB, or RGBA with alpha, interleaved, as PNG stores them.
    var interleaved: [UInt16] {
        guard let alpha else { return rgb }
        var out = [UInt16](repeating: 0, count: 4 * alpha.count)
        for i in 0..<alpha.count {
            out[4 * i] = rgb[3 * i]
            out[4 * i + 1] = rgb[3 * i + 1]
            out[4 * i + 2] = rgb[3 * i + 2]
            out[4 * i + 3] = alpha[i]
        }
        return out
    }
}
