import BlendImage
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The jobs on disk, one folder each under `DATA/jobs/<id>/`:
///
/// ```
/// job.json            the JobRecord (written atomically at every change of state)
/// photo.png|photo.jpg the photo as uploaded (Exif orientation is applied when it is read)
/// mask.png            the mask as uploaded (white = edit)
/// out/                the pipeline's output folder: runs/<run>/ (samples/ as they finish,
///                     ranked/, contact_sheet.png, report.json), latest -> runs/<run>
/// results.zip         made on the first download of all results
/// ```
///
/// A lock file (`DATA/.lock`, `flock`) keeps a second server off the same directory.
///
/// Every write and removal in a job's folder goes through ``JobStoreDisk`` and fails with a
/// ``JobStoreError`` that names the path and what to do (free space, make the folder writable).
final class JobStore: Sendable {
    let root: URL
    let jobsDirectory: URL
    private let lockDescriptor: Int32
    private let disk: JobStoreDisk

    /// - Parameter disk: how job folders are written and removed; tests pass one that fails.
    init(root: URL, disk: JobStoreDisk = .system) throws {
        self.root = root
        self.disk = disk
        jobsDirectory = root.appendingPathComponent("jobs", isDirectory: true)
        do {
            try FileManager.default.createDirectory(at: jobsDirectory, withIntermediateDirectories: true)
        } catch {
            throw ServerError.dataDirectory(path: root.path, reason: "it cannot be created (\(error.localizedDescription))")
        }
        let lockPath = root.appendingPathComponent(".lock").path
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw ServerError.dataDirectory(path: root.path, reason: "it is not writable (\(String(cString: strerror(errno))))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            Glibc.close(fd)
            // The server holding it wrote its process and, once listening, its port there.
            let owner: (pid: Int?, port: Int?) = (try? String(contentsOfFile: lockPath, encoding: .utf8)).map(Self.owner(from:)) ?? (nil, nil)
            let who = [owner.pid.map { "process \($0)" }, owner.port.map { "port \($0)" }].compactMap { $0 }.joined(separator: ", ")
            throw ServerError.dataDirectory(
                path: root.path,
                reason: "another blend serve\(who.isEmpty ? "" : " (\(who))") is using it: use that one"
                    + (owner.port.map { " (http://127.0.0.1:\($0)/ if it listens on loopback)" } ?? "") + ", or stop it")
        }
        lockDescriptor = fd
        writeOwner(port: nil)
    }

    /// Records in the lock file which server holds it (`pid=N`, and `port=N` once it listens),
    /// for the message a second server gives.
    func recordOwner(port: Int) { writeOwner(port: port) }

    private func writeOwner(port: Int?) {
        let text = "pid=\(getpid())\n" + (port.map { "port=\($0)\n" } ?? "")
        _ = ftruncate(lockDescriptor, 0)
        _ = text.withCString { pwrite(lockDescriptor, $0, strlen($0), 0) }
    }

