import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A tiny HTTP/1.1 server on 127.0.0.1 for download tests: one connection at a
/// time, each answered by a scripted handler. It listens on loopback only, stops
/// after `maximumConnections` or `lifetime` seconds, whichever comes first.
final class LocalHTTPServer: @unchecked Sendable {
    struct Request: Sendable {
        let method: String
        let path: String
        /// Header names lower-cased.
        let headers: [String: String]
    }

    struct Response: Sendable {
        var status: Int
        var headers: [(String, String)] = []
        var body: [UInt8] = []
        /// Close the connection after sending this many body bytes (a broken transfer).
        var closeAfterBodyBytes: Int?

        /// `body` as a static file would be served, honouring `Range: bytes=N-`.
        static func file(_ body: [UInt8], for request: Request, closeAfter: Int? = nil) -> Response {
            if let range = request.headers["range"], range.hasPrefix("bytes="), range.hasSuffix("-"),
               let start = Int(range.dropFirst(6).dropLast()) {
                guard start < body.count else {
                    return Response(status: 416, headers: [("Content-Range", "bytes */\(body.count)")])
                }
                let slice = Array(body[start...])
                return Response(status: 206, headers: [("Content-Range", "bytes \(start)-\(body.count - 1)/\(body.count)")],
                                body: slice, closeAfterBodyBytes: closeAfter)
            }
            return Response(status: 200, body: body, closeAfterBodyBytes: closeAfter)
        }
    }

    let port: UInt16
    private let listener: Int32
    private let lock = NSLock()
    private var recorded: [Request] = []
    private var stopped = false
    private let done = DispatchSemaphore(value: 0)

    /// Requests served so far, in order.
    var requests: [Request] {
        lock.lock()
        defer { lock.unlock() }
        return recorded
    }

    /// `handler` gets each request and its 0-based index.
    init(maximumConnections: Int = 16, lifetime: TimeInterval = 30,
         handler: @escaping @Sendable (Request, Int) -> Response) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0  // any free port
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 8) == 0 else {
            close(fd)
            throw POSIXError(.EADDRINUSE)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        listener = fd
        port = UInt16(bigEndian: address.sin_port)

        let deadline = Date().addingTimeInterval(lifetime)
        let thread = Thread { [self] in
            var served = 0
            while served < maximumConnections, Date() < deadline, !isStopped {
                var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
                guard poll(&poller, 1, 100) > 0 else { continue }
                let connection = accept(listener, nil, nil)
                guard connection >= 0 else { continue }
                serve(connection, index: served, handler: handler)
                close(connection)
                served += 1
            }
            done.signal()
        }
        thread.start()
    }

    deinit { stop() }

    private var isStopped: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopped
    }

    func stop() {
        lock.lock()
        let wasStopped = stopped
        stopped = true
        lock.unlock()
        guard !wasStopped else { return }
        done.wait()
        close(listener)
    }

    func url(_ path: String) -> URL { URL(string: "http://127.0.0.1:\(port)\(path)")! }

    private func serve(_ connection: Int32, index: Int, handler: (Request, Int) -> Response) {
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let terminator: [UInt8] = [13, 10, 13, 10]
        while received.count < 65536 {
            let n = recv(connection, &buffer, buffer.count, 0)
            guard n > 0 else { return }
            received += buffer[0..<n]
            if received.count >= 4, (0...(received.count - 4)).contains(where: { Array(received[$0..<($0 + 4)]) == terminator }) { break }
        }
        let text = String(decoding: received, as: UTF8.self)
        let lines = text.components(separatedBy: "\r\n")
        let requestLine = lines.first?.split(separator: " ") ?? []
        guard requestLine.count >= 2 else { return }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let request = Request(method: String(requestLine[0]), path: String(requestLine[1]), headers: headers)
        lock.lock()
        recorded.append(request)
        lock.unlock()

        let response = handler(request, index)
        let reasons = [200: "OK", 206: "Partial Content", 404: "Not Found", 416: "Range Not Satisfiable", 500: "Internal Server Error"]
        var head = "HTTP/1.1 \(response.status) \(reasons[response.status] ?? "Status")\r\n"
        head += "Content-Length: \(response.body.count)\r\nConnection: close\r\n"
        for (name, value) in response.headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        let sent = min(response.closeAfterBodyBytes ?? response.body.count, response.body.count)
        send(connection, Array(head.utf8) + response.body[0..<sent])
    }

    private func send(_ connection: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { return }
            offset += n
        }
    }
}
