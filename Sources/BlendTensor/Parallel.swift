import Dispatch

/// The number of worker threads the engine's own loops use (BLAS has its own threads).
public let engineThreadCount: Int = max(1, min(ProcessInfoLite.activeProcessorCount, 64))

/// Splits `0..<count` into contiguous ranges of at least `grain` elements and runs
/// `body` on them across the engine's threads; small work stays on the calling thread.
@inline(__always)
func parallelRanges(_ count: Int, grain: Int, _ body: (Range<Int>) -> Void) {
    let chunks = min(engineThreadCount, count / max(grain, 1))
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
@inline(__always)
func parallelFor(_ count: Int, grain: Int = 1, _ body: (Int) -> Void) {
    parallelRanges(count, grain: grain) { r in for i in r { body(i) } }
}

enum ProcessInfoLite {
    static var activeProcessorCount: Int {
        #if canImport(Glibc)
        return Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        #else
        return 1
        #endif
    }
}

#if canImport(Glibc)
import Glibc
#endif
