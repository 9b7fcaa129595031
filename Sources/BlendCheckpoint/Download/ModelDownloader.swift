import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// How far a download has got, for a progress display.
public struct DownloadProgress: Sendable, Equatable {
    /// Bytes in the partial file so far, including any resumed from an earlier run.
    public let bytesReceived: Int64
    /// The file's full size, when the server says.
    public let bytesExpected: Int64?
    /// Bytes that were already there when this transfer started.
    public let resumedFrom: Int64
}

public struct DownloadResult: Sendable, Equatable {
    public enum Verification: Sendable, Equatable {
        /// The file's SHA-256 equals the published one.
        case matched
        /// The SHA-256 starts with the published prefix (torchvision style).
        case matchedPrefix
        /// No hash is published; `sha256` is what was downloaded.
        case unverified
        /// The file was already in the cache, of the right size, and (where a hash is
        /// published or pinned) its SHA-256 matched, given in `sha256`.
        case cached
    }

    public let path: URL
    /// The downloaded file's SHA-256; for a file already cached, its SHA-256 when it was checked.
    public let sha256: String?
    public let verification: Verification
    public let bytes: Int64
}

/// Downloads registry files into a `ModelCache`: into `<file>.part`, resuming an
/// existing part with an HTTP Range request, verifying the SHA-256, and renaming
/// into place only when verified, so the cache never holds a partial or wrong file
/// under a model's name.
public struct ModelDownloader: Sendable {
    public var cache: ModelCache
    /// Transfers tried (each resuming the previous) before reporting an interruption.
    public var maximumAttempts = 3
    /// Pause before a retry, growing with each attempt.
    public var retryDelay: TimeInterval = 1
    /// Longest wait for the server to send anything.
    public var requestTimeout: TimeInterval = 60

    public init(cache: ModelCache = .standard()) { self.cache = cache }

    /// Fetches `model` unless it is already cached (or `force`), blocking until done.
    /// `expectedSHA256` pins a hash for files without a published one.
    ///
    /// A file already in the cache is checked first: its size, and its hash where one is
    /// published or pinned. A wrong file throws `DownloadError.wrongCachedFile` (it is left in
    /// place: it may be the user's own); `force` replaces it.
    @discardableResult
    public func download(_ model: ModelDescriptor, expectedSHA256: String? = nil, force: Bool = false,
                         progress: @escaping @Sendable (DownloadProgress) -> Void = { _ in }) throws -> DownloadResult {
        let destination = cache.path(for: model)
        let part = cache.partialPath(for: model)
        let files = FileManager.default
        let checksum = expectedSHA256.map { ModelChecksum.sha256($0.lowercased()) } ?? model.checksum
        if !force, let cached = try verifiedCachedFile(model, checksum: checksum) { return cached }
        do {
            try files.createDirectory(at: cache.directory, withIntermediateDirectories: true)
            if force { try? files.removeItem(at: part) }
            if !files.fileExists(atPath: part.path) {
                guard files.createFile(atPath: part.path, contents: nil) else { throw DownloadError.fileSystem(path: part.path, reason: "cannot create it") }
            }
        } catch let error as DownloadError {
            throw error
        } catch {
            throw DownloadError.fileSystem(path: cache.directory.path, reason: error.localizedDescription)
        }

        var attempt = 0
        while true {
            attempt += 1
            do {
                try transfer(model.url, into: part, progress: progress)
                break
            } catch let TransferFailure.lost(reason) {
                guard attempt < maximumAttempts else {
                    throw DownloadError.interrupted(url: model.url.absoluteString, bytesReceived: fileSize(part),
                                                    partialFile: part.path, reason: reason)
                }
                Thread.sleep(forTimeInterval: retryDelay * Double(attempt))
            } catch let TransferFailure.unreachable(reason) {
                removeIfEmpty(part)
                throw DownloadError.offline(url: model.url.absoluteString, reason: reason, destination: destination.path)
            } catch let TransferFailure.status(status) {
                removeIfEmpty(part)
                throw DownloadError.httpStatus(url: model.url.absoluteString, status: status)
            } catch let TransferFailure.disk(reason) {
                throw DownloadError.fileSystem(path: part.path, reason: reason)
            }
        }

        let digest: String
        do { digest = try FileDigest.sha256(fileAtPath: part.path) } catch {
            throw DownloadError.fileSystem(path: part.path, reason: "\(error)")
        }
        let verification: DownloadResult.Verification
        switch checksum {
        case let .sha256(expected):
            guard digest == expected else { throw mismatch(part, expected, digest) }
            verification = .matched
        case let .sha256Prefix(prefix):
            guard digest.hasPrefix(prefix) else { throw mismatch(part, prefix + "…", digest) }
            verification = .matchedPrefix
        case .unpublished:
            verification = .unverified
        }
        let received = fileSize(part)
        guard model.size.admits(received) else {
            try? files.removeItem(at: part)
            throw DownloadError.wrongSize(url: model.url.absoluteString, bytes: received, expected: model.size.description)
        }
        // rename(2) replaces any old file atomically: readers see the old or the new file, never a mix.
        guard rename(part.path, destination.path) == 0 else {
            throw DownloadError.fileSystem(path: destination.path, reason: String(cString: strerror(errno)))
        }
        return DownloadResult(path: destination, sha256: digest, verification: verification, bytes: fileSize(destination))
    }

