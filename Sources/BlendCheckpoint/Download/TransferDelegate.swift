import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Receives one transfer's response and body, writing the body to the part file as it arrives.
final class TransferDelegate: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    // URLSession calls the delegate on its own serial queue; the lock guards the
    // state that the waiting thread reads once `finished` is signalled.
    private let lock = NSLock()
    private let file: FileHandle
    private var offset: Int64
    private var written: Int64 = 0
    private var expectedTotal: Int64?
    private var status = 0
    private var failure: Error?
    private var diskError: String?
    private var rangeMismatch = false
    private let progress: @Sendable (DownloadProgress) -> Void
    let finished = DispatchSemaphore(value: 0)

    init(file: FileHandle, offset: Int64, progress: @escaping @Sendable (DownloadProgress) -> Void) {
        self.file = file
        self.offset = offset
        self.progress = progress
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping @Sendable (URLSession.ResponseDisposition) -> Void) {
        lock.lock()
        defer { lock.unlock() }
        let http = response as? HTTPURLResponse
        status = http?.statusCode ?? 0
        let length = response.expectedContentLength >= 0 ? response.expectedContentLength : nil
        switch status {
        case 200:
            // The server sent the whole file (it ignored or was not asked for a range): start over.
            do {
                try file.truncate(atOffset: 0)
                offset = 0
            } catch {
                diskError = error.localizedDescription
                completionHandler(.cancel)
                return
            }
            expectedTotal = length
        case 206:
            let range = TransferDelegate.contentRange(http)
            guard let range, range.start == offset else {
                // Resuming at any other byte would corrupt the file: drop it and retry whole.
                rangeMismatch = true
                try? file.truncate(atOffset: 0)
                completionHandler(.cancel)
                return
            }
            expectedTotal = range.total ?? length.map { $0 + offset }
        default:
            completionHandler(.cancel)
            return
        }
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        lock.lock()
        do {
            try file.write(contentsOf: data)
            written += Int64(data.count)
        } catch {
            diskError = error.localizedDescription
            lock.unlock()
            dataTask.cancel()
            return
        }
        let report = DownloadProgress(bytesReceived: offset + written, bytesExpected: expectedTotal, resumedFrom: offset)
        lock.unlock()
        progress(report)
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        lock.lock()
        failure = error
        lock.unlock()
        finished.signal()
    }

    /// Classifies the finished transfer.
    func outcome() throws {
        lock.lock()
        defer { lock.unlock() }
        if let diskError { throw ModelDownloader.TransferFailure.disk(diskError) }
        if rangeMismatch { throw ModelDownloader.TransferFailure.lost("the server resumed at the wrong byte; starting over") }
        if status == 416 { return }  // nothing left to send: the part is complete (the hash will tell)
        if status != 0, status != 200, status != 206 { throw ModelDownloader.TransferFailure.status(status) }
        if let failure {
            let code = (failure as? URLError)?.code
            let unreachable: Set<URLError.Code> = [.cannotConnectToHost, .cannotFindHost, .notConnectedToInternet,
                                                   .dnsLookupFailed, .internationalRoamingOff, .dataNotAllowed]
            if status == 0, let code, unreachable.contains(code) || code == .timedOut {
                throw ModelDownloader.TransferFailure.unreachable(failure.localizedDescription)
            }
            throw ModelDownloader.TransferFailure.lost(failure.localizedDescription)
        }
        if let expectedTotal, offset + written < expectedTotal {
            throw ModelDownloader.TransferFailure.lost("the connection closed after \(offset + written) of \(expectedTotal) bytes")
        }
    }

    /// `Content-Range: bytes START-END/TOTAL` (TOTAL may be `*`).
    private static func contentRange(_ response: HTTPURLResponse?) -> (start: Int64, total: Int64?)? {
        guard let response else { return nil }
        let header = response.allHeaderFields.first { ($0.key as? String)?.lowercased() == "content-range" }?.value as? String
        guard let header, header.hasPrefix("bytes ") else { return nil }
        let spec = header.dropFirst("bytes ".count)
        let parts = spec.split(separator: "/")
        guard let range = parts.first, let dash = range.firstIndex(of: "-"), let start = Int64(range[..<dash]) else { return nil }
        return (start, parts.count > 1 ? Int64(parts[1]) : nil)
    }
}
