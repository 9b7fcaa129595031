import BlendConcurrency
import Dispatch
import Synchronization

/// How many parts the engine's own loops split their work into (BLAS itself runs on one
/// thread per call; see ``sgemm(transA:transB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:)``).
///
/// The count changes how work is shared, never a result: every split keeps each output's
/// arithmetic the same whatever the count (DEVELOPERS.md, "Threads and determinism"), so an
/// edit is bit for bit the same on 1 or 64 threads.
///
/// The process-wide count is, in order: ``configure(_:)`` (the front ends' `--threads N`),
/// `BLEND_NUM_THREADS` (read once, at first use), else ``AvailableCPUs/count``, the CPUs this
/// process may use (its affinity mask and cgroup CPU quota). A task can run with another count
/// through ``withCount(_:_:)`` (tests use it to force 16 or 64 threads on a 2-core machine).
public enum EngineThreads {
    /// The largest count accepted.
    public static let maximum = 1024

    /// The environment variable read for the default count.
    public static let environmentVariable = "BLEND_NUM_THREADS"

    /// The count in force in this task: a ``withCount(_:_:)`` override, else the process-wide one.
    public static var count: Int { taskOverride ?? processCount }

    /// The process-wide count.
    public static var processCount: Int {
        let set = configured.load(ordering: .relaxed)
        return set > 0 ? set : defaultCount
    }

    /// Where the process-wide count came from, for `blend engine` and reports.
    public static var source: String {
        if configured.load(ordering: .relaxed) > 0 { return "set by --threads" }
        if environmentCount != nil { return "from \(environmentVariable)" }
        return "the CPUs this process may use"
    }

    /// Sets the process-wide count (`--threads N`); call it before work starts.
    /// Throws ``EngineThreadsError`` unless `1 ≤ count ≤ ` ``maximum``.
    public static func configure(_ count: Int) throws {
        try validate(threads: count, environment: [:])
        configured.store(count, ordering: .relaxed)
    }

    /// Runs `body` with `count` threads in this task (and the tasks it awaits), whatever the
    /// process-wide count. `count` is clamped to `1...`` ``maximum``.
    public static func withCount<R>(_ count: Int, _ body: () throws -> R) rethrows -> R {
        try $taskOverride.withValue(min(max(count, 1), maximum), operation: body)
    }

    /// The async form of ``withCount(_:_:)``.
    public static func withCount<R>(_ count: Int, isolation: isolated (any Actor)? = #isolation,
                                    _ body: () async throws -> R) async rethrows -> R {
        try await $taskOverride.withValue(min(max(count, 1), maximum), operation: body, isolation: isolation)
    }

    /// What the front ends refuse as a usage error before any work: `--threads` (`threads`, when
    /// given) out of range, else an unusable `BLEND_NUM_THREADS` in `environment` (which
    /// `--threads` overrides, usable or not). Throws ``EngineThreadsError``.
    public static func validate(threads: Int?, environment: [String: String]) throws {
        if let threads {
            guard (1...maximum).contains(threads) else { throw EngineThreadsError.outOfRange(String(threads), origin: "--threads") }
            return
        }
        _ = try environmentValue(environment)
    }

    /// `BLEND_NUM_THREADS` parsed: nil when unset or empty. Throws ``EngineThreadsError`` for
    /// anything but a whole number from 1 to ``maximum`` (the front ends report it as a usage
    /// error before any work).
    public static func environmentValue(_ environment: [String: String]) throws -> Int? {
        guard let raw = environment[environmentVariable], !raw.isEmpty else { return nil }
        guard let n = Int(raw.trimmingSpaces), (1...maximum).contains(n) else {
            throw EngineThreadsError.outOfRange(raw, origin: environmentVariable)
        }
        return n
    }

    @TaskLocal static var taskOverride: Int?
    private static let configured = Atomic<Int>(0)
    /// `BLEND_NUM_THREADS` as read at first use (an invalid value is ignored here; the front
    /// ends refuse it with ``environmentValue(_:)`` first).
    static let environmentCount: Int? = {
        #if canImport(Glibc)
        guard let raw = getenv(environmentVariable) else { return nil }
        return try? environmentValue([environmentVariable: String(cString: raw)])
        #else
        return nil
        #endif
    }()
    private static let defaultCount: Int = environmentCount ?? min(AvailableCPUs.count, maximum)
}

/// A thread count that cannot be used.
public enum EngineThreadsError: Error, CustomStringConvertible, Equatable {
    case outOfRange(String, origin: String)

    public var description: String {
        switch self {
        case let .outOfRange(value, origin):
            let fallback = origin != EngineThreads.environmentVariable && EngineThreads.environmentCount != nil
                ? "\(EngineThreads.environmentVariable)'s \(EngineThreads.environmentCount!)"
                : "the CPUs this process may use: \(AvailableCPUs.count)"
            return "\(origin) must be a whole number of threads from 1 to \(EngineThreads.maximum), got '\(value)'"
                + " (\(origin == EngineThreads.environmentVariable ? "unset it" : "leave it out") to use \(fallback))"
        }
    }
}

private extension String {
    var trimmingSpaces: Substring {
        var s = Substring(self)
        while s.first?.isWhitespace == true { s.removeFirst() }
        while s.last?.isWhitespace == true { s.removeLast() }
        return s
    }
}

/// Splits `0..<count` into contiguous ranges of at least `grain` elements and runs
/// `body` on them across the engine's threads; small work stays on the calling thread.
///
/// Invariant: the ranges cover `0..<count` exactly once, in `min(threads, count / grain)`
/// parts; callers give each element work that does not depend on which range holds it, so the
/// thread count never changes a result.
@inline(__always)
func parallelRanges(_ count: Int, grain: Int, _ body: (Range<Int>) -> Void) {
    let chunks = min(EngineThreads.count, count / max(grain, 1))
    if chunks <= 1 {
        if count > 0 { body(0..<count) }
        return
    }
    // The body only touches disjoint ranges of buffers the caller owns for the
    // duration of the call, so handing it to other threads is safe.
    withoutActuallyEscaping(body) { body in
        let work = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let lo = count * c / chunks, hi = count * (c + 1) / chunks
            work.value(lo..<hi)
        }
    }
}

struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// Runs `body(i)` for `i` in `0..<count` across the engine's threads, in contiguous blocks.
/// Each `i` is one unit of work whose result does not depend on the block it falls in.
@inline(__always)
func parallelFor(_ count: Int, grain: Int = 1, _ body: (Int) -> Void) {
    parallelRanges(count, grain: grain) { r in for i in r { body(i) } }
}

#if canImport(Glibc)
import Glibc
#endif
