import Foundation
import Testing
import BlendModels
import BlendPipelineTestSupport
import BlendTensor
@testable import BlendCLI

/// `--threads`, `BLEND_NUM_THREADS` and the default count, as the `blend` binary reports them.
@Suite(.serialized) struct ThreadsCommandTests {
    /// Runs the `blend` binary with `environment` added (under `taskset` when given CPUs); its
    /// exit status, standard output and standard error.
    func blend(_ arguments: [String], environment: [String: String] = [:], cpus: String? = nil) throws
        -> (status: Int32, stdout: String, stderr: String) {
        let binary = KillResumeTests.blendBinary
        try #require(FileManager.default.isExecutableFile(atPath: binary), "no \(binary): build the CLI first (swift build)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "BLEND_NUM_THREADS")
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.arguments = (cpus.map { ["taskset", "-c", $0] } ?? []) + [binary] + arguments
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let out = output.fileHandleForReading.readDataToEndOfFile(), err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    @Test func theCountComesFromTheAffinityTheEnvironmentOrTheOption() throws {
        // One CPU in the affinity mask: one thread, whatever the machine has.
        let pinned = try blend(["engine"], cpus: "0")
        #expect(pinned.status == 0 && pinned.stdout.contains("engine threads: 1 (the CPUs this process may use"), "\(pinned.stdout)")
        let fromEnvironment = try blend(["engine"], environment: ["BLEND_NUM_THREADS": "5"])
        #expect(fromEnvironment.stdout.contains("engine threads: 5 (from BLEND_NUM_THREADS"), "\(fromEnvironment.stdout)")
        for bad in ["0", "many"] {
            let refused = try blend(["engine"], environment: ["BLEND_NUM_THREADS": bad])
            #expect(refused.status == 64 && refused.stderr.contains("BLEND_NUM_THREADS must be a whole number"), "\(refused.stderr)")
        }
    }

    @Test func editAndServeCheckThreadsBeforeAnything() throws {
        for arguments in [["edit", "/nonexistent.png", "--prompt", "x", "--threads", "0"],
                          ["serve", "--threads", "2000"]] {
            let refused = try blend(arguments)
            #expect(refused.status == 64 && refused.stderr.contains("--threads must be a whole number"), "\(arguments): \(refused.stderr)")
        }
        let badEnvironment = try blend(["edit", "/nonexistent.png", "--prompt", "x"], environment: ["BLEND_NUM_THREADS": "x"])
        #expect(badEnvironment.status == 64 && badEnvironment.stderr.contains("BLEND_NUM_THREADS"), "\(badEnvironment.stderr)")
        // --threads overrides the variable, usable or not: the edit gets as far as the photo.
        let overridden = try blend(["edit", "/nonexistent.png", "--prompt", "x", "--threads", "2"], environment: ["BLEND_NUM_THREADS": "x"])
        #expect(overridden.status == 1 && overridden.stderr.contains("/nonexistent.png"), "\(overridden.stderr)")
        let hint = try blend(["edit", "/nonexistent.png", "--prompt", "x", "--threads", "0"], environment: ["BLEND_NUM_THREADS": "3"])
        #expect(hint.stderr.contains("leave it out to use BLEND_NUM_THREADS's 3"), "\(hint.stderr)")
        #expect(try Edit.parse(["p.png", "--prompt", "x", "--threads", "3"]).threadOptions.threads == 3)
    }

    @Test func anEditSaysAndRecordsItsThreads() throws {
        let models = try TinyModelFiles.scratch()
        defer { models.remove() }
        let (photo, mask) = try writePhotoAndMask(in: models.directory)
        let out = models.directory.appendingPathComponent("out")
        let run = try blend(["edit", photo, "--mask", mask, "--prompt", "a red ball", "--method", "latent",
                             "--sd-model", sharedTinySD.path("sd1", .diffusers), "--clip-model", models.paths.clip,
                             "--clip-vocab", TinyStableDiffusion.vocabulary, "--steps", "4", "--samples", "1", "--threads", "3",
                             "--out", out.path])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("computing on 3 threads (set by --threads), BLAS kernels"), "\(run.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("latest/report.json"))) as? [String: Any]
        let compute = report?["compute"] as? [String: Any]
        #expect(compute?["threads"] as? Int == 3 && (compute?["blas_kernels"] as? String)?.isEmpty == false, "\(String(describing: compute))")
    }
}

/// The BLAS kernel family as `blend engine` reports it: chosen by the CPU's instruction set,
/// switched at run time when asked (the same path that replaces a generic fallback), and
/// checked against float64 on whatever family runs.
@Suite(.serialized) struct BLASKernelsCommandTests {
    @Test func engineSwitchesFamiliesAndEachComputesRight() throws {
        let threads = ThreadsCommandTests()
        let plain = try threads.blend(["engine"])
        #expect(plain.status == 0 && plain.stdout.contains("BLAS kernels:") && plain.stdout.contains("BLAS check:     a 97x89x83 product matches float64"),
                "\(plain.stdout)\(plain.stderr)")
        #expect(!plain.stdout.contains("warning"), "\(plain.stdout)")
        // Switched at run time to the generic family: it runs, computes right, and is a warning.
        let generic = try threads.blend(["engine"], environment: ["BLEND_BLAS_KERNELS": "Prescott"])
        #expect(generic.status == 0 && generic.stdout.contains("BLAS kernels:   Prescott: BLEND_BLAS_KERNELS=Prescott chose them"),
                "\(generic.stdout)\(generic.stderr)")
        #expect(generic.stdout.contains("matches float64"))
        if CPUFeatures.current.avx2 {
            #expect(generic.stdout.contains("warning: these kernels use less of the CPU"), "\(generic.stdout)")
            let haswell = try threads.blend(["engine"], environment: ["BLEND_BLAS_KERNELS": "Haswell"])
            #expect(haswell.stdout.contains("BLAS kernels:   Haswell") && haswell.stdout.contains("matches float64"), "\(haswell.stdout)")
        }
        // OpenBLAS's own variable is the user's choice.
        let forced = try threads.blend(["engine"], environment: ["OPENBLAS_CORETYPE": "Prescott"])
        #expect(forced.stdout.contains("Prescott: OPENBLAS_CORETYPE=Prescott chose them"), "\(forced.stdout)")
    }
}
