/// An 8-bit sRGB image: interleaved R, G, B bytes, row-major, top row first.
///
/// A value type: copies are independent (the byte array is copy-on-write). Everything blend
/// reads from disk becomes an `RGBImage` (alpha dropped or composited, grey and palette
/// expanded, EXIF orientation applied), and every image it writes starts as one. Float
/// pixels exist only as engine tensors: see ``tensor(range:)`` and ``init(tensor:range:)``.
public struct RGBImage: Sendable, Hashable {
    public let width: Int
    public let height: Int
    /// `3 * width * height` bytes: R, G, B of pixel (0, 0), then (1, 0), ...
    public private(set) var pixels: [UInt8]

    /// An image from interleaved RGB bytes, `3 * width * height` of them.
    public init(width: Int, height: Int, pixels: [UInt8]) throws {
        try ImageSize(width: width, height: height).validate("RGBImage(width:height:pixels:)")
        guard pixels.count == 3 * width * height else {
            throw ImageError.pixelCountMismatch(width: width, height: height, byteCount: pixels.count)
        }
        self.init(validatedWidth: width, height: height, pixels: pixels)
    }

    /// An image of one colour.
    public init(width: Int, height: Int, filledWith color: RGBColor) throws {
        try ImageSize(width: width, height: height).validate("RGBImage(width:height:filledWith:)")
        var pixels = [UInt8](repeating: 0, count: 3 * width * height)
        for i in stride(from: 0, to: pixels.count, by: 3) {
            pixels[i] = color.red
            pixels[i + 1] = color.green
            pixels[i + 2] = color.blue
        }
        self.init(validatedWidth: width, height: height, pixels: pixels)
    }

    /// For code in this module that has already checked the size and byte count.
    init(validatedWidth width: Int, height: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    public var size: ImageSize { ImageSize(width: width, height: height) }

    /// The pixel in column `x`, row `y` (row 0 at the top). Out-of-range coordinates trap,
    /// like array indices: they are a programming error, not a user input.
    public subscript(x: Int, y: Int) -> RGBColor {
        get {
            precondition(x >= 0 && x < width && y >= 0 && y < height, "pixel (\(x), \(y)) outside a \(size) image")
            let i = 3 * (y * width + x)
            return RGBColor(red: pixels[i], green: pixels[i + 1], blue: pixels[i + 2])
        }
        set {
            precondition(x >= 0 && x < width && y >= 0 && y < height, "pixel (\(x), \(y)) outside a \(size) image")
            let i = 3 * (y * width + x)
            pixels[i] = newValue.red
            pixels[i + 1] = newValue.green
            pixels[i + 2] = newValue.blue
        }
    }
}
