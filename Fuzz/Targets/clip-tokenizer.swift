// The CLIP text cleaner and BPE tokenizer on arbitrary bytes (as UTF-8, invalid sequences
// replaced, as a prompt from the command line or a web form arrives).
@testable import BlendModels
import Foundation

let tokenizer: ClipTokenizer = {
    let path = ProcessInfo.processInfo.environment["BLEND_FUZZ_VOCAB"] ?? "Tests/BlendModelsTests/Fixtures/clip_vocab_head.txt.gz"
    do { return try ClipTokenizer(vocabularyFile: path) } catch { fatalError("\(error); run from the repository root or set BLEND_FUZZ_VOCAB") }
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    expectDocumented({
        let ids = try tokenizer.tokenize(text, truncate: true)
        precondition(ids.count == 77 && ids[0] == tokenizer.startOfTextToken, "tokenize broke its contract")
        _ = try tokenizer.decode(ids)
    }, allowed: { $0 is ClipTokenizerError })
    if text.utf8.count <= ClipTokenizer.maximumTextBytes {
        _ = ClipTextCleaner.clean(text)
    }
    return 0
}
