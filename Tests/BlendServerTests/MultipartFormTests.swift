import Foundation
import NIOCore
import Testing
@testable import BlendServer

/// The upload parser on its own: the fuzz target's finding (a byte of 0x80 or more where
/// MultipartKit reads a header name trapped the server) and the bodies that must still read.
@Suite struct MultipartFormTests {
    let contentType = "multipart/form-data; boundary=XyZ"

    func body(_ parts: [[UInt8]]) -> ByteBuffer {
        var bytes: [UInt8] = []
        for part in parts { bytes += Array("--XyZ\r\n".utf8) + part + Array("\r\n".utf8) }
        bytes += Array("--XyZ--\r\n".utf8)
        return ByteBuffer(bytes: bytes)
    }

    @Test func theFuzzersFindingIsABadRequestNotACrash() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/Regressions/multipart-form/header-name-byte-0x80-plus.bin")
        let input = Array(try Data(contentsOf: url))
        let newline = try #require(input.firstIndex(of: 0x0A))
        #expect(throws: ServerError.self) {
            try MultipartForm.parse(ByteBuffer(bytes: input[(newline + 1)...]), contentType: String(decoding: input[..<newline], as: UTF8.self))
        }
    }

    @Test func nonASCIIHeaderNamesAreRefusedAndUTF8ValuesRead() throws {
        // A part whose header block runs into binary data (no blank line before it).
        let binary = body([Array("Content-Disposition: form-data; name=\"photo\"\r\n".utf8) + [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A]])
        #expect(throws: ServerError.self) { try MultipartForm.parse(binary, contentType: contentType) }
        let name = body([Array("Cont\u{e9}nt-Disposition: form-data; name=\"prompt\"\r\n\r\nx".utf8)])
        #expect(throws: ServerError.self) { try MultipartForm.parse(name, contentType: contentType) }
        // A UTF-8 filename in a header value, and binary bytes in a part's body, are fine.
        let good = body([Array("Content-Disposition: form-data; name=\"photo\"; filename=\"caf\u{e9}.png\"\r\n\r\n".utf8) + [0x89, 0xFF, 0x00, 0x80],
                         Array("Content-Disposition: form-data; name=\"prompt\"\r\n\r\na red ball".utf8)])
        let parts = try MultipartForm.parse(good, contentType: contentType)
        #expect(parts["photo"]?.filename == "caf\u{e9}.png" && parts["photo"]?.body == [0x89, 0xFF, 0x00, 0x80])
        #expect(parts["prompt"].map { String(decoding: $0.body, as: UTF8.self) } == "a red ball")
    }

    @Test func aBodyOfDelimitersIsCheckedInLinearTime() throws {
        // Many boundary occurrences with long header lines: each byte is walked about once.
        var bytes: [UInt8] = []
        for _ in 0..<20_000 { bytes += Array("--XyZ\r\n".utf8) + Array(repeating: UInt8(ascii: "a"), count: 50) }
        let start = Date()
        #expect(throws: ServerError.self) { try MultipartForm.parse(ByteBuffer(bytes: bytes), contentType: contentType) }
        #expect(Date().timeIntervalSince(start) < 5)
    }
}
