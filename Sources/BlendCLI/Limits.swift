import ArgumentParser
import BlendTensor
import Foundation

/// The largest `--max-megapixels` accepted: beyond it the pixel count no longer fits the
/// decoders' arithmetic, and no machine has the memory anyway.
let largestMegapixelLimit = 10_000

/// Checks a `--max-megapixels` value (`blend edit`, `blend serve`).
/// - Throws: `ValidationError` unless 1 ≤ `megapixels` ≤ ``largestMegapixelLimit``.
func validateMegapixels(_ megapixels: Int) throws {
    guard (1...largestMegapixelLimit).contains(megapixels) else {
        throw ValidationError("--max-megapixels must be 1 to \(largestMegapixelLimit) (millions of pixels), got \(megapixels)")
    }
}

/// `--threads N` (`blend edit`, `blend serve`): the engine's thread count, checked with
/// `BLEND_NUM_THREADS` before any work.
struct ThreadOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: ArgumentHelp("Threads the engine computes on (default: $BLEND_NUM_THREADS, else the CPUs this process may use, counting its CPU affinity and a container's CPU quota). 1 to 1024; more than the CPUs splits the work finer but runs on no more of them. Results are the same on any count.", valueName: "n"))
    var threads: Int?

    func validate() throws { try Self.validate(threads: threads) }

    /// `--threads` (when the command has it) and `BLEND_NUM_THREADS` checked, as a usage error.
    static func validate(threads: Int?) throws {
        do {
            try EngineThreads.validate(threads: threads, environment: ProcessInfo.processInfo.environment)
        } catch let error as EngineThreadsError {
            throw ValidationError(error.description)
        }
    }

    /// Makes `--threads` the engine's process-wide count (validated already).
    func apply() {
        if let threads { try? EngineThreads.configure(threads) }
    }

    /// One line for the console: the count and where it came from, with the BLAS kernels.
    static var summary: String {
        "computing on \(EngineThreads.processCount) thread\(EngineThreads.processCount == 1 ? "" : "s") (\(EngineThreads.source)),"
            + " BLAS kernels \(blasCoreName)"
    }
}
