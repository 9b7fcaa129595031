import Foundation
import Testing
import BlendModels
import BlendPipelineTestSupport
import BlendTensor

#if canImport(Glibc)
import Glibc
#endif

/// The fault test for long runs: the `blend` binary editing with tiny models is killed with
/// SIGKILL at 100 random (seeded) moments, from start-up to the last file, and run again with
/// `--resume` each time (without it only when the kill came before the run had a job.json).
/// After every kill `--out` holds one unfinished run at most, every sample on disk is the
/// uninterrupted run's to the byte, every finished run folder is the uninterrupted run's, and
/// `latest` is absent or points at a whole finished run; every run that completes equals the
/// uninterrupted one bit for bit.
@Suite(.serialized) struct KillResumeTests {
    /// `.build/<config>/blend`, next to the test binary (`swift build` makes it).
    static var blendBinary: String {
        let besideTests = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("blend").path
        if FileManager.default.isExecutableFile(atPath: besideTests) { return besideTests }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/blend").path
    }

    /// The files of a run folder that must be the same in every run of one job, by name.
    struct RunFiles: Equatable {
        var samples: [String: Data] = [:]
        var progress: [Int: String] = [:]
        var ranked: [String] = []
        var contactSheet: Data?
    }

    static func read(run: URL) throws -> RunFiles {
        let fm = FileManager.default
        var files = RunFiles()
        let samples = run.appendingPathComponent("samples")
        for name in (try? fm.contentsOfDirectory(atPath: samples.path)) ?? [] where !name.hasPrefix(".") {
            files.samples[name] = try Data(contentsOf: samples.appendingPathComponent(name))
        }
        if let text = try? String(contentsOf: run.appendingPathComponent("progress.jsonl"), encoding: .utf8) {
            for line in text.split(separator: "\n") {
                let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "progress line \(line)")
                let index = try #require(object["index"] as? Int), file = try #require(object["file"] as? String)
                files.progress[index] = "\(file) \(object["distance"] ?? "")"
            }
        }
        files.ranked = ((try? fm.contentsOfDirectory(atPath: run.appendingPathComponent("ranked").path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
        files.contactSheet = try? Data(contentsOf: run.appendingPathComponent("contact_sheet.png"))
        return files
    }

    /// Checks `out` between two runs; returns the finished run's files when `latest` exists.
    static func checkConsistent(_ out: URL, expected: RunFiles, after what: String) throws -> RunFiles? {
        let fm = FileManager.default
        let runs = out.appendingPathComponent("runs")
        let names = ((try? fm.contentsOfDirectory(atPath: runs.path)) ?? []).filter { !$0.hasPrefix(".") }
        let finishedRuns = names.filter { fm.fileExists(atPath: runs.appendingPathComponent("\($0)/report.json").path) }
        #expect(names.count - finishedRuns.count <= 1, "\(what): more than one unfinished run in --out: \(names)")
        for name in names {
            let run = runs.appendingPathComponent(name)
            let files = try read(run: run)
            if finishedRuns.contains(name) {
                // Finished (report.json is written last), even if killed before `latest` moved.
                #expect(files == expected, "\(what): the finished run \(name) differs from the uninterrupted one")
            }
            for (file, data) in files.samples {
                #expect(data == expected.samples[file], "\(what): samples/\(file) of \(name) differs from the uninterrupted run's")
            }
            for (index, line) in files.progress {
                #expect(line == expected.progress[index], "\(what): progress of sample \(index) in \(name)")
                #expect(files.samples[String(line.split(separator: " ")[0].dropFirst("samples/".count))] != nil,
                        "\(what): progress names \(line) but the file is missing")
            }
        }
        let latest = out.appendingPathComponent("latest")
        guard let target = try? fm.destinationOfSymbolicLink(atPath: latest.path) else {
            #expect(!fm.fileExists(atPath: latest.path), "\(what): latest is not a link")
            return nil
        }
        let run = out.appendingPathComponent(target)
        #expect(fm.fileExists(atPath: run.appendingPathComponent("report.json").path), "\(what): latest -> \(target) is not finished")
        return try read(run: run)
    }

    /// Whether `--resume` applies: a run with a job.json that is unfinished, or finished but
    /// not yet `latest` (killed between its report.json and the link).
    static func resumable(_ out: URL) -> Bool {
        let fm = FileManager.default
        let runs = out.appendingPathComponent("runs")
        let latest = (try? fm.destinationOfSymbolicLink(atPath: out.appendingPathComponent("latest").path))
            .map { URL(fileURLWithPath: $0).lastPathComponent } ?? ""
        return ((try? fm.contentsOfDirectory(atPath: runs.path)) ?? []).contains {
            !$0.hasPrefix(".") && $0 != latest && fm.fileExists(atPath: runs.appendingPathComponent("\($0)/job.json").path)
        }
    }

    /// Starts `blend`; its standard error goes to `errorLog` (replaced each launch), so that a
    /// failed run's message, or a sanitizer's report (ThreadSanitizer exits 66 at the first
    /// one), can be shown.
    static func launch(_ binary: String, _ arguments: [String], errorLog: URL) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        _ = FileManager.default.createFile(atPath: errorLog.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: errorLog)
        try process.run()
        return process
    }

