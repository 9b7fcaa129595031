import BlendImage
import BlendPipeline
import BlendPipelineTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing
import CZlib
@testable import BlendServer

#if canImport(Glibc)
import Glibc
#endif

/// Settings that make a tiny-model job take a fraction of a second.
let quickSettings = #"{"steps": "10", "skip": 7, "samples": 3, "batch": 2, "augmentations": 2}"#

/// A data directory of its own for one test, the shared tiny model files (the pipeline
/// suites' ones), and a 40x30
/// photo with a mask of its centre.
struct ServerFixture {
    let models: TinyModelFiles
    /// This test's folder: the data directory and its inputs are inside.
    let directory: URL
    let data: URL
    let photo: [UInt8]
    let mask: [UInt8]

    init() throws {
        models = sharedTinyModels
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("blend-server-test-\(UUID().uuidString)")
        data = directory.appendingPathComponent("data")
        let (photoPath, maskPath) = try writePhotoAndMask(in: directory.appendingPathComponent("inputs"))
        photo = Array(try Data(contentsOf: URL(fileURLWithPath: photoPath)))
        mask = Array(try Data(contentsOf: URL(fileURLWithPath: maskPath)))
    }

    func configuration(_ change: (inout ServerConfiguration) -> Void = { _ in }) -> ServerConfiguration {
        var configuration = ServerConfiguration(dataDirectory: data, models: models.paths)
        configuration.port = 0
        configuration.keepAliveSeconds = 0.5
        change(&configuration)
        return configuration
    }

    /// A server on the fixture's data directory; `loadModels` starts loading the models (jobs
    /// wait in the queue until they are ready); `disk` is how its job folders are written.
    func server(loadModels: Bool = true, disk: JobStoreDisk = .system, logger: Logger = Logger(label: "blend.serve.test"),
                _ change: (inout ServerConfiguration) -> Void = { _ in }) throws -> BlendServer {
        let server = try BlendServer(configuration: configuration(change), logger: logger, disk: disk)
        if loadModels { server.loadModels() }
        return server
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}

/// Runs `body` against a server on a fixture of its own (a data directory, the shared tiny
/// models): `loadModels` loads the models; `disk` is how job folders are written; `logger`
/// where the server logs; `configure` changes the configuration first. The application (with
/// its job runner) runs while `body` does and is shut down gracefully after it; then the
/// server is closed and the fixture removed.
func withServer<T: Sendable>(_ setup: TestingSetup = .router, loadModels: Bool = true, disk: JobStoreDisk = .system,
                             logger: Logger = Logger(label: "blend.serve.test"),
                             configure: (inout ServerConfiguration) -> Void = { _ in },
                             _ body: @Sendable (ServerFixture, BlendServer, any TestClientProtocol) async throws -> T) async throws -> T {
    let fixture = try ServerFixture()
    defer { fixture.remove() }
    let server = try fixture.server(loadModels: loadModels, disk: disk, logger: logger, configure)
    defer { server.close() }
    return try await server.application().test(setup) { client in try await body(fixture, server, client) }
}

/// A `multipart/form-data` body.
struct Multipart {
    let boundary = "----blend-test-\(UInt32.random(in: 0...UInt32.max))"
    var bytes: [UInt8] = []

    mutating func add(_ name: String, filename: String? = nil, type: String? = nil, _ value: [UInt8]) {
        var head = "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\""
        if let filename { head += "; filename=\"\(filename)\"" }
        head += "\r\n"
        if let type { head += "Content-Type: \(type)\r\n" }
        head += "\r\n"
        bytes += Array(head.utf8) + value + Array("\r\n".utf8)
    }

    mutating func add(_ name: String, _ text: String) { add(name, Array(text.utf8)) }

    func finished() -> [UInt8] { bytes + Array("--\(boundary)--\r\n".utf8) }
    var contentType: String { "multipart/form-data; boundary=\(boundary)" }

    /// The usual job form.
    static func job(photo: [UInt8]?, mask: [UInt8]?, prompt: String? = "a red ball", settings: String? = quickSettings) -> Multipart {
        var form = Multipart()
        if let prompt { form.add("prompt", prompt) }
        if let settings { form.add("settings", settings) }
        if let photo { form.add("photo", filename: "photo.png", type: "image/png", photo) }
        if let mask { form.add("mask", filename: "mask.png", type: "image/png", mask) }
        return form
    }
}

extension TestClientProtocol {
    func post(_ form: Multipart, headers extra: HTTPFields = [:]) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: form.contentType]
        headers.append(contentsOf: extra)
        return try await execute(uri: "/api/jobs", method: .post, headers: headers, body: ByteBuffer(bytes: form.finished()))
    }

    func json(_ uri: String, method: HTTPRequest.Method = .get) async throws -> (status: HTTPResponse.Status, object: [String: Any]) {
        let response = try await execute(uri: uri, method: method)
        let object = (try? JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any]) ?? [:]
        return (response.status, object)
    }

    /// Polls a job until `done` says so (or `seconds` pass).
    func waitForJob(_ id: String, seconds: Double = 120, until done: ([String: Any]) -> Bool = { job in
        ["finished", "cancelled", "failed", "interrupted"].contains(job["state"] as? String ?? "")
    }) async throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let (_, job) = try await json("/api/jobs/\(id)")
            if done(job) { return job }
            try await Task.sleep(for: .milliseconds(20))
        }
        let job = try await json("/api/jobs/\(id)").object
        Issue.record("job \(id) did not get there in \(seconds) s: it is \(job["state"] ?? "-") (\(job["error"] ?? "no error"))")
        return job
    }

    /// Polls the status until the models are ready.
    func waitForModels(seconds: Double = 60) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let (_, status) = try await json("/api/status")
            if (status["models"] as? [String: Any])?["state"] as? String == "ready" { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("the models did not load in \(seconds) s")
    }
}

