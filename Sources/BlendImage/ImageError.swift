import Foundation

/// Errors from reading, writing and processing images. Each message names the file (or the
/// operation) and says what the user can do about it.
public enum ImageError: Error, Equatable, CustomStringConvertible {
    /// There is no file at the path.
    case fileNotFound(path: String)
    /// The file exists but cannot be read (permissions, a directory, an I/O error).
    case unreadableFile(path: String, reason: String)
    /// The bytes are not a PNG or a JPEG; `detected` says what they look like.
    case unsupportedFormat(source: String, detected: String)
    /// The file ends before the image data does.
    case truncated(source: String, format: ImageFormat)
    /// The decoder rejected the data; `detail` is its message.
    case corrupt(source: String, format: ImageFormat, detail: String)
    /// The image is larger than ``ImageSize/maximumPixelCount``.
    case tooLarge(source: String, width: Int, height: Int)
    /// The file's header declares more pixels than the decoding limit (`--max-megapixels`).
    case exceedsPixelLimit(source: String, width: Int, height: Int, limit: Int)
    /// The output path does not end in .png, .jpg or .jpeg.
    case unsupportedOutputExtension(path: String)
    /// The output path's directory does not exist.
    case outputDirectoryMissing(path: String, directory: String)
    /// The output cannot be created in its directory (permissions, read-only file system,
    /// the path is a directory, ...).
    case outputNotWritable(path: String, reason: String)
    /// Writing or finishing the output failed (disk full, I/O error); nothing was left behind.
    case writeFailed(path: String, reason: String)
    /// The encoder failed.
    case encodingFailed(format: ImageFormat, detail: String)
    /// JPEG quality outside 1...100.
    case invalidJPEGQuality(Int)
    /// A width or height that is zero or negative.
    case invalidSize(width: Int, height: Int, context: String)
    /// Pixel bytes that do not fill `3 * width * height`.
    case pixelCountMismatch(width: Int, height: Int, byteCount: Int)
    /// A tensor that is not an RGB image, `[1, 3, H, W]` or `[3, H, W]`.
    case tensorShape(got: [Int])

    public var description: String {
        switch self {
        case let .fileNotFound(path):
            return "\(path): no such file; check the path"
        case let .unreadableFile(path, reason):
            return "\(path): cannot be read (\(reason))"
        case let .unsupportedFormat(source, detected):
            return "\(source): \(detected), not a PNG or JPEG image; convert it to PNG or JPEG first"
        case let .truncated(source, format):
            return "\(source): the \(format) data ends early (the file is truncated, perhaps an interrupted copy or download); get a complete copy"
        case let .corrupt(source, format, detail):
            return "\(source): damaged \(format) data (\(detail)); re-export the image from an editor"
        case let .tooLarge(source, width, height):
            return "\(source): \(width)x\(height) is more than \(ImageSize.maximumPixelCount) pixels; downscale the image first"
        case let .exceedsPixelLimit(source, width, height, limit):
            let megapixels = { (n: Int) in String(format: "%.1f", Double(n) / 1e6) }
            return "\(source): \(width)x\(height) is \(megapixels(width * height)) megapixels, more than the limit of \(megapixels(limit)); "
                + "downscale the image first, or raise the limit (--max-megapixels) if the machine has the memory"
        case let .unsupportedOutputExtension(path):
            return "\(path): cannot tell the output format; end the file name in .png, .jpg or .jpeg"
        case let .outputDirectoryMissing(path, directory):
            return "\(path): the directory \(directory) does not exist; create it or choose another output path"
        case let .outputNotWritable(path, reason):
            return "\(path): cannot be written (\(reason)); choose another output path"
        case let .writeFailed(path, reason):
            return "\(path): writing failed (\(reason)); nothing was written; free some space or choose another output path"
        case let .encodingFailed(format, detail):
            return "encoding \(format) failed: \(detail)"
        case let .invalidJPEGQuality(quality):
            return "JPEG quality \(quality) is out of range; use 1 (smallest) to 100 (best)"
        case let .invalidSize(width, height, context):
            return "\(context): \(width)x\(height) is not a valid image size; both sides must be at least 1"
        case let .pixelCountMismatch(width, height, byteCount):
            return "a \(width)x\(height) RGB image needs \(3 * width * height) bytes, but \(byteCount) were given"
        case let .tensorShape(got):
            return "expected an RGB image tensor of shape [1, 3, H, W] or [3, H, W], got \(got)"
        }
    }
}
