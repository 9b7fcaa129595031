import BlendImage
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Errors about the output location.
public enum OutputError: Error, Equatable, CustomStringConvertible {
    case notWritable(path: String, reason: String)
    /// Another run holds the folder's lock.
    case busy(path: String)
    /// `resume` found nothing to continue.
    case nothingToResume(path: String, reason: String)

    public var description: String {
        switch self {
        case let .notWritable(path, reason):
            return "cannot write to the output directory \(path) (\(reason)): choose another with --out"
        case let .busy(path):
            return "another blend run is writing to \(path): wait for it to finish, or choose another folder with --out"
        case let .nothingToResume(path, reason):
            return "nothing to resume in \(path): \(reason); run again without --resume to start afresh"
        }
    }
}

/// The output folder of `blend edit` (`--out`), laid out so that no kill, crash or error can
/// leave a mix of two runs:
///
/// ```
/// OUT/.lock                  held (flock) by the run writing here; a second run is refused
/// OUT/latest -> runs/<id>    the newest finished run; replaced in one rename(2)
/// OUT/runs/<id>/job.json     what the run makes (inputs, settings), for --resume
///              progress.jsonl one line per finished sample, appended as each is written
///              samples/       each finished sample at the photo's resolution, written at once
///              intermediates/ x0 predictions (--save-intermediates)
///              ranked/        the samples best first (hard links into samples/)
///              contact_sheet.png
///              report.json    written last: a run folder is finished exactly when it has one
/// ```
///
/// Every file is written atomically (temporary file, fsync, rename). `latest` only ever
/// points at a finished run, so a reader of `OUT/latest/` sees one whole run.
final class OutputFolder {
    let root: URL
    private var lockDescriptor: Int32
    /// Called with a name before every file operation: lets a test stop the run between any
    /// two of them (fault injection).
    let hook: (@Sendable (String) throws -> Void)?

    static let runsName = "runs"
    static let latestName = "latest"
    static let lockName = ".lock"

    /// Throws unless the folder at `path` exists and is writable, or could be created; creates
    /// nothing (a run refused for bad input must leave no trace).
    static func checkCanCreate(_ path: String) throws {
        var url = URL(fileURLWithPath: path).standardizedFileURL
        var isDirectory: ObjCBool = false
        while !FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) {
            let parent = url.deletingLastPathComponent()
            if parent.path == url.path { break }
            url = parent
        }
        guard isDirectory.boolValue else {
            throw OutputError.notWritable(path: path, reason: "\(url.path) is a file, not a directory")
        }
        guard access(url.path, W_OK | X_OK) == 0 else {
            throw OutputError.notWritable(path: path, reason: "permission denied in \(url.path)")
        }
    }

    /// The names of the unfinished runs (no report.json) in the folder at `path`; reads only.
    static func unfinishedRunNames(in path: String) -> [String] {
        let runs = URL(fileURLWithPath: path).appendingPathComponent(runsName)
        return ((try? FileManager.default.contentsOfDirectory(atPath: runs.path)) ?? []).filter {
            !$0.hasPrefix(".") && !FileManager.default.fileExists(atPath: runs.appendingPathComponent("\($0)/report.json").path)
        }
    }

    /// The names of the finished runs (with report.json) newer than the one `latest` points
    /// at: runs killed between writing report.json and publishing (newest last); reads only.
    static func unpublishedRunNames(in path: String) -> [String] {
        let root = URL(fileURLWithPath: path)
        let runs = root.appendingPathComponent(runsName)
        let latest = (try? FileManager.default.destinationOfSymbolicLink(atPath: root.appendingPathComponent(latestName).path))
            .map { URL(fileURLWithPath: $0).lastPathComponent } ?? ""
        return ((try? FileManager.default.contentsOfDirectory(atPath: runs.path)) ?? []).filter {
            !$0.hasPrefix(".") && $0 > latest && FileManager.default.fileExists(atPath: runs.appendingPathComponent("\($0)/report.json").path)
        }.sorted()
    }

    /// Creates the folder if needed and takes its lock.
    /// - Throws: ``OutputError/busy(path:)`` when another run holds it.
    init(path: String, hook: (@Sendable (String) throws -> Void)?) throws {
        root = URL(fileURLWithPath: path)
        self.hook = hook
        do {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(Self.runsName), withIntermediateDirectories: true)
        } catch {
            throw OutputError.notWritable(path: path, reason: "it cannot be created")
        }
        let lockPath = root.appendingPathComponent(Self.lockName).path
        lockDescriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lockDescriptor >= 0 else { throw OutputError.notWritable(path: path, reason: "cannot create \(lockPath)") }
        guard flock(lockDescriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(lockDescriptor)
            lockDescriptor = -1
            throw OutputError.busy(path: path)
        }
    }

    deinit { unlock() }

    func unlock() {
        if lockDescriptor >= 0 {
            flock(lockDescriptor, LOCK_UN)
            close(lockDescriptor)
            lockDescriptor = -1
        }
    }

    func step(_ name: String) throws { try hook?(name) }

    var runsDirectory: URL { root.appendingPathComponent(Self.runsName) }

    /// Every run folder, oldest first (run ids sort by time).
    func runs() -> [RunFolder] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: runsDirectory.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { RunFolder(directory: runsDirectory.appendingPathComponent($0), folder: self) }
    }

    /// A new, empty run folder.
    func createRun() throws -> RunFolder {
        var random = SystemRandomNumberGenerator()
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        let id = formatter.string(from: Date()) + "-" + String(random.next() & 0xFFFFFF, radix: 16)
        let run = RunFolder(directory: runsDirectory.appendingPathComponent(id), folder: self)
        try step("create run folder")
        try FileManager.default.createDirectory(at: run.samplesDirectory, withIntermediateDirectories: true)
        return run
    }

    /// Removes what a killed run can leave behind: temporary links and files, the staging
    /// folders of older versions, and unfinished runs with no finished sample (other than
    /// `keeping`). Unfinished runs with finished samples are kept for `--resume`; their
    /// folders are returned.
    func removeStale(keeping: RunFolder?) throws -> [RunFolder] {
        let fm = FileManager.default
        for name in (try? fm.contentsOfDirectory(atPath: root.path)) ?? []
        where name.hasPrefix(".latest-") || name.hasPrefix(".blend-staging-") || name.hasPrefix(".blend-write-test-") {
            try step("remove \(name)")
            try? fm.removeItem(at: root.appendingPathComponent(name))
        }
        var resumable: [RunFolder] = []
        for run in runs() where !run.isFinished && run.directory.lastPathComponent != keeping?.directory.lastPathComponent {
            if run.finishedSamples().isEmpty {
                try step("remove unfinished run \(run.id)")
                try? fm.removeItem(at: run.directory)
            } else {
                resumable.append(run)
            }
        }
        return resumable
    }

    /// Points `latest` at `run`, in one rename: readers see the old run or the new one.
    func publish(_ run: RunFolder) throws {
        let temporary = root.appendingPathComponent(".latest-\(getpid())")
        try? FileManager.default.removeItem(at: temporary)
        try step("create link to \(run.id)")
        guard symlink("\(Self.runsName)/\(run.id)", temporary.path) == 0 else {
            throw OutputError.notWritable(path: root.path, reason: "cannot create a link: \(String(cString: strerror(errno)))")
        }
        try step("replace latest")
        guard rename(temporary.path, root.appendingPathComponent(Self.latestName).path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            throw OutputError.notWritable(path: root.path, reason: "cannot replace \(Self.latestName): \(reason)")
        }
        let fd = open(root.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { _ = fsync(fd); close(fd) }
    }
}

