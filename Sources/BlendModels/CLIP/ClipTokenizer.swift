import Foundation
import BlendConcurrency

/// Errors from building the CLIP tokenizer and from tokenizing with it.
public enum ClipTokenizerError: Error, Equatable, CustomStringConvertible {
    case vocabularyNotFound(path: String)
    case vocabularyUnreadable(path: String)
    case vocabularyCorrupt(path: String, reason: String)
    case invalidMerges(String)
    case promptTooLong(tokenCount: Int, contextLength: Int)
    /// The text is longer than ``ClipTokenizer/maximumTextBytes``, refused before any work.
    case textTooLong(bytes: Int, limit: Int)
    case contextTooShort(Int)
    case unknownToken(Int)

    public var description: String {
        let download = "get it with `blend models download clip-vocab` (or download \(ClipTokenizer.officialVocabularyFileName) from the openai/CLIP repository, folder clip/)"
        switch self {
        case let .vocabularyNotFound(path):
            return "CLIP's BPE vocabulary was not found at '\(path)': \(download) and give its path"
        case let .vocabularyUnreadable(path):
            return "CLIP's BPE vocabulary at '\(path)' could not be read: check that it is a file you may read"
        case let .vocabularyCorrupt(path, reason):
            return "'\(path)' is not a usable CLIP BPE vocabulary: \(reason). The file may be damaged: \(download) again"
        case let .invalidMerges(reason):
            return "invalid BPE merge list: \(reason)"
        case let .promptTooLong(tokenCount, contextLength):
            return "the prompt is \(tokenCount) tokens long, counting the start and end markers, but CLIP reads at most \(contextLength): shorten it, or ask for truncation to keep its first \(contextLength - 2) tokens"
        case let .textTooLong(bytes, limit):
            return "the prompt is \(bytes) bytes long; blend reads prompts of at most \(limit) bytes (CLIP sees only its first 75 tokens, a few hundred characters): shorten it"
        case let .contextTooShort(length):
            return "a context length of \(length) cannot hold the start and end markers: use at least 2 (CLIP models use 77)"
        case let .unknownToken(id):
            return "token id \(id) is not in this tokenizer's vocabulary: were the ids made with another vocabulary?"
        }
    }
}

/// OpenAI CLIP's text tokenizer: the same ids as `clip.tokenize` and `SimpleTokenizer`.
///
/// Text is cleaned (`ClipTextCleaner`: ftfy's fixes, HTML entities, whitespace, lowercase),
/// split into words, numbers and punctuation runs (`ClipPreTokenizer`), and each piece's UTF-8
/// bytes are byte-pair encoded (`ClipBytePairEncoding`). The one deliberate difference from the
/// reference: ftfy's mojibake repair is not reproduced (see `ClipTextCleaner`).
///
/// Thread-safe: encodings of pieces are cached, as in the reference, behind a lock.
public final class ClipTokenizer: Sendable {
    /// One merge of a ranked merge table: `first` and `second` written in the byte alphabet,
    /// as on a line of the vocabulary file ("</w>" marks the end of a word).
    public struct Merge: Equatable, Sendable {
        public var rank: Int
        public var first: String
        public var second: String
        public init(rank: Int, first: String, second: String) {
            self.rank = rank
            self.first = first
            self.second = second
        }
    }

    public static let officialVocabularyFileName = "bpe_simple_vocab_16e6.txt.gz"
    /// The merges CLIP uses, from the start of the official file (which holds more): a
    /// vocabulary of 49,152 symbols less the 256 bytes, their 256 end-of-word forms, and the
    /// two special tokens.
    public static let officialMergeCount = 49_152 - 256 - 2
    /// The longest text ``tokenize(_:contextLength:truncate:padToken:)`` accepts, in UTF-8
    /// bytes: far more than CLIP's 77-token context can use, and small enough that even one
    /// unbroken word of this length byte-pair encodes in well under a second.
    public static let maximumTextBytes = 4096
    /// The context length of every CLIP model.
    public static let defaultContextLength = 77

    /// The id of `<|startoftext|>` (49406 with the official vocabulary).
    public let startOfTextToken: Int
    /// The id of `<|endoftext|>` (49407), the largest id: the text encoder reads its features
    /// at this token's position.
    public let endOfTextToken: Int
    /// The number of token ids, the rows of the text encoder's token embedding (49408).
    public var vocabularySize: Int { endOfTextToken + 1 }

