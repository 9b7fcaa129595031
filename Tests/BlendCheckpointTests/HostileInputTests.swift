import Foundation
import Testing
import BlendTensor
@testable import BlendCheckpoint

/// Hostile and broken files are refused with a clear error, and nothing they name runs.
@Suite struct HostileInputTests {
    private func refusal(_ name: String) -> CheckpointError? {
        do {
            _ = try CheckpointFile.load(path: Fixtures.path("hostile/\(name)"))
            return nil
        } catch let error as CheckpointError {
            return error
        } catch {
            Issue.record("\(name): unexpected error type \(error)")
            return nil
        }
    }

    @Test(arguments: ["os_system.pt", "legacy_os_system.pth"])
    func reduceCallingOsSystemIsRefusedByName(file: String) throws {
        let error = try #require(refusal(file))
        guard case let .forbiddenGlobal(_, name) = error else { Issue.record("wrong error: \(error)"); return }
        // os.system pickles as posix.system on Linux.
        #expect(name == "posix.system" || name == "os.system")
        #expect(error.description.contains("refused") && error.description.contains(name))
        #expect(!FileManager.default.fileExists(atPath: "/tmp/blend-pwned"))
    }

    @Test func stackGlobalIsCheckedToo() throws {
        let error = try #require(refusal("stack_global_popen.pt"))
        #expect(error == .forbiddenGlobal(file: Fixtures.path("hostile/stack_global_popen.pt"), name: "subprocess.Popen"))
    }

    @Test func truncatedArchivesAreReportedAsTruncated() throws {
        for file in ["truncated.pt", "truncated_legacy.pt"] {
            let error = try #require(refusal(file))
            guard case .truncated = error else { Issue.record("\(file): wrong error \(error)"); continue }
            #expect(error.description.contains("truncated"))
        }
    }

    @Test func wrongMagicNumberIsRefused() throws {
        let error = try #require(refusal("wrong_magic.pt"))
        guard case let .unrecognizedFormat(_, detail) = error else { Issue.record("wrong error \(error)"); return }
        #expect(detail.contains("magic"))
    }

    @Test(arguments: ["absurd_size.pt", "absurd_storage.pt", "storage_too_short.pt", "record_too_short.pt"])
    func impossibleTensorsAreRefused(file: String) throws {
        let error = try #require(refusal(file))
        switch error {
        case let .invalidTensor(_, tensor, _): #expect(tensor == "w")
        case .malformedPickle: #expect(file == "absurd_storage.pt")  // the storage count itself is refused
        default: Issue.record("\(file): wrong error \(error)")
        }
    }

    @Test func expandedViewsThatAddUpPastTheFileAreRefused() throws {
        // Each view passes its own bound; together they would take 640 MiB from a 1 KB file.
        let error = try #require(refusal("expanded_views.pt"))
        guard case let .corrupt(_, detail) = error else { Issue.record("wrong error \(error)"); return }
        #expect(detail.contains("elements in all") && detail.contains("1154 bytes"))
    }

    @Test func containersSharedExponentiallyAreRefusedQuickly() throws {
        // 4^30 paths to one tensor through the memo; walking them all would never end.
        let start = Date()
        let error = try #require(refusal("shared_lists.pt"))
        guard case let .malformedPickle(_, detail) = error else { Issue.record("wrong error \(error)"); return }
        #expect(detail.contains("paths"))
        #expect(Date().timeIntervalSince(start) < 30)
        // The walk's bound for a pickle of this file's 958 bytes (its data.pkl is smaller): the
        // earlier 80,864 visits were a fuzzing timeout of the torchscript target under load.
        #expect(TorchPickleTensors.maximumVisits(pickleBytes: 958) == 19_424)
    }

    @Test func missingStorageRecordIsRefused() throws {
        let error = try #require(refusal("missing_storage.pt"))
        guard case let .corrupt(_, detail) = error else { Issue.record("wrong error \(error)"); return }
        #expect(detail.contains("data/7"))
    }

    @Test(arguments: ["overlap.safetensors", "offsets_past_end.safetensors", "shape_mismatch.safetensors", "huge_header.safetensors"])
    func brokenSafetensorsHeadersAreRefused(file: String) throws {
        let error = try #require(refusal(file))
        guard case .corrupt = error else { Issue.record("\(file): wrong error \(error)"); return }
        if file == "overlap.safetensors" { #expect(error.description.contains("overlap")) }
    }

    @Test func unknownSafetensorsDTypeIsNamed() throws {
        let error = try #require(refusal("unknown_dtype.safetensors"))
        guard case let .unsupportedDType(_, name) = error else { Issue.record("wrong error \(error)"); return }
        #expect(name.contains("C64"))
    }

    @Test func everyPrefixOfARealArchiveFailsCleanly() throws {
        // Cut the zip fixture at many lengths: each must throw, none may crash.
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("state_dict_zip.pt")))
        let scratch = try Fixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let file = scratch.appendingPathComponent("cut.pt")
        for length in stride(from: 0, to: data.count, by: 97) {
            try data.prefix(length).write(to: file)
            #expect(throws: CheckpointError.self) { try CheckpointFile.load(path: file.path) }
        }
    }

    @Test func flippedBytesNeverCrash() throws {
        // Corrupt single bytes all over each fixture; loading and materialising
        // must either succeed or throw a CheckpointError.
        let scratch = try Fixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        for name in ["state_dict_zip.pt", "state_dict_legacy.pt", "scripted.pt", "tensors.safetensors"] {
            let original = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path(name)))
            let file = scratch.appendingPathComponent(name)
            var generator = SplitMix64(seed: 42)
            for _ in 0..<150 {
                var data = original
                let at = Int.random(in: 0..<data.count, using: &generator)
                data[at] = UInt8.random(in: 0...255, using: &generator)
                try data.write(to: file)
                do {
                    let checkpoint = try CheckpointFile.load(path: file.path)
                    for entry in checkpoint.entries {
                        if entry.dtype.isFloatingPoint { _ = try checkpoint.tensor(named: entry.name) } else { _ = try checkpoint.integers(named: entry.name) }
                    }
                } catch is CheckpointError {
                    continue
                }
            }
        }
    }

    @Test func notAWeightFileAtAll() throws {
        let scratch = try Fixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let file = scratch.appendingPathComponent("photo.png")
        try Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0]).write(to: file)
        #expect(throws: CheckpointError.self) { try CheckpointFile.load(path: file.path) }
        let empty = scratch.appendingPathComponent("empty.pt")
        try Data().write(to: empty)
        #expect(throws: CheckpointError.self) { try CheckpointFile.load(path: empty.path) }
        #expect(throws: CheckpointError.self) { try CheckpointFile.load(path: scratch.appendingPathComponent("absent.pt").path) }
        #expect(throws: CheckpointError.self) { try CheckpointFile.load(path: scratch.path) }
    }
}

