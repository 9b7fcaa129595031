import Foundation
import Testing
@testable import BlendModels

/// The tokenizer refuses text it would spend unbounded time on, before doing any work.
@Suite struct TokenizerLimitTests {
    private let tokenizer: ClipTokenizer = {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/clip_vocab_head.txt.gz").path
        return try! ClipTokenizer(vocabularyFile: path)
    }()

    @Test func textPastTheLimitIsRefusedWithTheNumbers() throws {
        let limit = ClipTokenizer.maximumTextBytes
        #expect(throws: ClipTokenizerError.textTooLong(bytes: limit + 1, limit: limit)) {
            try tokenizer.tokenize(String(repeating: "a", count: limit + 1), truncate: true)
        }
        // Bytes, not characters: 1366 three-byte characters are 4098 bytes.
        #expect(throws: ClipTokenizerError.textTooLong(bytes: 4098, limit: limit)) {
            try tokenizer.tokenize(String(repeating: "日", count: 1366), truncate: true)
        }
        #expect(ClipTokenizerError.textTooLong(bytes: 5000, limit: limit).description.contains("at most \(limit) bytes"))
    }

    @Test func theLongestAcceptedWordTokenizesQuickly() throws {
        // One unbroken word at the limit: the worst case for byte-pair encoding's loop.
        let start = Date()
        let word = (0..<ClipTokenizer.maximumTextBytes).map { i in ["t", "h", "e", "a", "n"][i * 7 % 5] }.joined()
        let ids = try tokenizer.tokenize(word, truncate: true)
        #expect(ids.count == 77 && ids[76] == tokenizer.endOfTextToken)
        #expect(Date().timeIntervalSince(start) < 10)
    }
}
