import Testing
@testable import BlendTensor
import BlendTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The block cache, in-place gradient accumulation and the release of saved tensors.
@Suite struct MemoryTests {
    @Test func sizeClassesRoundUpByAtMostAQuarter() throws {
        #expect(TensorMemory.sizeClass(1000) == nil)
        #expect(TensorMemory.sizeClass(TensorMemory.minimumCachedBytes - 1) == nil)
        #expect(TensorMemory.sizeClass(1 << 20) == 1 << 20)
        #expect(TensorMemory.sizeClass((1 << 20) + 1) == (1 << 20) + (1 << 18))
        #expect(TensorMemory.sizeClass(3 << 24) == 3 << 24)
        #expect(TensorMemory.sizeClass((7 << 22) + 5) == 1 << 25)
        var g = SplitMix64(seed: 5)
        for _ in 0..<1000 {
            let bytes = Int.random(in: TensorMemory.minimumCachedBytes..<(1 << 34), using: &g)
            let size = try #require(TensorMemory.sizeClass(bytes))
            #expect(size >= bytes && size - bytes <= bytes / 4)
            #expect(TensorMemory.sizeClass(size) == size, "a class is its own class")
        }
    }

    @Test func cacheReusesTheMostRecentBlockOfAClassAndStaysWithinItsLimit() throws {
        let cache = BlockCache(limit: 3 << 20)
        func block() -> UnsafeMutableRawPointer { malloc(16)! }
        let a = block(), b = block(), c = block(), d = block()
        cache.give(a, size: 1 << 20)
        cache.give(b, size: 1 << 20)
        #expect(cache.bytes == 2 << 20)
        #expect(cache.take(1 << 20) == b, "most recently freed first")
        #expect(cache.take(2 << 20) == nil, "only the exact class")
        cache.give(b, size: 1 << 20)
        cache.give(c, size: 1 << 20)
        cache.give(d, size: 1 << 20)   // 4 MiB > 3 MiB: the oldest (a) goes
        #expect(cache.bytes == 3 << 20)
        #expect(cache.take(1 << 20) == d)
        #expect(cache.take(1 << 20) == c)
        #expect(cache.take(1 << 20) == b)
        #expect(cache.take(1 << 20) == nil)
        cache.give(b, size: 8 << 20)   // larger than the whole limit: freed at once
        #expect(cache.bytes == 0)
        cache.give(c, size: 1 << 20)
        cache.give(d, size: 1 << 20)
        cache.limit = 1 << 20
        #expect(cache.bytes == 1 << 20)
        #expect(cache.take(1 << 20) == d)
        free(d)
    }

    @Test func aCeilingHoldsTheCacheBelowItsLimitWhileItsCallRuns() throws {
        let cache = BlockCache(limit: 4 << 20)
        func block() -> UnsafeMutableRawPointer { malloc(16)! }
        cache.give(block(), size: 1 << 20)
        cache.give(block(), size: 1 << 20)
        cache.give(block(), size: 1 << 20)
        cache.addCeiling(2 << 20)               // releases the oldest block at once
        #expect(cache.bytes == 2 << 20)
        cache.give(block(), size: 1 << 20)      // the cache stays within the ceiling
        #expect(cache.bytes == 2 << 20)
        cache.give(block(), size: 4 << 20)      // within the limit but above the ceiling: freed
        #expect(cache.bytes == 2 << 20)
        cache.addCeiling(1 << 20)               // overlapping ceilings: the lowest holds
        #expect(cache.bytes == 1 << 20)
        cache.removeCeiling(1 << 20)
        cache.give(block(), size: 1 << 20)
        #expect(cache.bytes == 2 << 20)
        cache.removeCeiling(2 << 20)            // lifted: the limit holds again
        #expect(cache.limit == 4 << 20)
        cache.give(block(), size: 1 << 20)
        cache.give(block(), size: 1 << 20)
        #expect(cache.bytes == 4 << 20)
        cache.removeAll()
    }

    @Test func theCeilingIsLiftedWhenItsBodyThrows() throws {
        struct Failure: Error {}
        let cache = BlockCache(limit: 4 << 20)
        cache.give(malloc(16)!, size: 1 << 20)
        #expect(throws: Failure.self) {
            try cache.withCeiling(0) {
                #expect(cache.bytes == 0 && cache.effectiveLimit == 0)
                throw Failure()
            }
        }
        #expect(cache.effectiveLimit == 4 << 20)
        #expect(cache.withCeiling(2 << 20) { cache.effectiveLimit } == 2 << 20)
        #expect(cache.effectiveLimit == 4 << 20)
    }

    @Test func largeTensorsKeepTheirValuesThroughReusedBlocks() throws {
        // Blocks come back with old contents; every op must still write all of its result.
        for seed: UInt64 in 1...3 {
            let x = randn([4, 64, 32, 32], seed: seed)
            let y = x * 2 + 1
            let expected = x.scalars.map { $0 * 2 + 1 }
            expectClose(y, expected)
        }
    }

    @Test func gradientAccumulationNeverWritesIntoASharedBuffer() throws {
        // x + x: both pending gradients are the seed itself; the caller's seed must survive.
        let x = randn([2, 3, 64, 64], seed: 7).requiringGradient()
        let seed = randn(x.shape, seed: 8)
        let before = seed.scalars
        let g = try gradients(of: x + x, withRespectTo: [x], seed: seed)[0]
        #expect(seed.scalars == before)
        expectClose(g, before.map { 2 * $0 })
        // Fresh gradient buffers from three branches are summed in place, with the same result.
        let y = try x * 2 + x * 3 - x * 0.5
        let g2 = try gradients(of: y, withRespectTo: [x], seed: seed)[0]
        expectClose(g2, before.map { 4.5 * $0 })
    }

    @Test func savedTensorsAreReleasedAfterTheirBackwardStep() throws {
        let x = randn([8, 8], seed: 3).requiringGradient()
        weak var saved: TensorStorage?
        let out: Tensor = try {
            let u = x * 3            // kept alive only by the backward closure of squared()
            saved = u.storage
            return try u.squared().sum()
        }()
        #expect(saved != nil)
        let g = try gradients(of: out, withRespectTo: [x])[0]
        #expect(saved == nil)
        expectClose(g, x.scalars.map { 18 * $0 })
    }

    @Test func aReleasedGraphCannotBeDifferentiatedAgainUnlessRetained() throws {
        let x = randn([4, 4], seed: 4).requiringGradient()
        let y = try (x * x).sum()
        let first = try gradients(of: y, withRespectTo: [x], retainGraph: true)[0]
        let second = try gradients(of: y, withRespectTo: [x])[0]
        #expect(first.scalars == second.scalars)
        #expect(throws: TensorError.self) { try gradients(of: y, withRespectTo: [x]) }
    }
}