    private let encoding: ClipBytePairEncoding
    private let cache = PThreadMutex<[[UInt8]: [Int]]>([:])
    /// Past this many cached pieces the cache starts afresh, so that a long-running process
    /// tokenizing endless distinct text does not grow without bound.
    private static let cacheLimit = 100_000

    /// The tokenizer of the official vocabulary file `bpe_simple_vocab_16e6.txt.gz`
    /// (gzip'd text: a header line, then one merge per line, "first second", by rank).
    public convenience init(vocabularyFile path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ClipTokenizerError.vocabularyNotFound(path: path)
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ClipTokenizerError.vocabularyUnreadable(path: path)
        }
        let text: [UInt8]
        do {
            text = try Gzip.decompress([UInt8](data))
        } catch {
            throw ClipTokenizerError.vocabularyCorrupt(path: path, reason: error.description)
        }
        guard let string = String(validating: text, as: UTF8.self) else {
            throw ClipTokenizerError.vocabularyCorrupt(path: path, reason: "its text is not valid UTF-8")
        }
        let merges: [ClipBytePairEncoding.Merge]
        do {
            merges = try Self.parseMerges(string)
        } catch {
            throw ClipTokenizerError.vocabularyCorrupt(path: path, reason: error.reason)
        }
        do {
            try self.init(encoding: ClipBytePairEncoding(merges: merges), mergeCount: merges.count)
        } catch {
            throw ClipTokenizerError.vocabularyCorrupt(path: path, reason: "line \(error.rank + 2): \(error.reason)")
        }
    }

    /// A tokenizer from an explicit ranked merge table. The ranks need not be contiguous: a
    /// sparse table holding only the merges that apply to some texts encodes those texts as the
    /// full table does. `mergeCount`, the size of the full table, places the special tokens.
    public convenience init(merges: [Merge], mergeCount: Int = ClipTokenizer.officialMergeCount) throws {
        var seen = Set<Int>()
        for merge in merges {
            guard (0..<mergeCount).contains(merge.rank) else {
                throw ClipTokenizerError.invalidMerges("rank \(merge.rank) is outside 0..<\(mergeCount)")
            }
            guard seen.insert(merge.rank).inserted else {
                throw ClipTokenizerError.invalidMerges("two merges have rank \(merge.rank)")
            }
        }
        let ranked = merges.sorted { $0.rank < $1.rank }.map {
            ClipBytePairEncoding.Merge(rank: $0.rank, first: Array($0.first.unicodeScalars), second: Array($0.second.unicodeScalars))
        }
        do {
            try self.init(encoding: ClipBytePairEncoding(merges: ranked), mergeCount: mergeCount)
        } catch {
            throw ClipTokenizerError.invalidMerges("the merge of rank \(error.rank): \(error.reason)")
        }
    }

    private init(encoding: ClipBytePairEncoding, mergeCount: Int) {
        self.encoding = encoding
        startOfTextToken = 512 + mergeCount
        endOfTextToken = 513 + mergeCount
    }

    /// Why a vocabulary file's text cannot be read as merges.
    private struct MalformedVocabulary: Error { let reason: String }

    /// The merges on lines 2 ... 48,895 (fewer when the file is shorter); line 1 is a header.
    private static func parseMerges(_ text: String) throws(MalformedVocabulary) -> [ClipBytePairEncoding.Merge] {
        var lines = text.unicodeScalars.split(separator: "\n", maxSplits: officialMergeCount + 1, omittingEmptySubsequences: false)
        guard lines.count > 1 else { throw MalformedVocabulary(reason: "it has no merge lines after its header line") }
        lines = Array(lines[1..<min(lines.count, officialMergeCount + 1)])
        // A file shorter than the official window ends with a newline: no merge after it.
        if lines.last?.isEmpty == true { lines.removeLast() }
        var merges: [ClipBytePairEncoding.Merge] = []
        merges.reserveCapacity(lines.count)
        for (rank, line) in lines.enumerated() {
            // Fields are separated by whitespace (Python's `str.split()`), which also drops a "\r".
            let fields = line.split(whereSeparator: { $0.properties.isWhitespace || (0x1C...0x1F).contains($0.value) })
            guard fields.count == 2 else {
                let shown = String(String.UnicodeScalarView(line.prefix(60)))
                throw MalformedVocabulary(reason: "line \(rank + 2) should be two symbols separated by a space, not '\(shown)'")
            }
            merges.append(.init(rank: rank, first: Array(fields[0]), second: Array(fields[1])))
        }
        return merges
    }

    // MARK: - Tokenizing

    /// The token ids of `text`, without start and end markers or padding (`SimpleTokenizer.encode`).
    public func encode(_ text: String) -> [Int] {
        var ids: [Int] = []
        for piece in ClipPreTokenizer.split(ClipTextCleaner.clean(text)) {
            switch piece {
            case .startOfText:
                ids.append(startOfTextToken)
            case .endOfText:
                ids.append(endOfTextToken)
            case let .text(scalars):
                ids += encode(word: Array(String(String.UnicodeScalarView(scalars)).utf8))
            }
        }
        return ids
    }

    private func encode(word bytes: [UInt8]) -> [Int] {
        if let cached = cache.withLock({ $0[bytes] }) { return cached }
        let ids = encoding.encode(word: bytes)
        cache.withLock { cache in
            if cache.count >= Self.cacheLimit { cache.removeAll(keepingCapacity: true) }
            cache[bytes] = ids
        }
        return ids
    }

    /// Exactly `contextLength` ids, as `clip.tokenize` gives them: `<|startoftext|>`, the
    /// text's tokens, `<|endoftext|>`, then `padToken` (0, as in `clip.tokenize` and SD 2.x's
    /// tokenizer; SD 1.x's pads with `<|endoftext|>`). A text too long for the context throws
    /// `promptTooLong`, unless `truncate`, which keeps the first `contextLength` ids and makes
    /// the last of them `<|endoftext|>` (as transformers' `CLIPTokenizer` with `truncation=True`).
    ///
    /// Text longer than ``maximumTextBytes`` throws `textTooLong` before it is cleaned or
    /// encoded, truncation or not: byte-pair encoding a word costs time quadratic in its length.
    public func tokenize(_ text: String, contextLength: Int = ClipTokenizer.defaultContextLength, truncate: Bool = false,
                         padToken: Int = 0) throws -> [Int] {
        guard contextLength >= 2 else { throw ClipTokenizerError.contextTooShort(contextLength) }
        guard text.utf8.count <= Self.maximumTextBytes else {
            throw ClipTokenizerError.textTooLong(bytes: text.utf8.count, limit: Self.maximumTextBytes)
        }
        var ids = [startOfTextToken] + encode(text) + [endOfTextToken]
        if ids.count > contextLength {
            guard truncate else {
                throw ClipTokenizerError.promptTooLong(tokenCount: ids.count, contextLength: contextLength)
            }
            ids.removeLast(ids.count - contextLength)
            ids[contextLength - 1] = endOfTextToken
        }
        return ids + [Int](repeating: padToken, count: contextLength - ids.count)
    }

    /// Where the text encoder reads a tokenized prompt's features: the position of the largest
    /// id (the first, on ties), as the reference's `text.argmax(dim=-1)` finds it. For `tokenize`
    /// output that is the `<|endoftext|>` token. Nil for no ids.
    public static func endOfTextPosition(in tokens: [Int]) -> Int? {
        guard let largest = tokens.max() else { return nil }
        return tokens.firstIndex(of: largest)
    }

    /// The text of `tokens` (`SimpleTokenizer.decode`): each word followed by a space, invalid
    /// UTF-8 replaced by U+FFFD; the special tokens appear as `<|startoftext|>` and
    /// `<|endoftext|>`, and padding zeros as "!" (id 0). It is the cleaned, lowercased text
    /// with spaces around punctuation, not the original.
    public func decode(_ tokens: [Int]) throws -> String {
        var bytes: [UInt8] = []
        for id in tokens {
            if id == startOfTextToken {
                bytes += Array("<|startoftext|>".utf8)
            } else if id == endOfTextToken {
                bytes += Array("<|endoftext|>".utf8)
            } else if let symbol = Int32(exactly: id).flatMap({ encoding.bytesOfToken[$0] }) {
                bytes += symbol
            } else {
                throw ClipTokenizerError.unknownToken(id)
            }
        }
        // The end-of-word marker is replaced after UTF-8 decoding, as in the reference.
        let text = Array(String(decoding: bytes, as: UTF8.self).unicodeScalars)
        let marker = ClipBytePairEncoding.endOfWord
        var out = String.UnicodeScalarView()
        var i = 0
        while i < text.count {
            if text[i] == "<", text[i...].starts(with: marker) {
                out.append(" ")
                i += marker.count
            } else {
                out.append(text[i])
                i += 1
            }
        }
        return String(out)
    }
}
