/// What to do with an alpha channel (PNG RGBA, grey+alpha, or a palette with transparency).
public enum AlphaHandling: Sendable, Hashable {
    /// Ignore alpha: every pixel keeps the colour stored in the file, even where it is fully
    /// transparent. This is Pillow's `convert("RGB")`, which the reference applies to both
    /// the photo and the mask, so it is the default.
    case drop
    /// Blend over a solid colour in 8-bit sRGB: `(c·a + background·(255 − a)) / 255`,
    /// rounded to nearest. What a viewer shows on that background.
    case composite(over: RGBColor)
}

extension RGBImage {
    /// Reads a PNG or JPEG file; the format comes from the file's first bytes, never from
    /// its name. See ``init(encoded:source:alpha:appliesExifOrientation:)``.
    public init(contentsOf path: String, alpha: AlphaHandling = .drop, appliesExifOrientation: Bool = true,
                maximumPixels: Int = ImageSize.defaultMaximumDecodedPixels) throws {
        let bytes = try FileIO.contents(of: path)
        try self.init(encoded: bytes, source: path, alpha: alpha, appliesExifOrientation: appliesExifOrientation,
                      maximumPixels: maximumPixels)
    }

    /// Decodes PNG or JPEG bytes.
    ///
    /// - PNG: every colour type and bit depth. Grey is replicated to R, G and B, palettes are
    ///   expanded, 16-bit samples are scaled to 8 bits (rounded; Pillow keeps the high byte,
    ///   at most 1 lower). Colour-space chunks (gAMA, cHRM, sRGB, iCCP) are ignored, as
    ///   Pillow ignores them: the samples are used as stored.
    /// - JPEG: YCbCr, RGB, greyscale and CMYK/YCCK (Adobe inverted inks, as Pillow assumes).
    ///   With `appliesExifOrientation` (the default) an Exif Orientation tag is applied, so
    ///   the image is upright as photo viewers show it. (The reference's `Image.open` ignores
    ///   it and would edit a phone photo lying on its side.)
    ///
    /// - Parameters:
    ///   - source: names the data in error messages (the path, for files).
    ///   - maximumPixels: the largest image to decode; checked from the header, before
    ///     anything is allocated (throws `ImageError.exceedsPixelLimit`).
    public init(encoded bytes: [UInt8], source: String = "image data", alpha: AlphaHandling = .drop,
                appliesExifOrientation: Bool = true, maximumPixels: Int = ImageSize.defaultMaximumDecodedPixels) throws {
        switch ImageFormat.detect(bytes) {
        case .png:
            let decoded = try PNGCodec.decode(bytes, source: source, maximumPixels: maximumPixels)
            let rgb = decoded.hasAlpha ? RGBImage.removeAlpha(decoded.samples, alpha) : decoded.samples
            self.init(validatedWidth: decoded.width, height: decoded.height, pixels: rgb)
        case .jpeg:
            let decoded = try JPEGCodec.decode(bytes, source: source, maximumPixels: maximumPixels)
            let image = RGBImage(validatedWidth: decoded.width, height: decoded.height, pixels: decoded.rgb)
            if appliesExifOrientation, let exif = decoded.exif, let orientation = ExifOrientation(exifPayload: exif) {
                self = orientation.apply(to: image)
            } else {
                self = image
            }
        case nil:
            throw ImageError.unsupportedFormat(source: source, detected: ImageFormat.describeUnsupported(bytes))
        }
    }

    /// RGB bytes from RGBA samples.
    static func removeAlpha(_ rgba: [UInt8], _ handling: AlphaHandling) -> [UInt8] {
        let count = rgba.count / 4
        var rgb = [UInt8](repeating: 0, count: 3 * count)
        switch handling {
        case .drop:
            for i in 0..<count {
                rgb[3 * i] = rgba[4 * i]
                rgb[3 * i + 1] = rgba[4 * i + 1]
                rgb[3 * i + 2] = rgba[4 * i + 2]
            }
        case let .composite(background):
            let bg = [Int(background.red), Int(background.green), Int(background.blue)]
            for i in 0..<count {
                let a = Int(rgba[4 * i + 3])
                for c in 0..<3 {
                    rgb[3 * i + c] = UInt8((Int(rgba[4 * i + c]) * a + bg[c] * (255 - a) + 127) / 255)
                }
            }
        }
        return rgb
    }
}