    /// The process and port a lock file names (either may be absent).
    static func owner(from text: String) -> (pid: Int?, port: Int?) {
        var pid: Int?, port: Int?
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            if parts[0] == "pid" { pid = Int(parts[1]) }
            if parts[0] == "port" { port = Int(parts[1]) }
        }
        return (pid, port)
    }

    /// Releases the directory lock.
    func close() {
        flock(lockDescriptor, LOCK_UN)
        Glibc.close(lockDescriptor)
    }

    /// A new job id: creation time (sortable) and 24 random bits, e.g. `20261130-084012-a1b2c3`.
    static func newID(now: Date = Date()) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        return formatter.string(from: now) + "-" + String(format: "%06x", UInt32.random(in: 0..<(1 << 24)))
    }

    /// True for ids of the form ``newID(now:)`` makes: nothing else ever becomes a path.
    static func isValidID(_ id: String) -> Bool {
        let bytes = Array(id.utf8)
        guard bytes.count == 22 else { return false }
        for (i, b) in bytes.enumerated() {
            switch i {
            case 8, 15: if b != UInt8(ascii: "-") { return false }
            case 16...: if !(b >= 0x30 && b <= 0x39 || b >= 0x61 && b <= 0x66) { return false }
            default: if !(b >= 0x30 && b <= 0x39) { return false }
            }
        }
        return true
    }

    func directory(_ id: String) -> URL { jobsDirectory.appendingPathComponent(id, isDirectory: true) }
    func outputDirectory(_ id: String) -> URL { directory(id).appendingPathComponent("out", isDirectory: true) }
    func file(_ id: String, _ name: String) -> URL { directory(id).appendingPathComponent(name) }

    /// Creates the job's folder with its inputs; the record is saved by the caller.
    /// - Throws: ``JobStoreError`` when the folder or a file cannot be written.
    func createJob(id: String, photo: [UInt8], photoFile: String, mask: [UInt8]?, maskFile: String?) throws(JobStoreError) {
        let folder = directory(id)
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw JobStoreError(writing: folder.path, folder: jobsDirectory.path, error)
        }
        try write(photo, to: folder.appendingPathComponent(photoFile).path, in: folder.path)
        if let mask, let maskFile { try write(mask, to: folder.appendingPathComponent(maskFile).path, in: folder.path) }
    }

    /// Writes the job's record, `job.json`, atomically (the old record stays whole if it fails).
    /// - Throws: ``JobStoreError`` naming `job.json` and what to do.
    func save(_ record: JobRecord) throws(JobStoreError) {
        let path = file(record.id, "job.json").path
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        let bytes: [UInt8]
        do {
            bytes = Array(try encoder.encode(record)) + [0x0A]
        } catch {
            throw JobStoreError(operation: .write, path: path, reason: "the record cannot be encoded: \(error)", cause: .other,
                                folder: directory(record.id).path)
        }
        try write(bytes, to: path, in: directory(record.id).path)
    }

    private func write(_ bytes: [UInt8], to path: String, in folder: String) throws(JobStoreError) {
        do {
            try disk.writeFile(bytes, path)
        } catch {
            throw JobStoreError(writing: path, folder: folder, error)
        }
    }

    /// Every job with a readable `job.json`, oldest first; unreadable folders are named in `skipped`.
    func loadAll() -> (jobs: [JobRecord], skipped: [String]) {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        var jobs: [JobRecord] = [], skipped: [String] = []
        let names = (try? FileManager.default.contentsOfDirectory(atPath: jobsDirectory.path)) ?? []
        for name in names.sorted() where Self.isValidID(name) {
            do {
                let record = try decoder.decode(JobRecord.self, from: Data(contentsOf: file(name, "job.json")))
                guard record.id == name else { throw ServerError.badRequest("the record names another job") }
                jobs.append(record)
            } catch {
                skipped.append(name)
            }
        }
        return (jobs, skipped)
    }

    /// Forgets a made zip (the results changed).
    func removeZip(_ id: String) { try? FileManager.default.removeItem(at: file(id, "results.zip")) }

    /// Removes the job's folder with everything in it.
    /// - Throws: ``JobStoreError`` naming what could not be removed.
    func delete(_ id: String) throws(JobStoreError) {
        let folder = directory(id).path
        do {
            try disk.removeItem(folder)
        } catch {
            throw JobStoreError(removing: folder, folder: jobsDirectory.path, error)
        }
    }

    /// A zip (stored, not recompressed: PNGs are compressed already) of the ranked results,
    /// the contact sheet and report.json. Made once; later calls return the same file.
    func resultsZip(for record: JobRecord) throws -> URL {
        let destination = file(record.id, "results.zip")
        if FileManager.default.fileExists(atPath: destination.path) { return destination }
        let temporary = file(record.id, ".results-\(UUID().uuidString).zip")
        defer { try? FileManager.default.removeItem(at: temporary) }
        var archive = try ZipWriter(url: temporary)
        let prefix = "blend-\(record.id)/"
        for result in record.results {
            try archive.add(name: prefix + URL(fileURLWithPath: result.file).lastPathComponent,
                            contentsOf: directory(record.id).appendingPathComponent(result.file))
        }
        if let run = record.runDirectory.map({ directory(record.id).appendingPathComponent($0) }) {
            for extra in ["contact_sheet.png", "report.json"] where FileManager.default.fileExists(atPath: run.appendingPathComponent(extra).path) {
                try archive.add(name: prefix + extra, contentsOf: run.appendingPathComponent(extra))
            }
        }
        try archive.finish()
        // rename(2) replaces atomically, so two downloads at once both get a whole file.
        guard rename(temporary.path, destination.path) == 0 else {
            throw ServerError.conflict("the zip of \(record.id) could not be written (\(String(cString: strerror(errno))))")
        }
        return destination
    }
}

