extension RGBImage {
    /// The image encoded as an 8-bit RGB PNG or a baseline 4:2:0 JPEG (no metadata: pixels
    /// are always stored upright).
    public func encoded(as format: ImageFormat, jpegQuality: Int = 95) throws -> [UInt8] {
        switch format {
        case .png:
            return try PNGCodec.encode(self)
        case .jpeg:
            guard (1...100).contains(jpegQuality) else { throw ImageError.invalidJPEGQuality(jpegQuality) }
            return try JPEGCodec.encode(self, quality: jpegQuality)
        }
    }

    /// Writes the image to `path`, as PNG or JPEG by its extension (.png, .jpg, .jpeg).
    ///
    /// The write is atomic: the image is encoded in memory first, then written to a
    /// temporary file beside `path`, flushed to disk and renamed over it. A failed or killed
    /// run leaves `path` as it was (absent, or the previous file), never half-written.
    public func write(to path: String, jpegQuality: Int = 95) throws {
        let format = try ImageFormat(outputPath: path)
        let bytes = try encoded(as: format, jpegQuality: jpegQuality)
        try FileIO.writeAtomically(path) { emit in try emit(bytes) }
    }
}
