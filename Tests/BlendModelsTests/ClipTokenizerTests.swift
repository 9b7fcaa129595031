import Foundation
import Testing
@testable import BlendModels

/// The fixtures written by scripts/make-tokenizer-fixtures.py from clip-anytorch.
private struct TokenizerFixture: Decodable {
    struct Prompt: Decodable {
        let text: String
        let cleaned: String
        let encoded: [Int]
        let tokens: [Int]
        let raises: Bool
        let decoded: String
    }
    struct Divergent: Decodable {
        let text: String
        let cleaned: String
        let encoded: [Int]
        let reference_encoded: [Int]
        let decoded: String
    }
    struct CleanerCase: Decodable {
        let text: String
        let cleaned: String
        let same_as_reference: Bool
    }
    struct DecodeCase: Decodable {
        let ids: [Int]
        let text: String
    }
    struct HeadVocabulary: Decodable {
        struct Case: Decodable {
            let text: String
            let encoded: [Int]
        }
        let file: String
        let merge_count: Int
        let cases: [Case]
    }
    let merge_count: Int
    let context_length: Int
    let merges: [[Merge]]
    let prompts: [Prompt]
    let divergent: [Divergent]
    let cleaner: [CleanerCase]
    let decode: [DecodeCase]
    let head_vocab: HeadVocabulary

    /// A merge row is [rank, first, second].
    enum Merge: Decodable {
        case rank(Int)
        case symbol(String)
        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let rank = try? container.decode(Int.self) { self = .rank(rank) } else { self = .symbol(try container.decode(String.self)) }
        }
    }

    var rankedMerges: [ClipTokenizer.Merge] {
        merges.map { row in
            guard case let .rank(rank) = row[0], case let .symbol(first) = row[1], case let .symbol(second) = row[2] else {
                preconditionFailure("malformed merge row in the fixture")
            }
            return ClipTokenizer.Merge(rank: rank, first: first, second: second)
        }
    }
}

private let fixturesFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

private let fixture: TokenizerFixture = {
    let data = try! Data(contentsOf: fixturesFolder.appendingPathComponent("clip_tokenizer.json"))
    return try! JSONDecoder().decode(TokenizerFixture.self, from: data)
}()

/// The tokenizer of the fixture's sparse merge table (ids as with the full official table).
private let sparseTokenizer: ClipTokenizer = try! ClipTokenizer(merges: fixture.rankedMerges, mergeCount: fixture.merge_count)

/// The full official vocabulary, when this machine has it: $BLEND_CLIP_VOCAB, or the copy that
/// clip-anytorch installs in the dev venv (scripts/setup-dev-venv.sh). CI has neither.
private let officialVocabularyPath: String? = {
    if let path = ProcessInfo.processInfo.environment["BLEND_CLIP_VOCAB"] { return path }
    let lib = fixturesFolder.appendingPathComponent("../../../.venv/lib").standardized
    let pythons = (try? FileManager.default.contentsOfDirectory(atPath: lib.path)) ?? []
    return pythons.sorted().map { lib.appendingPathComponent("\($0)/site-packages/clip/\(ClipTokenizer.officialVocabularyFileName)").path }
        .first { FileManager.default.fileExists(atPath: $0) }
}()

private func scalars(_ text: String) -> [Unicode.Scalar] { Array(text.unicodeScalars) }

/// A fresh path in the temporary folder holding `bytes`.
private func temporaryFile(_ bytes: [UInt8]) throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("blend-tokenizer-\(UUID().uuidString).gz")
    try Data(bytes).write(to: url)
    return url.path
}

private func headVocabularyBytes() throws -> [UInt8] {
    [UInt8](try Data(contentsOf: fixturesFolder.appendingPathComponent(fixture.head_vocab.file)))
}

@Suite struct ClipTokenizerTests {
    @Test func fixtureCoversWhatItShould() {
        #expect(fixture.prompts.count >= 200)
        #expect(fixture.prompts.contains { $0.raises })
        #expect(fixture.prompts.contains { $0.text.isEmpty })
        #expect(sparseTokenizer.startOfTextToken == 49406 && sparseTokenizer.endOfTextToken == 49407)
        #expect(sparseTokenizer.vocabularySize == 49408)
    }

    @Test func everyPromptEncodesAsTheReference() throws {
        for prompt in fixture.prompts {
            #expect(sparseTokenizer.encode(prompt.text) == prompt.encoded, "\(prompt.text.debugDescription)")
        }
    }

