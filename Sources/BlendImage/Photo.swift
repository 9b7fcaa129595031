/// A photo as read from disk with what ``RGBImage`` leaves out: its transparency and its
/// colour profile. The colour samples are the ones stored in the file (under transparent
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

    public init(image: RGBImage, alpha: [UInt8]? = nil, colorProfile: ColorProfile? = nil) throws {
        if let alpha, alpha.count != image.width * image.height {
            throw ImageError.pixelCountMismatch(width: image.width, height: image.height, byteCount: alpha.count)
        }
        self.image = image
        self.alpha = alpha.flatMap { $0.allSatisfy { $0 == 255 } ? nil : $0 }
        self.colorProfile = colorProfile
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
            try self.init(image: RGBImage(validatedWidth: decoded.width, height: decoded.height, pixels: rgb),
                          alpha: alpha, colorProfile: ColorProfile.fromPNG(bytes))
        case .jpeg:
            try self.init(image: RGBImage(encoded: bytes, source: source, maximumPixels: maximumPixels),
                          colorProfile: ColorProfile.fromJPEG(JPEGStructure(bytes).iccSegments))
        case nil:
            throw ImageError.unsupportedFormat(source: source, detected: ImageFormat.describeUnsupported(bytes))
        }
    }

    public var size: ImageSize { image.size }

    /// The photo with `image`'s pixels (same size), keeping the alpha and colour profile.
    public func replacingImage(_ image: RGBImage) throws -> Photo {
        guard image.size == size else {
            throw MaskError.sizeMismatch(mask: image.size, expected: size, operation: "Photo.replacingImage")
        }
        return try Photo(image: image, alpha: alpha, colorProfile: colorProfile)
    }

    /// The photo as a PNG: RGB, or RGBA when it has transparency, with its colour profile
    /// (if any) in an iCCP chunk.
    public func encodedPNG() throws -> [UInt8] {
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
