import BlendConcurrency
import BlendImage
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing
@testable import BlendServer

/// A data directory that stops taking writes or removals on cue, as a full disk or a folder
/// made read-only would (the tests run as root, whom permissions do not stop).
final class FailingDisk: Sendable {
    struct Failures: Sendable {
        /// Writes of `job.json`: "no space left on the device", as BlendImage reports ENOSPC.
        var records = false
        /// Writes of every other file (the uploaded photo and mask).
        var inputs = false
        /// Removals: EACCES, as Foundation reports it.
        var removals = false
    }

    private let failures = PThreadMutex(Failures())

    func set(_ change: (inout Failures) -> Void) { failures.withLock { change(&$0) } }

    var disk: JobStoreDisk {
        JobStoreDisk(
            writeFile: { [failures] bytes, path in
                let now = failures.withLock { $0 }
                if path.hasSuffix("/job.json") ? now.records : now.inputs {
                    throw ImageError.writeFailed(path: path, reason: "no space left on the device")
                }
                try JobStoreDisk.system.writeFile(bytes, path)
            },
            removeItem: { [failures] path in
                if failures.withLock({ $0.removals }) {
                    throw NSError(domain: NSCocoaErrorDomain, code: CocoaError.fileWriteNoPermission.rawValue,
                                  userInfo: [NSUnderlyingErrorKey: NSError(domain: NSPOSIXErrorDomain, code: Int(EACCES)),
                                             NSFilePathErrorKey: path])
                }
                try JobStoreDisk.system.removeItem(path)
            })
    }
}

/// Keeps what a server logs, to check that a failure is logged.
final class LogRecords: Sendable {
    private let lines = PThreadMutex<[String]>([])

    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }

    var logger: Logger {
        Logger(label: "blend.serve.test") { _ in Handler(records: self) }
    }

    struct Handler: LogHandler {
        let records: LogRecords
        var metadata: Logger.Metadata = [:]
        var metadataProvider: Logger.MetadataProvider?
        var logLevel: Logger.Level = .info

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) { records.append("\(event.level): \(event.message)") }
    }
}

