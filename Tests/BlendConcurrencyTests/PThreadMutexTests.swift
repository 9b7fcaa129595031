import BlendConcurrency
import Foundation
import Testing

@Suite struct PThreadMutexTests {
    /// Eight threads increment one counter 20,000 times each through `withLock`: without mutual
    /// exclusion the read-modify-write steps interleave and increments are lost (and
    /// ThreadSanitizer reports a race); with it the count is exact.
    @Test func manyThreadsCountExactly() {
        let threads = 8, increments = 20_000
        let counter = PThreadMutex(0)
        // Dispatch's own workers (not Swift concurrency's few cooperative threads, which a
        // blocking wait here would hold up for the whole suite).
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            for _ in 0..<increments {
                counter.withLock { value in
                    let read = value
                    value = read &+ 1
                }
            }
        }
        #expect(counter.withLock { $0 } == threads * increments)
    }

    /// `withLock` returns the body's result, rethrows its typed error, and releases the lock
    /// either way (the next `withLock` would otherwise deadlock).
    @Test func returnsResultsAndRethrows() {
        struct Refused: Error, Equatable { let value: Int }
        let lock = PThreadMutex([1, 2, 3])
        #expect(lock.withLock { $0.reduce(0, +) } == 6)
        #expect(throws: Refused(value: 3)) {
            try lock.withLock { (values: inout [Int]) throws(Refused) -> Int in
                values.append(4)
                throw Refused(value: values.count - 1)
            }
        }
        #expect(lock.withLock { $0 } == [1, 2, 3, 4])
    }

    /// The value is released with the lock: a class instance held only by the lock is
    /// deinitialised when the lock goes away.
    @Test func releasesTheValue() {
        final class Probe: @unchecked Sendable { let onDeinit: () -> Void; init(_ f: @escaping () -> Void) { onDeinit = f }; deinit { onDeinit() } }
        let released = PThreadMutex(false)
        do {
            let lock = PThreadMutex(Probe { released.withLock { $0 = true } })
            _ = lock.withLock { _ in 0 }
        }
        #expect(released.withLock { $0 })
    }
}
