// The server's reading of a job upload (`POST /api/jobs`): the multipart/form-data body into
// its parts (MultipartKit's parser, compiled with coverage, and blend's handling of its
// callbacks), then the photo's and mask's headers as the intake checks them against the pixel
// limit. The input is the Content-Type header's value, a newline, then the body.
import BlendImage
import NIOCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let newline = bytes.firstIndex(of: 0x0A) ?? size
    let contentType = String(decoding: bytes[0..<newline], as: UTF8.self)
    let body = ByteBuffer(bytes: bytes[min(size, newline + 1)...])
    var parts: [String: FormPart] = [:]
    expectDocumented({ parts = try MultipartForm.parse(body, contentType: contentType) }, allowed: { $0 is ServerError })
    // The parts hold no more than the body: nothing is allocated beyond what was sent.
    precondition(parts.count <= MultipartForm.maxParts, "\(parts.count) parts")
    let held = parts.values.reduce(0) { $0 + $1.body.count + $1.name.utf8.count + ($1.filename?.utf8.count ?? 0) }
    precondition(held <= size, "the parts hold \(held) bytes of a \(size)-byte input")
    for name in ["photo", "mask"] {
        guard let part = parts[name] else { continue }
        expectDocumented({ _ = try ImageSize(header: part.body, source: name) }, allowed: { $0 is ImageError })
    }
    return 0
}
