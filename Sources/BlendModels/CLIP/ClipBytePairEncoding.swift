/// CLIP's byte-level BPE: the symbol alphabet, the ranked merge table, and the merge loop.
///
/// Symbols are strings over 256 printable characters, one per byte (bytes that are printable
/// Latin-1 stand for themselves; the others are moved to U+0100 and up). The vocabulary is
/// those 256 symbols, the same 256 marked as ending a word ("</w>"), one symbol per merge,
/// then the two special tokens. Ids are positions in that list: byte symbol i is id i (in the
/// alphabet's order, printable bytes first), its end-of-word form 256 + i, the symbol made by
/// the merge of rank r is 512 + r.
///
/// The merge loop works on ids, not strings: a symbol's id stands for its string one to one,
/// so merging ids gives exactly the reference's merges of strings.
struct ClipBytePairEncoding: Sendable {
    /// Why a merge list cannot be used, and the rank of the merge at fault.
    struct InvalidMerge: Error {
        let rank: Int
        let reason: String
    }

    /// The merge of rank `rank` joins `first` and `second` (symbols written in the alphabet).
    struct Merge {
        let rank: Int
        let first: [Unicode.Scalar]
        let second: [Unicode.Scalar]
    }

    // MARK: - The alphabet

    /// Bytes in alphabet order: id i is the symbol of `bytesInIdOrder[i]`.
    static let bytesInIdOrder: [UInt8] = {
        let printable = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
        let printableSet = Set(printable)
        return (printable + (0...0xFF).filter { !printableSet.contains($0) }).map { UInt8($0) }
    }()

    /// The character standing for each byte.
    static let symbolOfByte: [Unicode.Scalar] = {
        var symbols = [Unicode.Scalar](repeating: "\0", count: 256)
        var moved: UInt32 = 0
        for byte in bytesInIdOrder {
            let printable = (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || byte >= 0xAE
            if printable {
                symbols[Int(byte)] = Unicode.Scalar(byte)
            } else {
                symbols[Int(byte)] = Unicode.Scalar(0x100 + moved)!
                moved += 1
            }
        }
        return symbols
    }()

    /// The id (0..<256) of each byte's symbol.
    static let idOfByte: [Int32] = {
        var ids = [Int32](repeating: 0, count: 256)
        for (id, byte) in bytesInIdOrder.enumerated() { ids[Int(byte)] = Int32(id) }
        return ids
    }()

    static let byteOfSymbol: [Unicode.Scalar: UInt8] = {
        var bytes: [Unicode.Scalar: UInt8] = [:]
        for byte in 0...255 { bytes[symbolOfByte[byte]] = UInt8(byte) }
        return bytes
    }()

    static let endOfWord = Array("</w>".unicodeScalars)

    // MARK: - The table

    /// For each mergeable pair of ids: its rank, and the id of the symbol the merge makes.
    private let merges: [UInt64: (rank: Int32, merged: Int32)]
    /// The bytes each id decodes to ("</w>" included, as in the reference's decoder).
    let bytesOfToken: [Int32: [UInt8]]

    /// The table of `merges`; ranks need not be contiguous (a sparse table of the merges that
    /// matter for some texts gives the same results on those texts). When two merges make the
    /// same symbol, or join the same pair, the later one counts, as in the reference.
    init(merges: [Merge]) throws(InvalidMerge) {
        var ids: [[Unicode.Scalar]: Int32] = [:]
        ids.reserveCapacity(512 + merges.count)
        for (id, byte) in Self.bytesInIdOrder.enumerated() {
            ids[[Self.symbolOfByte[Int(byte)]]] = Int32(id)
            ids[[Self.symbolOfByte[Int(byte)]] + Self.endOfWord] = Int32(256 + id)
        }
        for merge in merges {
            for part in [merge.first, merge.second] where !Self.isWellFormed(part) {
                throw InvalidMerge(rank: merge.rank, reason: "'\(String(String.UnicodeScalarView(part)))' is not a string of byte symbols")
            }
            ids[merge.first + merge.second] = Int32(512 + merge.rank)
        }

        var table: [UInt64: (rank: Int32, merged: Int32)] = [:]
        table.reserveCapacity(merges.count)
        for merge in merges {
            guard let first = ids[merge.first], let second = ids[merge.second] else {
                let missing = ids[merge.first] == nil ? merge.first : merge.second
                throw InvalidMerge(rank: merge.rank, reason: "'\(String(String.UnicodeScalarView(missing)))' is neither a byte symbol nor made by any merge")
            }
            table[Self.key(first, second)] = (Int32(merge.rank), ids[merge.first + merge.second]!)
        }
        self.merges = table

        var bytes: [Int32: [UInt8]] = [:]
        bytes.reserveCapacity(ids.count)
        for (symbol, id) in ids {
            bytes[id] = symbol.map { Self.byteOfSymbol[$0]! }
        }
        self.bytesOfToken = bytes
    }

    /// Byte symbols, possibly followed by "</w>" (which is itself four byte symbols).
    private static func isWellFormed(_ symbol: [Unicode.Scalar]) -> Bool {
        !symbol.isEmpty && symbol.allSatisfy { byteOfSymbol[$0] != nil }
    }

    private static func key(_ first: Int32, _ second: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: first)) << 32 | UInt64(UInt32(bitPattern: second))
    }

    // MARK: - Encoding

    /// The token ids of one piece of text (non-empty UTF-8), the last one marked as ending a word.
    func encode(word bytes: [UInt8]) -> [Int] {
        guard !bytes.isEmpty else { return [] }
        var word = bytes.map { Self.idOfByte[Int($0)] }
        word[word.count - 1] += 256
        while word.count > 1 {
            // Apply the lowest-ranked pair present, at every place it occurs, left to right.
            var best: (rank: Int32, merged: Int32, first: Int32, second: Int32)?
            for k in 0..<(word.count - 1) {
                if let merge = merges[Self.key(word[k], word[k + 1])], merge.rank < (best?.rank ?? .max) {
                    best = (merge.rank, merge.merged, word[k], word[k + 1])
                }
            }
            guard let best else { break }
            var merged: [Int32] = []
            merged.reserveCapacity(word.count - 1)
            var k = 0
            while k < word.count {
                if k + 1 < word.count, word[k] == best.first, word[k + 1] == best.second {
                    merged.append(best.merged)
                    k += 2
                } else {
                    merged.append(word[k])
                    k += 1
                }
            }
            word = merged
        }
        return word.map { Int($0) }
    }
}
