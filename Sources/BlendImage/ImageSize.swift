/// The dimensions of an image in pixels.
public struct ImageSize: Sendable, Hashable, CustomStringConvertible {
    public var width: Int
    public var height: Int

    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }

    public var pixelCount: Int { width * height }

    /// `"640x480"`, the way sizes appear in messages and on the command line.
    public var description: String { "\(width)x\(height)" }

    /// The largest image blend will decode or allocate: Pillow's decompression-bomb limit
    /// (twice its `MAX_IMAGE_PIXELS`), so that a crafted header cannot make it allocate
    /// gigabytes before the pixel data turns out to be missing.
    public static let maximumPixelCount = 178_956_970

    /// The default limit on a decoded photo or mask (100 megapixels, a 12,000 x 8,000 photo
    /// with room to spare): checked from the file's header, before anything is allocated.
    public static let defaultMaximumDecodedPixels = 100_000_000

    /// Throws unless both sides are positive and the area is within ``maximumPixelCount``.
    func validate(_ context: String) throws {
        guard width > 0, height > 0 else {
            throw ImageError.invalidSize(width: width, height: height, context: context)
        }
        guard width <= ImageSize.maximumPixelCount / height else {
            throw ImageError.tooLarge(source: context, width: width, height: height)
        }
    }

    /// ``validate(_:)``, then the decoding limit `maximumPixels`.
    func validateDecoded(_ source: String, maximumPixels: Int) throws {
        try validate(source)
        guard pixelCount <= maximumPixels else {
            throw ImageError.exceedsPixelLimit(source: source, width: width, height: height, limit: maximumPixels)
        }
    }
}