extension TestResponse {
    var text: String { String(buffer: body) }
    /// The `id` of the job in a JSON body.
    var jobID: String {
        get throws { try #require((try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any])?["id"] as? String) }
    }
    /// The `error.message` of a JSON error body.
    var message: String {
        let object = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any]
        return ((object?["error"] as? [String: Any])?["message"] as? String) ?? ""
    }
}

/// One HTTP/1.1 exchange over a plain socket to 127.0.0.1:`port`, written byte for byte
/// (to send `Host` and `Origin` headers no client library lets through unchanged, and to
/// read servers such as chromedriver whose headers FoundationNetworking rejects). Reads
/// until the server closes (the request should say `Connection: close`) or the body given
/// by `Content-Length` is complete.
func rawHTTP(port: Int, _ head: String, body: [UInt8] = [], timeout: Double = 30) async throws -> (status: Int, text: String) {
    let (status, response, _) = try await offPool { try rawExchange(port: port, head, body: body, timeout: timeout) }
    return (status, String(decoding: response, as: UTF8.self))
}

/// Runs the blocking `work` on a thread of its own, never on one of Swift concurrency's pool
/// threads: the server's handlers run there, and on 2 cores a socket call waiting on the pool
/// while the suite's synchronous tests hold the other thread starves the server it waits for.
func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}

/// ``rawHTTP(port:_:body:timeout:)`` with the body apart: (status, the whole response, body).
/// `text` of rawHTTP is the whole response, headers included.
/// With `stopAfter`, it stops (and hangs up) once the body contains that text.
func rawExchange(port: Int, _ head: String, body: [UInt8] = [], timeout: Double = 30,
                 stopAfter: String? = nil) throws -> (status: Int, response: [UInt8], body: [UInt8]) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw POSIXError(.EIO) }
    defer { close(fd) }
    var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
    let request = Array(head.replacingOccurrences(of: "\n", with: "\r\n").utf8) + Array("\r\n".utf8) + body
    var sent = 0
    while sent < request.count {
        let n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard n > 0 else { break }
        sent += n
    }
    var received: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    var bodyStart: Int?
    var contentLength: Int?
    while true {
        let n = recv(fd, &buffer, buffer.count, 0)
        if n <= 0 { break }
        received += buffer[0..<n]
        if bodyStart == nil, let end = received.firstRange(of: Array("\r\n\r\n".utf8)) {
            bodyStart = end.upperBound
            let headers = String(decoding: received[..<end.lowerBound], as: UTF8.self).lowercased()
            contentLength = headers.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) }
        }
        if let bodyStart, let contentLength, received.count - bodyStart >= contentLength { break }
        if let bodyStart, let stopAfter, received[bodyStart...].firstRange(of: Array(stopAfter.utf8)) != nil { break }
    }
    let status = String(decoding: received.prefix(64), as: UTF8.self).split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) } ?? 0
    return (status, received, Array(received[(bodyStart ?? received.count)...]))
}

/// The current resident set size of this process, in bytes.
func residentBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
    return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
}

/// The entries of a stored (uncompressed) ZIP archive, read through its central directory;
/// each entry's CRC-32 (zlib's) and local header are checked.
func zipEntries(_ zip: [UInt8]) throws -> [String: [UInt8]] {
    struct Bad: Error {}
    func u16(_ o: Int) throws -> Int { guard o + 2 <= zip.count else { throw Bad() }; return Int(zip[o]) | Int(zip[o + 1]) << 8 }
    func u32(_ o: Int) throws -> Int { try u16(o) | u16(o + 2) << 16 }
    guard zip.count >= 22, try u32(zip.count - 22) == 0x0605_4B50 else { throw Bad() }
    let count = try u16(zip.count - 22 + 10)
    var offset = try u32(zip.count - 22 + 16)
    var entries: [String: [UInt8]] = [:]
    for _ in 0..<count {
        guard try u32(offset) == 0x0201_4B50, try u16(offset + 10) == 0 else { throw Bad() }
        let crc = try u32(offset + 16), size = try u32(offset + 20), nameLength = try u16(offset + 28)
        let extra = try u16(offset + 30), comment = try u16(offset + 32), local = try u32(offset + 42)
        let name = String(decoding: zip[offset + 46..<offset + 46 + nameLength], as: UTF8.self)
        guard try u32(local) == 0x0403_4B50 else { throw Bad() }
        let start = local + 30 + (try u16(local + 26)) + (try u16(local + 28))
        let data = Array(zip[start..<start + size])
        let actual = data.withUnsafeBufferPointer { Int(crc32(0, $0.baseAddress, uInt($0.count))) }
        guard actual == crc else { throw Bad() }
        entries[name] = data
        offset += 46 + nameLength + extra + comment
    }
    return entries
}
