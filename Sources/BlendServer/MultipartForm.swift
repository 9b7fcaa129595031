import Foundation
import MultipartKit
import NIOCore

/// One part of a `multipart/form-data` body.
struct FormPart {
    var name: String
    var filename: String?
    var body: [UInt8]
}

/// Reading a `multipart/form-data` request body into its parts: the first thing the server
/// does with an upload from a browser, so it must take any bytes without crashing, hanging
/// or allocating beyond the body's size (`Fuzz/Targets/multipart-form.swift` fuzzes it).
/// Apart from ``ServerError``, it needs nothing of the server (the fuzz target compiles it alone).
enum MultipartForm {
    /// The largest number of parts a job's form may have.
    static let maxParts = 16

    /// The parts of a `multipart/form-data` body (at most ``maxParts``).
    static func parse(_ body: ByteBuffer, contentType: String?) throws -> [String: FormPart] {
        guard let contentType, contentType.lowercased().hasPrefix("multipart/form-data") else {
            throw ServerError.badRequest("send the job as multipart/form-data with the fields photo, mask, prompt and settings")
        }
        guard let boundary = parameter("boundary", in: contentType), !boundary.isEmpty, boundary.utf8.count <= 200 else {
            throw ServerError.badRequest("the multipart/form-data request has no boundary")
        }
        final class Collector {
            var parts: [FormPart] = []
            var headers: [(String, String)] = []
            var body: [UInt8] = []
        }
        try body.withUnsafeReadableBytes { try checkHeaderNames($0, boundary: Array(boundary.utf8)) }
        let collector = Collector()
        let parser = MultipartParser(boundary: boundary)
        parser.onHeader = { name, value in collector.headers.append((name, value)) }
        parser.onBody = { buffer in collector.body += buffer.readBytes(length: buffer.readableBytes) ?? [] }
        parser.onPartComplete = {
            let disposition = collector.headers.first { $0.0.lowercased() == "content-disposition" }?.1 ?? ""
            collector.parts.append(FormPart(name: parameter("name", in: disposition) ?? "",
                                            filename: parameter("filename", in: disposition), body: collector.body))
            collector.headers = []
            collector.body = []
        }
        do {
            try parser.execute(body)
        } catch {
            throw ServerError.badRequest("the multipart/form-data body is malformed (\(error))")
        }
        guard collector.parts.count <= maxParts else { throw ServerError.badRequest("too many form fields (\(collector.parts.count))") }
        var byName: [String: FormPart] = [:]
        for part in collector.parts where byName[part.name] == nil { byName[part.name] = part }
        return byName
    }

    /// Refuses a body with a byte of 0x80 or more in a part's header name.
    ///
    /// MultipartKit 4.7.1 looks each byte of a header name up in a 128-entry table, so such a
    /// byte traps: a remote crash of `blend serve` from one malformed upload (found by the
    /// `multipart-form` fuzz target; regression input in `Fuzz/Regressions/multipart-form/`).
    /// Header names are ASCII tokens (RFC 9110 §5.1), so nothing valid is refused; values
    /// (a UTF-8 `filename=`) are not checked. Every place the parser can start a header name
    /// is covered: each line of the header block after any occurrence of `--boundary`, up to
    /// its first colon. Linear in the body's size.
    ///
    /// - Throws: ``ServerError/badRequest(_:)``.
    static func checkHeaderNames(_ bytes: UnsafeRawBufferPointer, boundary: [UInt8]) throws {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        let delimiter = Array("--".utf8) + boundary
        let crlf: [UInt8] = [0x0D, 0x0A]
        let count = bytes.count
        /// Knuth–Morris–Pratt failure table of `needle`, computed once per needle (linear
        /// search, so a body crafted of near-delimiters cannot make it quadratic).
        func failureTable(_ needle: [UInt8]) -> [Int] {
            var fallback = [Int](repeating: 0, count: needle.count)
            var k = 0
            for i in needle.indices.dropFirst() {
                while k > 0, needle[i] != needle[k] { k = fallback[k - 1] }
                if needle[i] == needle[k] { k += 1 }
                fallback[i] = k
            }
            return fallback
        }
        let delimiterTable = failureTable(delimiter), crlfTable = failureTable(crlf)
        /// The offset of `needle` (with its `fallback` table) at or after `from`, or nil.
        func find(_ needle: [UInt8], _ fallback: [Int], from: Int) -> Int? {
            var matched = 0
            var i = from
            while i < count {
                while matched > 0, base[i] != needle[matched] { matched = fallback[matched - 1] }
                if base[i] == needle[matched] { matched += 1 }
                if matched == needle.count { return i + 1 - needle.count }
                i += 1
            }
            return nil
        }
        var searchFrom = 0
        while let found = find(delimiter, delimiterTable, from: searchFrom) {
            // The rest of the delimiter's line, then the header lines up to the blank one.
            var line = (find(crlf, crlfTable, from: found + delimiter.count) ?? count) + 2
            while line < count, base[line] != 0x0D {
                var i = line
                while i < count, base[i] != UInt8(ascii: ":"), base[i] != 0x0D {
                    if base[i] >= 0x80 {
                        throw ServerError.badRequest("the multipart/form-data body is malformed (a part's header name is not ASCII)")
                    }
                    i += 1
                }
                line = (find(crlf, crlfTable, from: i) ?? count) + 2
            }
            searchFrom = max(found + 1, line)
        }
    }

    /// A `name=value` or `name="value"` parameter of a header value.
    static func parameter(_ name: String, in header: String) -> String? {
        for piece in header.split(separator: ";").dropFirst() {
            let pair = piece.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces).lowercased() == name else { continue }
            var value = pair[1].trimmingCharacters(in: .whitespaces)
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            return value
        }
        return nil
    }
}
