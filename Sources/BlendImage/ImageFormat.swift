/// The file formats blend reads and writes.
public enum ImageFormat: String, Sendable, CustomStringConvertible {
    case png = "PNG"
    case jpeg = "JPEG"

    public var description: String { rawValue }

    static let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// The format of encoded bytes, from their magic number: a file's extension says
    /// nothing reliable about its content.
    public static func detect<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> ImageFormat? {
        if bytes.starts(with: pngSignature) { return .png }
        // SOI followed by the first marker's 0xFF.
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        return nil
    }

    /// The output format for a path, from its extension (case-insensitive).
    public init(outputPath path: String) throws {
        let name = path.split(separator: "/", omittingEmptySubsequences: false).last ?? ""
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else {
            throw ImageError.unsupportedOutputExtension(path: path)
        }
        switch name[name.index(after: dot)...].lowercased() {
        case "png": self = .png
        case "jpg", "jpeg": self = .jpeg
        default: throw ImageError.unsupportedOutputExtension(path: path)
        }
    }

    /// What unsupported bytes look like, for the error message: naming the real format
    /// tells the user what to convert from.
    static func describeUnsupported(_ bytes: [UInt8]) -> String {
        func starts(_ prefix: [UInt8], at offset: Int = 0) -> Bool {
            bytes.count >= offset + prefix.count && Array(bytes[offset..<offset + prefix.count]) == prefix
        }
        let ascii = { (s: String) in Array(s.utf8) }
        if bytes.isEmpty { return "an empty file" }
        if starts(ascii("GIF8")) { return "a GIF image" }
        if starts(ascii("RIFF")) && starts(ascii("WEBP"), at: 8) { return "a WebP image" }
        if starts(ascii("BM")) { return "a BMP image" }
        if starts(ascii("II*\0")) || starts(ascii("MM\0*")) { return "a TIFF image" }
        if starts(ascii("ftyp"), at: 4) { return "an HEIF/AVIF image or a video" }
        if starts([0xFF, 0xD8]) { return "a damaged JPEG (no marker after the start of image)" }
        if starts(ascii("%PDF")) { return "a PDF document" }
        if starts(ascii("<svg")) || starts(ascii("<?xml")) { return "an SVG/XML document" }
        let sample = bytes.prefix(512)
        let printable = sample.filter { $0 == 9 || $0 == 10 || $0 == 13 || (32...126).contains($0) || $0 >= 0x80 }
        if printable.count == sample.count { return "a text file" }
        return "an unrecognised format"
    }
}
