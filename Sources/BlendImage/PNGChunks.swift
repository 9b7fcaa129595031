/// The chunks of a PNG file (length, type, data, CRC each), in order. Stops at IEND or at
/// the first chunk that runs past the end of the data.
struct PNGChunks {
    struct Chunk {
        var type: String
        /// The chunk's data, and the whole chunk with its length, type and CRC.
        var data: Range<Int>
        var whole: Range<Int>
    }
    let chunks: [Chunk]
    /// True when a chunk runs past the end of the data.
    let isCut: Bool
    /// True when the chunks reach an IEND chunk.
    let reachesEnd: Bool

    init(_ bytes: [UInt8]) {
        var found: [Chunk] = []
        var offset = ImageFormat.pngSignature.count
        var cut = false
        while offset + 8 <= bytes.count {
            let length = bytes[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) }
            let end = offset + 12 + length
            guard end <= bytes.count else { cut = true; break }
            let type = String(decoding: bytes[offset + 4..<offset + 8], as: UTF8.self)
            found.append(Chunk(type: type, data: offset + 8..<offset + 8 + length, whole: offset..<end))
            offset = end
            if type == "IEND" { break }
        }
        chunks = found
        isCut = cut
        reachesEnd = found.last?.type == "IEND"
    }
}
