import Testing
@testable import BlendTensor
import BlendTestSupport

@Suite struct TiledAttentionTests {
    /// Heads packed in the feature axis → `[N·H, T, D]` for the untiled reference.
    func split(_ x: Tensor, heads: Int) throws -> Tensor {
        let n = x.dim(0), t = x.dim(1), d = x.dim(2) / heads
        return try x.reshaped([n, t, heads, d]).permuted([0, 2, 1, 3]).reshaped([n * heads, t, d])
    }

    func merge(_ x: Tensor, heads: Int) throws -> Tensor {
        let t = x.dim(1), d = x.dim(2), n = x.dim(0) / heads
        return try x.reshaped([n, heads, t, d]).permuted([0, 2, 1, 3]).reshaped([n, t, heads * d])
    }

    @Test(arguments: [1 << 20, 7 * 5, 5])
    func matchesUntiledAttention(maxScoreElements: Int) throws {
        // 2 batches, 3 heads, 11 queries (tiles of 7 and 4 rows, or 1 row), 5 keys, head dims 4 and 6.
        let q = randn([2, 11, 12], seed: 1), k = randn([2, 5, 12], seed: 2), v = randn([2, 5, 18], seed: 3)
        let y = try tiledAttention(q: q, k: k, v: v, heads: 3, maxScoreElements: maxScoreElements)
        let reference = try merge(scaledDotProductAttention(q: split(q, heads: 3), k: split(k, heads: 3), v: split(v, heads: 3)), heads: 3)
        #expect(y.shape == [2, 11, 18])
        expectClose(y, reference.scalars, tolerance: 1e-5)
        let scaled = try tiledAttention(q: q, k: k, v: v, heads: 3, scale: 0.3, maxScoreElements: maxScoreElements)
        let scaledReference = try merge(scaledDotProductAttention(q: split(q, heads: 3), k: split(k, heads: 3), v: split(v, heads: 3),
                                                                  scale: 0.3), heads: 3)
        expectClose(scaled, scaledReference.scalars, tolerance: 1e-5)
    }

    /// Long rows (vectorised maximum and exponentials plus a remainder) in blocks shared out
    /// across threads: 600 queries × 1100 keys make 476-row blocks, 2 × 2 heads, 2·2·2 tasks.
    @Test func longRowsAcrossThreadsMatchUntiledAttention() throws {
        let q = randn([2, 600, 8], seed: 7), k = randn([2, 1100, 8], seed: 8), v = randn([2, 1100, 6], seed: 9)
        let y = try tiledAttention(q: q, k: k, v: v, heads: 2)
        let reference = try merge(scaledDotProductAttention(q: split(q, heads: 2), k: split(k, heads: 2), v: split(v, heads: 2)), heads: 2)
        expectClose(y, reference.scalars, tolerance: 1e-5)
    }

    @Test func gradientsAcrossTiles() throws {
        // 3-row tiles over 7 queries: the key and value gradients sum over three tiles.
        let q = randn([2, 7, 4], seed: 4), k = randn([2, 6, 4], seed: 5), v = randn([2, 6, 6], seed: 6)
        try checkGradients([q, k, v], eps: 1e-2, tolerance: 2e-2) {
            try tiledAttention(q: $0[0], k: $0[1], v: $0[2], heads: 2, maxScoreElements: 18)
        }
        // Cross-attention shape (keys from another sequence), one head, untiled.
        try checkGradients([randn([1, 5, 3], seed: 7), randn([1, 4, 3], seed: 8), randn([1, 4, 2], seed: 9)]) {
            try tiledAttention(q: $0[0], k: $0[1], v: $0[2], heads: 1)
        }
    }

    @Test func constantOperandsGetNoGradient() throws {
        let q = randn([1, 4, 4], seed: 10).requiringGradient(), k = randn([1, 3, 4], seed: 11), v = randn([1, 3, 4], seed: 12)
        let y = try tiledAttention(q: q, k: k, v: v, heads: 2, maxScoreElements: 3)
        let g = try gradients(of: y, withRespectTo: [q])[0]
        #expect(g.shape == q.shape)
        #expect(g.scalars.contains { $0 != 0 })
    }

    @Test func badShapesThrow() throws {
        let q = randn([1, 4, 6], seed: 1), k = randn([1, 3, 6], seed: 2), v = randn([1, 3, 6], seed: 3)
        #expect(throws: TensorError.self) { try tiledAttention(q: q, k: k, v: v, heads: 4) }
        #expect(throws: TensorError.self) { try tiledAttention(q: q, k: randn([1, 3, 5], seed: 4), v: v, heads: 1) }
        #expect(throws: TensorError.self) { try tiledAttention(q: q, k: k, v: randn([1, 2, 6], seed: 5), heads: 1) }
        #expect(throws: TensorError.self) { try tiledAttention(q: randn([4, 6], seed: 6), k: k, v: v, heads: 1) }
        #expect(throws: TensorError.self) { try tiledAttention(q: q, k: randn([1, 0, 6], seed: 7), v: randn([1, 0, 6], seed: 8), heads: 1) }
        #expect(throws: TensorError.self) { try tiledAttention(q: q, k: k, v: v, heads: 1, maxScoreElements: 0) }
    }
}

@Suite struct PaddingTests {
    @Test func padsTheLastTwoAxes() throws {
        let x = try Tensor(shape: [1, 1, 2, 2], scalars: [1, 2, 3, 4])
        let y = try x.zeroPadded(top: 0, bottom: 1, left: 0, right: 1)
        #expect(y.shape == [1, 1, 3, 3])
        expectClose(y, [1, 2, 0, 3, 4, 0, 0, 0, 0])
        let z = try x.zeroPadded(top: 1, bottom: 0, left: 2, right: 0)
        expectClose(z, [0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4])
    }

    @Test func gradient() throws {
        try checkGradients([randn([2, 3, 4, 5], seed: 20)]) { try $0[0].zeroPadded(top: 1, bottom: 2, left: 0, right: 1) }
    }

    @Test func badArgumentsThrow() throws {
        #expect(throws: TensorError.self) { try randn([4], seed: 1).zeroPadded(top: 0, bottom: 1, left: 0, right: 1) }
        #expect(throws: TensorError.self) { try randn([2, 2], seed: 1).zeroPadded(top: -1, bottom: 1, left: 0, right: 1) }
    }
}