    /// The last 4,000 characters of a launch's standard error, for a failure message.
    static func tail(_ errorLog: URL) -> String {
        String((String(data: (try? Data(contentsOf: errorLog)) ?? Data(), encoding: .utf8) ?? "").suffix(4000))
    }

    /// Five minutes normally; an hour under a sanitizer (`scripts/sanitize.sh` sets
    /// `BLEND_SANITIZER`), whose `blend` runs several times slower: under ThreadSanitizer the
    /// hundred kills did not finish in five minutes (2026-11-30).
    static let timeLimit: TimeLimitTrait.Duration = ProcessInfo.processInfo.environment["BLEND_SANITIZER"] == nil ? .minutes(5) : .minutes(60)

    @Test(.timeLimit(timeLimit)) func aHundredKillsAndResumesGiveTheUninterruptedResultBitForBit() throws {
        let binary = Self.blendBinary
        try #require(FileManager.default.isExecutableFile(atPath: binary), "no \(binary): build the CLI first (swift build)")
        let models = try TinyModelFiles.scratch()
        defer { models.remove() }
        let directory = models.directory
        let (photo, mask) = try writePhotoAndMask(in: directory)
        let config = directory.appendingPathComponent("tiny_unet.json")
        try JSONEncoder().encode(TinyModelFiles.unetConfig).write(to: config)
        func arguments(out: URL, resume: Bool) -> [String] {
            ["edit", photo, "--mask", mask, "--prompt", "a red ball", "--out", out.path, "--samples", "2", "--batch", "1",
             "--steps", "10", "--skip", "7", "--augmentations", "2", "--seed", "9", "--skip-memory-check",
             "--diffusion-model", models.paths.diffusion, "--diffusion-config", config.path, "--clip-model", models.paths.clip,
             "--clip-vocab", models.paths.clipVocabulary, "--quiet"] + (resume ? ["--resume"] : [])
        }

        // The uninterrupted run, and how long it takes.
        let reference = directory.appendingPathComponent("reference")
        let errorLog = directory.appendingPathComponent("stderr.txt")
        let start = Date()
        let first = try Self.launch(binary, arguments(out: reference, resume: false), errorLog: errorLog)
        first.waitUntilExit()
        let seconds = Date().timeIntervalSince(start)
        try #require(first.terminationStatus == 0, "the uninterrupted run failed: \(Self.tail(errorLog))")
        let expected = try #require(try Self.checkConsistent(reference, expected: Self.read(run: reference.appendingPathComponent("latest")),
                                                             after: "the uninterrupted run"))
        try #require(expected.samples.count == 2 && expected.progress.count == 2 && expected.ranked.count == 2)
        try #require(expected.contactSheet != nil)

        // Kills at random moments of a run's life (a resumed run is shorter, so some finish first).
        let out = directory.appendingPathComponent("killed")
        var rng = SplitMix64(seed: 2026)
        var kills = 0, launches = 0, completed = 0
        while kills < 100 {
            launches += 1
            try #require(launches <= 400, "\(kills) kills in \(launches) launches")
            let resumable = Self.resumable(out)
            let process = try Self.launch(binary, arguments(out: out, resume: resumable), errorLog: errorLog)
            let delay = Double(rng.next() % 10_000) / 10_000 * seconds
            usleep(UInt32(delay * 1_000_000))
            var killed = false
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                killed = true
                kills += 1
            }
            process.waitUntilExit()
            if !killed || process.terminationReason == .exit {
                #expect(process.terminationStatus == 0, "launch \(launches) (resume: \(resumable)) failed: \(Self.tail(errorLog))")
            }
            let what = killed ? "kill \(kills) after \(String(format: "%.3f", delay)) s" : "launch \(launches) (ran to the end)"
            if let finished = try Self.checkConsistent(out, expected: expected, after: what) {
                #expect(finished == expected, "\(what): the finished run differs from the uninterrupted one")
                completed += 1
                try FileManager.default.removeItem(at: out)
            }
        }
        // The last interrupted run, resumed to the end.
        if FileManager.default.fileExists(atPath: out.path) {
            let last = try Self.launch(binary, arguments(out: out, resume: Self.resumable(out)), errorLog: errorLog)
            last.waitUntilExit()
            #expect(last.terminationStatus == 0, "the last run failed: \(Self.tail(errorLog))")
            let finished = try Self.checkConsistent(out, expected: expected, after: "the last run")
            #expect(finished == expected)
            completed += 1
        }
        #expect(completed >= 2, "only \(completed) runs completed in \(launches) launches")
    }
}
