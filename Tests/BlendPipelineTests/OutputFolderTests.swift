import Foundation
import Testing
import BlendEditor
import BlendImage
@testable import BlendPipeline
import BlendPipelineTestSupport

/// Counts (and can fail) the pipeline's file operations, for fault injection.
final class FileOperationProbe: @unchecked Sendable {
    private let lock = NSLock()
    private var names: [String] = []
    let failAt: Int?
    let inspect: (@Sendable (String) -> Void)?

    init(failAt: Int? = nil, inspect: (@Sendable (String) -> Void)? = nil) {
        self.failAt = failAt
        self.inspect = inspect
    }

    var operations: [String] { lock.withLock { names } }

    func hook(_ name: String) throws {
        let count = lock.withLock { names.append(name); return names.count }
        inspect?(name)
        if count - 1 == failAt { throw SimulatedCrash(operation: name) }
    }
}

struct SimulatedCrash: Error { var operation: String }

/// What a reader of OUT/latest must always find: nothing, or one whole finished run.
func expectLatestIsWhole(_ out: URL, context: String) {
    let latest = out.appendingPathComponent("latest")
    guard (try? FileManager.default.destinationOfSymbolicLink(atPath: latest.path)) != nil else { return }
    guard let data = try? Data(contentsOf: latest.appendingPathComponent("report.json")),
          let report = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
          let samples = report["samples"] as? [[String: Any]] else {
        Issue.record("latest points at a run without a readable report (\(context))")
        return
    }
    let ranked = (try? FileManager.default.contentsOfDirectory(atPath: latest.appendingPathComponent("ranked").path)) ?? []
    #expect(Set(ranked) == Set(samples.compactMap { ($0["file"] as? String)?.replacingOccurrences(of: "ranked/", with: "") }),
            "ranked/ and report.json disagree (\(context))")
    #expect(report["run_id"] as? String == (try? FileManager.default.destinationOfSymbolicLink(atPath: latest.path))?
        .replacingOccurrences(of: "runs/", with: ""), "latest/report.json is another run's (\(context))")
    #expect(FileManager.default.fileExists(atPath: latest.appendingPathComponent("contact_sheet.png").path))
}

@Suite(.serialized) struct OutputFolderTests {
    func request(_ models: TinyModelFiles, out: URL, samples: Int = 3, batch: Int = 2) throws -> EditRequest {
        let (photo, mask) = try writePhotoAndMask(in: models.directory)
        var settings = quickSettings()
        settings.samples = samples
        settings.batchSize = batch
        return EditRequest(imagePath: photo, maskPath: mask, outputDirectory: out.path, settings: settings, models: models.paths)
    }

