/// An embedded ICC colour profile, carried from a photo into every image made from it so
/// that a colour-managed viewer renders the untouched pixels exactly as in the original.
///
/// blend never converts colours (the models see the stored samples, as the reference's
/// Pillow does); it only keeps the label. Read from a PNG's iCCP chunk or a JPEG's
/// `ICC_PROFILE` APP2 segments (ICC.1 Annex B), written as a PNG iCCP chunk.
public struct ColorProfile: Sendable, Hashable {
    /// The profile's name as a PNG stores it (1–79 Latin-1 characters).
    public var name: String
    /// The ICC profile itself, uncompressed.
    public var data: [UInt8]

    public init(name: String = "ICC Profile", data: [UInt8]) {
        self.name = name
        self.data = data
    }

    /// Profiles larger than this are ignored as damaged (real ones are a few KB to a few MB).
    static let maximumSize = 16 << 20

    /// The profile in a PNG's iCCP chunk, if any and readable.
    static func fromPNG(_ bytes: [UInt8]) -> ColorProfile? {
        guard let chunk = PNGChunks(bytes).chunks.first(where: { $0.type == "iCCP" }) else { return nil }
        let payload = bytes[chunk.data]
        guard let zero = payload.firstIndex(of: 0), zero > payload.startIndex, zero + 1 < payload.endIndex,
              payload[zero + 1] == 0 /* compression method: zlib */ else { return nil }
        let name = String(payload[payload.startIndex..<zero].map { Character(Unicode.Scalar($0)) })
        guard let data = Zlib.decompress(payload[(zero + 2)...], limit: maximumSize), !data.isEmpty else { return nil }
        return ColorProfile(name: name, data: data)
    }

    /// The profile in a JPEG's APP2 `ICC_PROFILE` segments, joined in their sequence order.
    static func fromJPEG(_ segments: [(sequence: Int, count: Int, data: ArraySlice<UInt8>)]) -> ColorProfile? {
        guard let count = segments.first?.count, count > 0, segments.count == count,
              Set(segments.map(\.sequence)) == Set(1...count) else { return nil }
        let data = segments.sorted { $0.sequence < $1.sequence }.flatMap { Array($0.data) }
        return data.isEmpty || data.count > maximumSize ? nil : ColorProfile(data: data)
    }

    /// `png` (a whole PNG file) with this profile in an iCCP chunk right after IHDR, where
    /// the PNG specification wants it (before PLTE and IDAT).
    func embedded(inPNG png: [UInt8]) throws -> [UInt8] {
        let latin1 = name.unicodeScalars.filter { (32...126).contains($0.value) || (161...255).contains($0.value) }
            .prefix(79).map { UInt8($0.value) }
        var payload = (latin1.isEmpty ? Array("ICC Profile".utf8) : latin1) + [0, 0]
        payload += try Zlib.compress(data)
        let type = Array("iCCP".utf8)
        var chunk = withUnsafeBytes(of: UInt32(payload.count).bigEndian, Array.init) + type + payload
        chunk += withUnsafeBytes(of: Zlib.crc32(type + payload).bigEndian, Array.init)
        guard let header = PNGChunks(png).chunks.first, header.type == "IHDR" else {
            throw ImageError.encodingFailed(format: .png, detail: "no IHDR chunk to put the colour profile after")
        }
        let insertAt = header.data.upperBound + 4   // past IHDR's CRC
        return Array(png[..<insertAt]) + chunk + Array(png[insertAt...])
    }
}