    @Test func everyPromptIsCleanedAsTheReference() {
        for prompt in fixture.prompts {
            #expect(ClipTextCleaner.clean(prompt.text) == scalars(prompt.cleaned), "\(prompt.text.debugDescription)")
        }
    }

    @Test func tokenizeMatchesClipTokenize() throws {
        let context = fixture.context_length
        for prompt in fixture.prompts {
            let padded = prompt.tokens + [Int](repeating: 0, count: context - prompt.tokens.count)
            #expect(try sparseTokenizer.tokenize(prompt.text, truncate: true) == padded, "\(prompt.text.debugDescription)")
            if prompt.raises {
                #expect(throws: ClipTokenizerError.promptTooLong(tokenCount: prompt.encoded.count + 2, contextLength: context)) {
                    try sparseTokenizer.tokenize(prompt.text)
                }
            } else {
                #expect(try sparseTokenizer.tokenize(prompt.text) == padded, "\(prompt.text.debugDescription)")
            }
            // The reference's argmax lands on the first <|endoftext|>.
            #expect(ClipTokenizer.endOfTextPosition(in: padded) == padded.firstIndex(of: 49407))
        }
    }

    @Test func tooLongPromptsThrowAClearError() throws {
        let prompt = "a photo of " + String(repeating: "a very ", count: 40) + "large dog"
        let count = sparseTokenizer.encode(prompt).count + 2
        #expect(count > 77)
        do {
            _ = try sparseTokenizer.tokenize(prompt)
            Issue.record("a prompt of \(count) tokens was accepted")
        } catch let error as ClipTokenizerError {
            #expect(error == .promptTooLong(tokenCount: count, contextLength: 77))
            #expect(error.description.contains("\(count) tokens") && error.description.contains("77") && error.description.contains("truncation"))
        }
        let truncated = try sparseTokenizer.tokenize(prompt, truncate: true)
        #expect(truncated.count == 77 && truncated.last == 49407 && truncated.first == 49406)
        #expect(Array(truncated[1..<76]) == Array(sparseTokenizer.encode(prompt).prefix(75)))
        #expect(ClipTokenizer.endOfTextPosition(in: truncated) == 76)

        // Other context lengths, as clip.tokenize(context_length:) takes them.
        #expect(try sparseTokenizer.tokenize("a red ball", contextLength: 5) == [49406, 320, 736, 1069, 49407])
        #expect(throws: ClipTokenizerError.promptTooLong(tokenCount: 5, contextLength: 4)) {
            try sparseTokenizer.tokenize("a red ball", contextLength: 4)
        }
        #expect(try sparseTokenizer.tokenize("a red ball", contextLength: 4, truncate: true) == [49406, 320, 736, 49407])
        #expect(try sparseTokenizer.tokenize("a red ball", contextLength: 2, truncate: true) == [49406, 49407])
        #expect(throws: ClipTokenizerError.contextTooShort(1)) { try sparseTokenizer.tokenize("a", contextLength: 1) }
        #expect(ClipTokenizer.endOfTextPosition(in: []) == nil)
    }

    @Test func mojibakeIsLeftAsWritten() {
        // The documented difference: ftfy's mojibake repair is not reproduced. Swift gives the
        // reference's ids with ftfy.fix_text(text, fix_encoding=False).
        #expect(!fixture.divergent.isEmpty)
        for prompt in fixture.divergent {
            #expect(prompt.encoded != prompt.reference_encoded)
            #expect(sparseTokenizer.encode(prompt.text) == prompt.encoded, "\(prompt.text.debugDescription)")
            #expect(ClipTextCleaner.clean(prompt.text) == scalars(prompt.cleaned), "\(prompt.text.debugDescription)")
        }
    }

    @Test func cleanerMatchesOnWholeTables() {
        // HTML5 entity names (lower, all-caps, legacy), width forms, Latin-1, controls,
        // numeric references, terminal escapes, final sigma, line-by-line HTML handling.
        for (index, item) in fixture.cleaner.enumerated() {
            let cleaned = ClipTextCleaner.clean(item.text)
            #expect(cleaned == scalars(item.cleaned), "cleaner case \(index): \(item.text.prefix(50).debugDescription)")
            if cleaned != scalars(item.cleaned) {
                let expected = scalars(item.cleaned)
                let at = zip(cleaned, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(cleaned.count, expected.count)
                Issue.record("first difference at scalar \(at): got \(cleaned[at...].prefix(20).map { String($0.value, radix: 16) }), expected \(expected[at...].prefix(20).map { String($0.value, radix: 16) })")
            }
        }
    }

    @Test func decodeMatchesTheReference() throws {
        for prompt in fixture.prompts {
            #expect(try sparseTokenizer.decode(prompt.encoded) == prompt.decoded, "\(prompt.text.debugDescription)")
        }
        for item in fixture.decode {
            #expect(scalars(try sparseTokenizer.decode(item.ids)) == scalars(item.text), "\(item.ids)")
        }
        #expect(throws: ClipTokenizerError.unknownToken(49408)) { try sparseTokenizer.decode([320, 49408]) }
        #expect(throws: ClipTokenizerError.unknownToken(-1)) { try sparseTokenizer.decode([-1]) }
    }

    @Test func concurrentUseGivesTheSameIds() async throws {
        // One tokenizer shared by many tasks: the piece cache is behind a lock.
        let tokenizer = try ClipTokenizer(merges: fixture.rankedMerges)
        let prompts = fixture.prompts
        let allMatch = await withTaskGroup(of: Bool.self) { group in
            for task in 0..<8 {
                group.addTask {
                    // Each task starts elsewhere in the list, half of them going backwards.
                    let start = task * prompts.count / 8
                    let order = Array(start..<prompts.count) + Array(0..<start)
                    return (task.isMultiple(of: 2) ? order : order.reversed()).allSatisfy { index in
                        tokenizer.encode(prompts[index].text) == prompts[index].encoded
                    }
                }
            }
            return await group.allSatisfy { $0 }
        }
        #expect(allMatch)
    }

    @Test func plainASCIIPromptsRoundTrip() throws {
        let ascii = fixture.prompts.filter { prompt in
            prompt.text.unicodeScalars.allSatisfy { (0x20..<0x7F).contains($0.value) } && !prompt.text.contains("&")
        }
        #expect(ascii.count >= 80)
        for prompt in ascii {
            let ids = sparseTokenizer.encode(prompt.text)
            let decoded = try sparseTokenizer.decode(ids)
            // Decoding gives the cleaned text with a space after each word; encoding it again
            // gives the same ids.
            #expect(decoded.filter { $0 != " " } == prompt.cleaned.filter { $0 != " " }, "\(prompt.text.debugDescription)")
            #expect(sparseTokenizer.encode(decoded) == ids, "\(prompt.text.debugDescription)")
        }
        #expect(try sparseTokenizer.decode(sparseTokenizer.encode("A Red Ball, please!")) == "a red ball , please ! ")
    }

    @Test func loadsTheGzipVocabularyFormat() throws {
        let url = fixturesFolder.appendingPathComponent(fixture.head_vocab.file)
        let tokenizer = try ClipTokenizer(vocabularyFile: url.path)
        #expect(tokenizer.startOfTextToken == 512 + fixture.head_vocab.merge_count)
        #expect(tokenizer.vocabularySize == 514 + fixture.head_vocab.merge_count)
        for item in fixture.head_vocab.cases {
            #expect(tokenizer.encode(item.text) == item.encoded, "\(item.text.debugDescription)")
        }
        let empty = try tokenizer.tokenize("")
        #expect(empty.prefix(3) == [tokenizer.startOfTextToken, tokenizer.endOfTextToken, 0] && empty.count == 77)
    }

    @Test func gzipMembersAndPaddingAreRead() throws {
        let head = try headVocabularyBytes()
        let once = try Gzip.decompress(head)
        #expect(try Gzip.decompress(head + head) == once + once)
        #expect(try Gzip.decompress(head + [0, 0, 0, 0]) == once)
        #expect(throws: GzipError.self) { try Gzip.decompress(head + [1, 2, 3]) }
    }

    @Test func absentOrCorruptVocabulariesGiveClearErrors() throws {
        let missing = "/nonexistent/folder/bpe_simple_vocab_16e6.txt.gz"
        do {
            _ = try ClipTokenizer(vocabularyFile: missing)
            Issue.record("a missing vocabulary loaded")
        } catch let error as ClipTokenizerError {
            #expect(error == .vocabularyNotFound(path: missing))
            #expect(error.description.contains(missing) && error.description.contains("bpe_simple_vocab_16e6.txt.gz") && error.description.contains("download"))
        }

        let folder = FileManager.default.temporaryDirectory.path
        #expect(throws: ClipTokenizerError.vocabularyUnreadable(path: folder)) { try ClipTokenizer(vocabularyFile: folder) }

        let head = try headVocabularyBytes()
        func corruptReason(_ bytes: [UInt8]) throws -> String? {
            let path = try temporaryFile(bytes)
            defer { try? FileManager.default.removeItem(atPath: path) }
            do {
                _ = try ClipTokenizer(vocabularyFile: path)
                return nil
            } catch let ClipTokenizerError.vocabularyCorrupt(reportedPath, reason) {
                #expect(reportedPath == path)
                return reason
            }
        }
        func gzip(_ text: String) -> [UInt8] { storedGzip(Array(text.utf8)) }

        #expect(try corruptReason(Array("#version: 0.2\ni n\n".utf8))?.contains("not gzip") == true)
        #expect(try corruptReason(Array(head.prefix(head.count / 2)))?.contains("truncated") == true)
        var flipped = head
        flipped[40] ^= 0xFF
        #expect(try corruptReason(flipped) != nil)
        #expect(try corruptReason(gzip("#version: 0.2\ni n\nt h e\n"))?.contains("line 3") == true)
        #expect(try corruptReason(gzip("#version: 0.2\ni n\nq zz\n"))?.contains("line 3") == true)
        #expect(try corruptReason(storedGzip([0x23, 0x0A, 0xC3, 0x28, 0x20, 0x6E]))?.contains("UTF-8") == true)
        #expect(try corruptReason(gzip("#version: 0.2"))?.contains("no merge lines") == true)

        // A well-formed stored-block file loads: the hand-made gzip is valid.
        let path = try temporaryFile(gzip("#version: 0.2\ni n\nt h\nth e</w>\n"))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let tiny = try ClipTokenizer(vocabularyFile: path)
        #expect(tiny.vocabularySize == 512 + 3 + 2)
        // "the" merges to "th", then "the</w>"; "in" does not, as its n ends the word: "i", "n</w>".
        #expect(tiny.encode("the in") == [514, 72, 256 + 77])
    }

    @Test func invalidMergeListsAreRejected() {
        #expect(throws: ClipTokenizerError.invalidMerges("two merges have rank 0")) {
            try ClipTokenizer(merges: [.init(rank: 0, first: "i", second: "n"), .init(rank: 0, first: "t", second: "h")])
        }
        #expect(throws: ClipTokenizerError.self) {
            try ClipTokenizer(merges: [.init(rank: 48_894, first: "i", second: "n")])
        }
        #expect(throws: ClipTokenizerError.self) {
            try ClipTokenizer(merges: [.init(rank: 3, first: "th", second: "e")])
        }
        #expect(throws: ClipTokenizerError.self) {
            try ClipTokenizer(merges: [.init(rank: 3, first: "t h", second: "e")])
        }
    }

    @Test(.enabled(if: officialVocabularyPath != nil, "needs the official vocabulary file"))
    func officialVocabularyGivesTheReferenceIds() throws {
        let tokenizer = try ClipTokenizer(vocabularyFile: try #require(officialVocabularyPath))
        #expect(tokenizer.vocabularySize == 49408)
        for prompt in fixture.prompts {
            #expect(tokenizer.encode(prompt.text) == prompt.encoded, "\(prompt.text.debugDescription)")
        }
        #expect(try tokenizer.tokenize("a red ball").prefix(5) == [49406, 320, 736, 1069, 49407])
    }
}

/// A gzip member holding `bytes` in stored (uncompressed) deflate blocks, for test files
/// with chosen contents.
private func storedGzip(_ bytes: [UInt8]) -> [UInt8] {
    var out: [UInt8] = [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF]
    var offset = 0
    repeat {
        let length = min(bytes.count - offset, 0xFFFF)
        let final: UInt8 = offset + length == bytes.count ? 1 : 0
        out += [final, UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8((~length >> 8) & 0xFF)]
        out += bytes[offset..<(offset + length)]
        offset += length
    } while offset < bytes.count
    let crc = crc32(bytes)
    let size = UInt32(truncatingIfNeeded: bytes.count)
    for value in [crc, size] {
        out += [UInt8(value & 0xFF), UInt8((value >> 8) & 0xFF), UInt8((value >> 16) & 0xFF), UInt8(value >> 24)]
    }
    return out
}

private func crc32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}