    /// Killed between report.json and the `latest` link: the run is finished, and `--resume`
    /// publishes it without making anything again (found by KillResumeTests).
    @Test func resumingARunKilledBeforeItsLinkPublishesIt() throws {
        let models = try TinyModelFiles.scratch()
        defer { models.remove() }
        let out = models.directory.appendingPathComponent("out")
        var first = try request(models, out: out, samples: 1, batch: 1)
        first.fileOperationHook = { if $0 == "replace latest" { throw SimulatedCrash(operation: $0) } }
        #expect(throws: SimulatedCrash.self) { try EditPipeline.run(first) }
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("latest").path))
        #expect(OutputFolder.unpublishedRunNames(in: out.path).count == 1 && OutputFolder.unfinishedRunNames(in: out.path).isEmpty)
        var again = try request(models, out: out, samples: 1, batch: 1)
        again.resume = true
        var events: [String] = []
        let report = try EditPipeline.run(again) { event in
            if case .loadingModels = event { events.append("loading") }
            if case let .notice(text) = event { events.append(text) }
        }
        #expect(!events.contains("loading") && events.contains { $0.contains("is now") })
        expectLatestIsWhole(out, context: "after resuming")
        #expect(report.samples.count == 1 && OutputFolder.unpublishedRunNames(in: out.path).isEmpty)
        #expect(throws: OutputError.self) { try EditPipeline.run(again) }  // nothing left to resume
    }

    func rankedBytes(_ report: EditReport) throws -> [[UInt8]] {
        try report.samples.map { Array(try Data(contentsOf: URL(fileURLWithPath: report.directory).appendingPathComponent($0.file))) }
    }

    @Test func anInterruptedRunResumesToWhatAnUninterruptedRunGives() throws {
        let models = try TinyModelFiles.scratch()
        defer { models.remove() }
        let reference = try EditPipeline.run(request(models, out: models.directory.appendingPathComponent("whole")))
        let out = models.directory.appendingPathComponent("out")
        // Cancel (as the web app or Ctrl-C does) once the first sample is on disk.
        var kept: [String] = []
        #expect(throws: CancellationError.self) {
            try EditPipeline.run(request(models, out: out)) { event in
                if case let .sampleFinished(sample) = event {
                    kept.append(sample.file)
                    throw CancellationError()
                }
            }
        }
        #expect(kept.count == 1 && FileManager.default.fileExists(atPath: kept[0]))
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("latest").path))
        // A new run (not --resume) keeps the unfinished run and says so.
        var notices: [String] = []
        var resumed: [Int] = []
        // Resume with another batch size: batch is only a speed knob.
        var again = try request(models, out: out, batch: 1)
        again.resume = true
        var made: [Int] = []
        let report = try EditPipeline.run(again) { event in
            if case let .planned(plan) = event { resumed = plan.resumedSamples }
            if case let .sampleFinished(sample) = event { made.append(sample.index) }
            if case let .notice(text) = event { notices.append(text) }
        }
        #expect(resumed == [0] && made == [1, 2])
        #expect(report.resumedSamples == 1)
        #expect(notices.contains { $0.contains("resuming") })
        #expect(try rankedBytes(report) == rankedBytes(reference))
        #expect(report.samples.map(\.distance) == reference.samples.map(\.distance))
        // Nothing left to resume now.
        #expect(throws: OutputError.self) { try EditPipeline.run(again) }
    }

    @Test func resumeRefusesOtherSettingsAndKeepsTheRunForLater() throws {
        let models = try TinyModelFiles.scratch()
        defer { models.remove() }
        let out = models.directory.appendingPathComponent("out")
        _ = try? EditPipeline.run(request(models, out: out)) { event in
            if case .sampleFinished = event { throw CancellationError() }
        }
        var other = try request(models, out: out)
        other.settings.seed = 5
        other.resume = true
        do {
            _ = try EditPipeline.run(other)
            Issue.record("expected an error")
        } catch let error as OutputError {
            #expect(String(describing: error).contains("other inputs or settings"))
        }
        // A fresh run keeps the resumable run and says how to continue it.
        other.resume = false
        other.settings.samples = 1
        var notices: [String] = []
        _ = try EditPipeline.run(other) { if case let .notice(text) = $0 { notices.append(text) } }
        #expect(notices.contains { $0.contains("--resume") })
        #expect(OutputFolder.unfinishedRunNames(in: out.path).count == 1)
    }

    @Test func aDivergedSampleIsRecordedAndRankedLast() throws {
        let entries = [RunFolder.Progress(index: 0, file: "a", distance: .nan), .init(index: 1, file: "b", distance: 0.7),
                       .init(index: 2, file: "c", distance: 0.5)]
        #expect(EditPipeline.ranked(entries).map(\.index) == [2, 1, 0])
        let line = try EditPipeline.encodeJSON(entries[0], pretty: false)
        #expect(String(decoding: line, as: UTF8.self) == #"{"distance":"nan","file":"a","index":0}"#)
        #expect(try EditPipeline.decodeJSON(RunFolder.Progress.self, from: line).distance.isNaN)
    }

    @Test func aSecondRunIntoABusyFolderIsRefused() throws {
        let models = try TinyModelFiles.scratch()
        defer { models.remove() }
        let out = models.directory.appendingPathComponent("out")
        let holder = try OutputFolder(path: out.path, hook: nil)
        do {
            _ = try EditPipeline.run(request(models, out: out))
            Issue.record("expected an error")
        } catch let error as OutputError {
            #expect(error == .busy(path: out.path))
            #expect(String(describing: error).contains("another blend run"))
        }
        holder.unlock()
        _ = try EditPipeline.run(request(models, out: out, samples: 1))
    }

    @Test func staleStagingIsRemoved() throws {
        let models = try TinyModelFiles.scratch()
        defer { models.remove() }
        let out = models.directory.appendingPathComponent("out")
        let fm = FileManager.default
        // What killed runs leave: a temporary link, an old-style staging folder, an unfinished
        // run with no finished sample, a half-written temporary file.
        try fm.createDirectory(at: out.appendingPathComponent("runs/20200101-000000-dead/samples"), withIntermediateDirectories: true)
        try fm.createDirectory(at: out.appendingPathComponent(".blend-staging-123/ranked"), withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: out.appendingPathComponent(".latest-99").path, withDestinationPath: "runs/x")
        let report = try EditPipeline.run(request(models, out: out, samples: 1))
        #expect(Set(try fm.contentsOfDirectory(atPath: out.path)) == [".lock", "latest", "runs"])
        #expect(try fm.contentsOfDirectory(atPath: out.appendingPathComponent("runs").path) == [report.runId])
    }

    @Test func noKillBetweenAnyTwoFileOperationsLeavesAMix() throws {
        let models = try TinyModelFiles.scratch()
        defer { models.remove() }
        let out = models.directory.appendingPathComponent("out")
        // A first finished run, so that `latest` exists and a mix would be possible.
        _ = try EditPipeline.run(request(models, out: out, samples: 1))
        // A kill at any point leaves the disk as it is just before that operation: check it
        // there, before every file operation of a whole run.
        let probe = FileOperationProbe(inspect: { name in expectLatestIsWhole(out, context: "before \(name)") })
        var watched = try request(models, out: out, samples: 2)
        watched.saveIntermediates = true
        watched.fileOperationHook = { try probe.hook($0) }
        _ = try EditPipeline.run(watched)
        let operations = probe.operations
        #expect(operations.count > 10)
        #expect(operations.contains("replace latest"))
        // A failure at each operation of a one-sample run: the run stops, `latest` stays
        // whole, the lock is released, and the next run succeeds. Unfinished runs are
        // cleared between attempts so that each makes the same operations.
        let counting = FileOperationProbe()
        var attempt = try request(models, out: out, samples: 1)
        attempt.fileOperationHook = { try counting.hook($0) }
        _ = try EditPipeline.run(attempt)
        let steps = counting.operations
        for (index, name) in steps.enumerated() {
            let failing = FileOperationProbe(failAt: index)
            attempt.fileOperationHook = { try failing.hook($0) }
            #expect(throws: SimulatedCrash.self, "a failure at \(name)") { try EditPipeline.run(attempt) }
            expectLatestIsWhole(out, context: "after a failure at \(name)")
            for run in OutputFolder.unfinishedRunNames(in: out.path) {
                try FileManager.default.removeItem(at: out.appendingPathComponent("runs/\(run)"))
            }
        }
        _ = try EditPipeline.run(request(models, out: out, samples: 1))
        expectLatestIsWhole(out, context: "after recovery")
    }
}