/// How a ``JobStore`` writes and removes files in job folders: the system's calls, or in tests
/// ones that fail as a full disk or a read-only folder would (tests run as root, which
/// permissions do not stop).
struct JobStoreDisk: Sendable {
    /// Writes a whole file atomically (``writeFileAtomically(_:to:)``).
    var writeFile: @Sendable (_ bytes: [UInt8], _ path: String) throws -> Void
    /// Removes a file or a folder with its contents.
    var removeItem: @Sendable (_ path: String) throws -> Void

    static let system = JobStoreDisk(writeFile: { bytes, path in try writeFileAtomically(bytes, to: path) },
                                     removeItem: { path in try FileManager.default.removeItem(atPath: path) })
}

/// A write or removal in the data directory that failed, with what the user can do about it.
struct JobStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    enum Operation: Sendable { case write, removal }
    /// What kept the disk from doing it, as far as the system's error tells.
    enum Cause: Sendable { case diskFull, notWritable, other }

    var operation: Operation
    /// The file or folder that could not be written or removed.
    var path: String
    /// The system's words, e.g. "no space left on the device".
    var reason: String
    var cause: Cause
    /// The folder the user should look at (free space on its disk, or make it writable).
    var folder: String

    /// What to do, in a sentence.
    var remedy: String {
        switch cause {
        case .diskFull: return "the disk is full: free some space on the disk that holds \(folder)"
        case .notWritable: return "the folder is not writable: make \(folder) writable for the user running blend serve"
        case .other: return "check that \(folder) is writable and its disk has free space"
        }
    }

    /// `PATH could not be written (REASON); REMEDY`.
    var description: String {
        "\(path) could not be \(operation == .write ? "written" : "removed") (\(reason)); \(remedy)"
    }

    init(operation: Operation, path: String, reason: String, cause: Cause, folder: String) {
        self.operation = operation
        self.path = path
        self.reason = reason
        self.cause = cause
        self.folder = folder
    }

    init(writing path: String, folder: String, _ error: any Error) {
        let (reason, cause) = Self.explain(error)
        self.init(operation: .write, path: path, reason: reason, cause: cause, folder: folder)
    }

    init(removing path: String, folder: String, _ error: any Error) {
        let (reason, cause) = Self.explain(error)
        self.init(operation: .removal, path: path, reason: reason, cause: cause, folder: folder)
    }

    /// The reason in words and its cause, from BlendImage's write errors (which carry the
    /// system's reason in words) or Foundation's (which carry the POSIX error underneath).
    static func explain(_ error: any Error) -> (reason: String, cause: Cause) {
        switch error {
        case let ImageError.outputNotWritable(_, reason), let ImageError.writeFailed(_, reason):
            return (reason, cause(ofReason: reason))
        case let ImageError.outputDirectoryMissing(_, directory):
            return ("the folder \(directory) is missing", .other)
        default:
            // On Linux the underlying error may be a Swift error (POSIXError) rather than an NSError.
            let nsError = error as NSError
            let underlying = (nsError.userInfo[NSUnderlyingErrorKey] as? any Error).map { $0 as NSError }
            let posix = [nsError, underlying].compactMap { $0 }.first { $0.domain == NSPOSIXErrorDomain }
            guard let code = posix?.code else { return (String(describing: error), .other) }
            let reason = String(cString: strerror(Int32(code)))
            switch Int32(code) {
            case ENOSPC, EDQUOT: return (reason, .diskFull)
            case EACCES, EPERM, EROFS: return (reason, .notWritable)
            default: return (reason, .other)
            }
        }
    }

    /// The cause behind BlendImage's words for ENOSPC, EDQUOT, EACCES/EPERM and EROFS.
    static func cause(ofReason reason: String) -> Cause {
        if reason.contains("no space left") || reason.contains("quota exceeded") { return .diskFull }
        if reason.contains("permission denied") || reason.contains("read-only file system") { return .notWritable }
        return .other
    }
}
