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