/// A record that cannot be saved is reported, never passed over: a running job fails saying
/// which file and what to do (logged and published), a cancel, resume, delete or upload is a
/// 500 with that message and changes nothing.
@Suite(.serialized) struct SaveFailureTests {
    @Test func aRunningJobWhoseRecordCannotBeSavedFailsSayingWhatToDo() async throws {
        let failing = FailingDisk()
        let logs = LogRecords()
        try await withServer(disk: failing.disk, logger: logs.logger) { fixture, server, client in
            try await client.waitForModels()
            let events = server.hub.subscribe(job: nil, buffer: 10_000)
            let long = #"{"steps": "20", "skip": 0, "samples": 50, "batch": 1, "augmentations": 1}"#
            let id = try await client.post(.job(photo: fixture.photo, mask: fixture.mask, settings: long)).jobID
            _ = try await client.waitForJob(id) { ($0["results"] as? [Any])?.isEmpty == false }
            // The disk fills up: the next finished sample's record cannot be written.
            failing.set { $0.records = true }
            let failed = try await client.waitForJob(id)
            let record = fixture.data.appendingPathComponent("jobs/\(id)/job.json").path
            let error = failed["error"] as? String ?? ""
            #expect(failed["state"] as? String == "failed", "\(failed)")
            #expect(error.hasPrefix("the job stopped because its record could not be saved: \(record) could not be written"
                                    + " (no space left on the device); the disk is full: free some space"), "\(error)")
            #expect(error.hasSuffix("then resume it (finished samples are kept)"), "\(error)")
            // The samples finished before it are kept and served.
            let kept = try #require(failed["results"] as? [[String: Any]])
            #expect(!kept.isEmpty && kept.count < 50)
            #expect(try await client.execute(uri: try #require(kept[0]["url"] as? String), method: .get).status == .ok)
            #expect(server.runner.queueSnapshot.running == nil)
            // Published: the page hears of the failure as of any other change ...
            var published: JobRecord?
            for await event in events {
                if case let .job(job) = event, job.id == id, job.state.isTerminal {
                    published = job
                    break
                }
            }
            #expect(published?.state == .failed && published?.error == error)
            // ... and logged, with the file.
            #expect(logs.all.contains { $0.hasPrefix("error: job \(id) stopped") && $0.contains(record) }, "\(logs.all)")
        }
    }

    @Test func cancelResumeDeleteAndUploadAre500sThatChangeNothing() async throws {
        let failing = FailingDisk()
        // The models never load: the job stays queued.
        try await withServer(loadModels: false, disk: failing.disk) { fixture, server, client in
            let id = try await client.post(.job(photo: fixture.photo, mask: fixture.mask)).jobID
            let record = fixture.data.appendingPathComponent("jobs/\(id)/job.json").path
            let full = "could not be written (no space left on the device); the disk is full: free some space on the disk that holds"
            failing.set { $0.records = true }

            let cancel = try await client.execute(uri: "/api/jobs/\(id)/cancel", method: .post)
            #expect(cancel.status == .internalServerError)
            #expect(cancel.message == "job \(id) was not cancelled because its record could not be saved: \(record) \(full) "
                    + "\(fixture.data.path)/jobs/\(id); then cancel it again", "\(cancel.message)")
            #expect(try await client.json("/api/jobs/\(id)").object["state"] as? String == "queued")
            #expect(server.runner.queueSnapshot.queued == [id])

            // An upload whose record cannot be saved is not queued and leaves no folder.
            let upload = try await client.post(.job(photo: fixture.photo, mask: fixture.mask))
            #expect(upload.status == .internalServerError && upload.message.contains("was not queued because its record could not be saved")
                    && upload.message.contains(full) && upload.message.hasSuffix("then send it again"), "\(upload.message)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.data.appendingPathComponent("jobs").path) == [id])
            #expect(server.runner.queueSnapshot.queued == [id])
            // So is one whose photo cannot be written.
            failing.set { $0 = .init(inputs: true) }
            let photo = try await client.post(.job(photo: fixture.photo, mask: fixture.mask))
            #expect(photo.status == .internalServerError && photo.message.hasPrefix("the upload could not be saved: ")
                    && photo.message.contains("/photo.png \(full)"), "\(photo.message)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.data.appendingPathComponent("jobs").path) == [id])

            failing.set { $0 = .init() }
            #expect(try await client.json("/api/jobs/\(id)/cancel", method: .post).object["state"] as? String == "cancelled")
            failing.set { $0.records = true }
            let resume = try await client.execute(uri: "/api/jobs/\(id)/resume", method: .post)
            #expect(resume.status == .internalServerError && resume.message.hasPrefix("job \(id) was not resumed because its record could not be saved: \(record) \(full)")
                    && resume.message.hasSuffix("then resume it again"), "\(resume.message)")
            #expect(try await client.json("/api/jobs/\(id)").object["state"] as? String == "cancelled")
            #expect(server.runner.queueSnapshot.queued.isEmpty)

            failing.set { $0 = .init(removals: true) }
            let delete = try await client.execute(uri: "/api/jobs/\(id)", method: .delete)
            #expect(delete.status == .internalServerError)
            #expect(delete.message == "job \(id) was not deleted: \(fixture.data.path)/jobs/\(id) could not be removed (\(String(cString: strerror(EACCES))));"
                    + " the folder is not writable: make \(fixture.data.path)/jobs writable for the user running blend serve; then delete it again",
                    "\(delete.message)")
            #expect(try await client.execute(uri: "/api/jobs/\(id)", method: .get).status == .ok)
            failing.set { $0 = .init() }
            #expect(try await client.execute(uri: "/api/jobs/\(id)", method: .delete).status == .noContent)
        }
    }

    /// At start-up a job left queued is interrupted even when that cannot be written: its
    /// error and the log say why the record on disk still says queued.
    @Test func aRecordThatCannotBeSavedAtStartUpIsNamedInTheJobAndTheLog() async throws {
        let fixture = try ServerFixture()
        defer { fixture.remove() }
        let first = try fixture.server(loadModels: false)
        let id = try await first.application().test(.router) { client in
            try await client.post(.job(photo: fixture.photo, mask: fixture.mask)).jobID
        }
        first.close()
        let failing = FailingDisk()
        failing.set { $0.records = true }
        let logs = LogRecords()
        let second = try fixture.server(loadModels: false, disk: failing.disk, logger: logs.logger)
        defer { second.close() }
        let job = try second.runner.job(id)
        let record = fixture.data.appendingPathComponent("jobs/\(id)/job.json").path
        #expect(job.state == .interrupted)
        // It never started: resuming runs it.
        #expect(job.error?.hasPrefix("the server stopped before the job started; resume it to run it; its record could not be saved: \(record) could not be written") == true,
                "\(job.error ?? "")")
        #expect(logs.all.contains { $0.hasPrefix("error: job \(id) is interrupted") && $0.contains(record) }, "\(logs.all)")
    }

    /// Foundation's errors are read for the POSIX error under them.
    @Test func theCauseIsReadFromTheSystemsError() throws {
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("blend-missing-\(UUID().uuidString)/job")
        do {
            try FileManager.default.removeItem(at: missing)
            Issue.record("removed a file that is not there")
        } catch {
            let failure = JobStoreError(removing: missing.path, folder: "/data", error)
            #expect(failure.reason == String(cString: strerror(ENOENT)) && failure.cause == .other, "\(failure) \(error as NSError)")
        }
        let readOnly = NSError(domain: NSCocoaErrorDomain, code: 0, userInfo: [NSUnderlyingErrorKey: NSError(domain: NSPOSIXErrorDomain, code: Int(EROFS))])
        #expect(JobStoreError(writing: "/data/x", folder: "/data", readOnly).cause == .notWritable)
        #expect(JobStoreError(writing: "/data/x", folder: "/data", ImageError.writeFailed(path: "/data/x", reason: "disk quota exceeded")).cause == .diskFull)
        #expect(JobStoreError(writing: "/data/x", folder: "/data", ImageError.outputNotWritable(path: "/data/x", reason: "permission denied")).remedy
                == "the folder is not writable: make /data writable for the user running blend serve")
    }
}