/// One run's folder inside an ``OutputFolder``.
struct RunFolder {
    let directory: URL
    let folder: OutputFolder

    var id: String { directory.lastPathComponent }
    var samplesDirectory: URL { directory.appendingPathComponent("samples") }
    var jobFile: URL { directory.appendingPathComponent("job.json") }
    var progressFile: URL { directory.appendingPathComponent("progress.jsonl") }
    var reportFile: URL { directory.appendingPathComponent("report.json") }
    var isFinished: Bool { FileManager.default.fileExists(atPath: reportFile.path) }

    /// One line of `progress.jsonl`.
    struct Progress: Codable {
        var index: Int
        var file: String
        var distance: Float
    }

    static func sampleFileName(_ index: Int) -> String { String(format: "samples/sample_%04d.png", index + 1) }

    /// The samples this run has finished: listed in the progress file and present on disk.
    /// A line cut short by a kill does not parse and is ignored.
    func finishedSamples() -> [Int: Progress] {
        guard let data = try? Data(contentsOf: progressFile) else { return [:] }
        var found: [Int: Progress] = [:]
        for line in data.split(separator: UInt8(ascii: "\n")) {
            guard let entry = try? EditPipeline.decodeJSON(Progress.self, from: Data(line)),
                  FileManager.default.fileExists(atPath: directory.appendingPathComponent(entry.file).path) else { continue }
            found[entry.index] = entry
        }
        return found
    }

    func job<Job: Decodable>(_ type: Job.Type) -> Job? {
        (try? Data(contentsOf: jobFile)).flatMap { try? EditPipeline.decodeJSON(type, from: $0) }
    }

    func writeJSON<Value: Encodable>(_ value: Value, to file: URL, step name: String) throws {
        try folder.step(name)
        try writeFileAtomically(Array(EditPipeline.encodeJSON(value)) + [0x0A], to: file.path)
    }

    /// Appends one line to the progress file and flushes it to disk.
    func appendProgress(_ entry: Progress) throws {
        try folder.step("append progress of sample \(entry.index + 1)")
        let line = try EditPipeline.encodeJSON(entry, pretty: false) + Data([0x0A])
        let fd = open(progressFile.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw OutputError.notWritable(path: progressFile.path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == line.count, fsync(fd) == 0 else {
            throw OutputError.notWritable(path: progressFile.path, reason: String(cString: strerror(errno)))
        }
    }

    /// Removes temporary files that a killed atomic write left here.
    func removeTemporaryFiles() {
        let fm = FileManager.default
        for dir in [directory, samplesDirectory, directory.appendingPathComponent("intermediates")] {
            for name in (try? fm.contentsOfDirectory(atPath: dir.path)) ?? [] where name.hasPrefix(".") && name.contains(".blend-") {
                try? fm.removeItem(at: dir.appendingPathComponent(name))
            }
        }
    }

    /// `ranked/` as hard links to the samples (a copy where the file system has no links).
    func link(sample file: String, asRanked name: String) throws {
        let ranked = directory.appendingPathComponent("ranked")
        try folder.step("link ranked/\(name)")
        try FileManager.default.createDirectory(at: ranked, withIntermediateDirectories: true)
        let target = ranked.appendingPathComponent(name)
        try? FileManager.default.removeItem(at: target)
        let source = directory.appendingPathComponent(file)
        if makeHardLink(source.path, target.path) != 0 {
            try FileManager.default.copyItem(at: source, to: target)
        }
    }
}

private func makeHardLink(_ source: String, _ target: String) -> Int32 {
    #if canImport(Glibc)
    return Glibc.link(source, target)
    #else
    return Darwin.link(source, target)
    #endif
}