    /// Downloads the registry model called `name`.
    @discardableResult
    public func download(named name: String, expectedSHA256: String? = nil, force: Bool = false,
                         progress: @escaping @Sendable (DownloadProgress) -> Void = { _ in }) throws -> DownloadResult {
        guard let model = ModelRegistry.model(named: name) else {
            throw DownloadError.unknownModel(name: name, known: ModelRegistry.models.map(\.name))
        }
        return try download(model, expectedSHA256: expectedSHA256, force: force, progress: progress)
    }

    /// The cached file's result when it passes its checks, nil when there is none.
    private func verifiedCachedFile(_ model: ModelDescriptor, checksum: ModelChecksum) throws -> DownloadResult? {
        let destination = cache.path(for: model)
        switch cache.entry(for: model) {
        case .missing:
            return nil
        case let .wrongSize(bytes, expected):
            throw DownloadError.wrongCachedFile(model: model.name, file: destination.path, reason: "it has \(bytes) bytes; the published file has \(expected)")
        case let .present(bytes):
            let wanted: String
            switch checksum {
            case .unpublished: return DownloadResult(path: destination, sha256: nil, verification: .cached, bytes: bytes)
            case let .sha256(hash): wanted = hash
            case let .sha256Prefix(prefix): wanted = prefix
            }
            let digest: String
            do { digest = try FileDigest.sha256(fileAtPath: destination.path) } catch {
                throw DownloadError.fileSystem(path: destination.path, reason: "\(error)")
            }
            guard digest.hasPrefix(wanted) else {
                throw DownloadError.wrongCachedFile(model: model.name, file: destination.path,
                                                    reason: "its SHA-256 is \(digest), the published one \(wanted)\(wanted.count < 64 ? "…" : "")")
            }
            return DownloadResult(path: destination, sha256: digest, verification: .cached, bytes: bytes)
        }
    }

    private func mismatch(_ part: URL, _ expected: String, _ actual: String) -> DownloadError {
        // A wrong file cannot be resumed into a right one: drop it.
        try? FileManager.default.removeItem(at: part)
        return .checksumMismatch(file: part.path, expected: expected, actual: actual)
    }

    /// A failed first attempt leaves nothing worth resuming.
    private func removeIfEmpty(_ part: URL) {
        if fileSize(part) == 0 { try? FileManager.default.removeItem(at: part) }
    }

    private func fileSize(_ url: URL) -> Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: url.path))?[.size] as? NSNumber)?.int64Value ?? 0
    }

    // MARK: - One HTTP transfer

    enum TransferFailure: Error {
        /// Nothing could be reached: report as offline.
        case unreachable(String)
        /// The connection broke or ended early: resumable.
        case lost(String)
        case status(Int)
        case disk(String)
    }

    /// Appends the rest of `url` to `part` (all of it if the server ignores the Range).
    private func transfer(_ url: URL, into part: URL, progress: @escaping @Sendable (DownloadProgress) -> Void) throws {
        let handle: FileHandle
        do { handle = try FileHandle(forUpdating: part) } catch { throw TransferFailure.disk(error.localizedDescription) }
        defer { try? handle.close() }
        let offset: Int64
        do { offset = Int64(try handle.seekToEnd()) } catch { throw TransferFailure.disk(error.localizedDescription) }

        var request = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: requestTimeout)
        // Byte ranges only make sense on the stored bytes, not a re-compressed stream.
        request.setValue("identity", forHTTPHeaderField: "Accept-Encoding")
        if offset > 0 { request.setValue("bytes=\(offset)-", forHTTPHeaderField: "Range") }

        let delegate = TransferDelegate(file: handle, offset: offset, progress: progress)
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = requestTimeout
        let session = URLSession(configuration: configuration, delegate: delegate, delegateQueue: nil)
        session.dataTask(with: request).resume()
        delegate.finished.wait()
        session.finishTasksAndInvalidate()
        try delegate.outcome()
    }
}
