import CJPEG

extension ImageSize {
    /// The pixel size a PNG or JPEG states in its header, read without decoding the image:
    /// how a server checks an upload against a megapixel limit before it allocates anything.
    ///
    /// PNG: the IHDR chunk, which the format requires first. JPEG: the frame header, found by
    /// TurboJPEG's header reader. The size is the stored one: an Exif orientation that turns
    /// the photo swaps width and height but not the pixel count.
    ///
    /// - Throws: ``ImageError/unsupportedFormat(source:detected:)`` for other data,
    ///   ``ImageError/truncated(source:format:)`` or ``ImageError/corrupt(source:format:detail:)``
    ///   when no valid header is there, ``ImageError/invalidSize(width:height:context:)`` for a
    ///   zero side.
    public init(header bytes: [UInt8], source: String = "image data") throws {
        switch ImageFormat.detect(bytes) {
        case .png:
            // Signature (8), chunk length (4), "IHDR" (4), width (4), height (4), ...
            guard bytes.count >= 24 else { throw ImageError.truncated(source: source, format: .png) }
            guard bytes[12..<16].elementsEqual("IHDR".utf8) else {
                throw ImageError.corrupt(source: source, format: .png, detail: "the first chunk is not IHDR")
            }
            func bigEndian(_ offset: Int) -> Int {
                bytes[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) }
            }
            self.init(width: bigEndian(16), height: bigEndian(20))
        case .jpeg:
            guard let handle = tjInitDecompress() else {
                throw ImageError.corrupt(source: source, format: .jpeg, detail: "TurboJPEG could not start: out of memory?")
            }
            defer { tjDestroy(handle) }
            var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
            let status = bytes.withUnsafeBufferPointer {
                tjDecompressHeader3(handle, $0.baseAddress, UInt($0.count), &width, &height, &subsampling, &colorspace)
            }
            guard status == 0, width > 0, height > 0 else {
                if JPEGStructure(bytes).isTruncated { throw ImageError.truncated(source: source, format: .jpeg) }
                throw ImageError.corrupt(source: source, format: .jpeg, detail: String(cString: tjGetErrorStr2(handle)))
            }
            self.init(width: Int(width), height: Int(height))
        case nil:
            throw ImageError.unsupportedFormat(source: source, detected: ImageFormat.describeUnsupported(bytes))
        }
        guard width > 0, height > 0 else {
            throw ImageError.invalidSize(width: width, height: height, context: source)
        }
    }
}
