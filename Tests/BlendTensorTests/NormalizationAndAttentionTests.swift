import Testing
@testable import BlendTensor
import BlendTestSupport

@Suite struct NormalizationTests {
    @Test func groupNormExactValues() throws {
        // Two groups of two channels, one pixel each: group 0 = {1, 3} -> mean 2, var 1.
        let x = try Tensor(shape: [1, 4, 1, 1], scalars: [1, 3, 10, 14])
        let y = try groupNorm(x, groups: 2, eps: 0)
        expectClose(y, [-1, 1, -1, 1])
        let w = try Tensor(shape: [4], scalars: [2, 2, 1, 1]), b = try Tensor(shape: [4], scalars: [0, 1, 0, 0])
        expectClose(try groupNorm(x, groups: 2, weight: w, bias: b, eps: 0), [-2, 3, -1, 1])
    }

    @Test func layerNormExactValues() throws {
        let x = try Tensor(shape: [2, 2], scalars: [1, 3, -2, 2])
        expectClose(try layerNorm(x, eps: 0), [-1, 1, -1, 1])
    }

    @Test func gradients() throws {
        let w = randn([6], seed: 41), b = randn([6], seed: 42)
        try checkGradients([randn([2, 6, 3, 4], seed: 43)]) { try groupNorm($0[0], groups: 3, weight: w, bias: b) }
        try checkGradients([randn([2, 6, 5], seed: 44)]) { try groupNorm($0[0], groups: 2) }
        try checkGradients([randn([3, 4, 6], seed: 45)]) { try layerNorm($0[0], weight: w, bias: b) }
    }

    @Test func fusedGroupNormSiLUMatchesTheComposition() throws {
        let x = randn([2, 6, 5, 7], seed: 61), w = randn([6], seed: 62), b = randn([6], seed: 63)
        let scale = randn([2, 6], seed: 64, std: 0.3), shift = randn([2, 6], seed: 65)
        let plain = try groupNorm(x, groups: 3, weight: w, bias: b).silu()
        expectClose(try groupNormSiLU(x, groups: 3, weight: w, bias: b), plain.scalars, tolerance: 2e-6)
        let modulated = try (groupNorm(x, groups: 3, weight: w, bias: b) * (scale.reshaped([2, 6, 1, 1]) + 1)
                             + shift.reshaped([2, 6, 1, 1])).silu()
        expectClose(try groupNormSiLU(x, groups: 3, weight: w, bias: b, scale: scale, shift: shift), modulated.scalars, tolerance: 2e-6)
    }

    @Test func fusedGroupNormSiLUGradients() throws {
        let w = randn([6], seed: 66), b = randn([6], seed: 67)
        let scale = randn([2, 6], seed: 68, std: 0.3), shift = randn([2, 6], seed: 69)
        try checkGradients([randn([2, 6, 3, 5], seed: 70)]) { try groupNormSiLU($0[0], groups: 2, weight: w, bias: b) }
        try checkGradients([randn([2, 6, 3, 5], seed: 71)]) {
            try groupNormSiLU($0[0], groups: 3, weight: w, bias: b, scale: scale, shift: shift)
        }
        // Differentiable modulation takes the unfused path and gets its gradients.
        try checkGradients([randn([2, 6, 3, 5], seed: 72), scale, shift]) {
            try groupNormSiLU($0[0], groups: 3, weight: w, bias: b, scale: $0[1], shift: $0[2])
        }
        #expect(throws: TensorError.self) {
            try groupNormSiLU(randn([2, 6, 3, 5], seed: 1), groups: 3, scale: randn([2, 5], seed: 2), shift: randn([2, 5], seed: 3))
        }
    }

    @Test func badShapesThrow() throws {
        #expect(throws: TensorError.self) { try groupNorm(randn([1, 6, 2, 2], seed: 1), groups: 4) }
        #expect(throws: TensorError.self) { try groupNorm(randn([1, 6, 2, 2], seed: 1), groups: 3, weight: randn([3], seed: 1)) }
        #expect(throws: TensorError.self) { try layerNorm(randn([2, 4], seed: 1), weight: randn([3], seed: 1)) }
    }
}

@Suite struct AttentionTests {
    @Test func softmaxExactValues() throws {
        let x = try Tensor(shape: [2, 3], scalars: [0, 0, 0, 1, 2, 3])
        let e = [expf(1), expf(2), expf(3)], s = e.reduce(0, +)
        expectClose(x.softmax(), [1.0 / 3, 1.0 / 3, 1.0 / 3, e[0] / s, e[1] / s, e[2] / s])
        // Large inputs must not overflow.
        expectClose(try Tensor(shape: [2], scalars: [1000, 1000]).softmax(), [0.5, 0.5])
    }

    @Test func attentionExactValues() throws {
        // One query that matches the second key strongly: output is (almost) the second value.
        let q = try Tensor(shape: [1, 1, 2], scalars: [0, 10])
        let k = try Tensor(shape: [1, 2, 2], scalars: [0, 0, 0, 1])
        let v = try Tensor(shape: [1, 2, 1], scalars: [3, 5])
        let y = try scaledDotProductAttention(q: q, k: k, v: v, scale: 1)
        let p = 1 / (1 + expf(-10))
        expectClose(y, [3 * (1 - p) + 5 * p])
        // Causal: the first query sees only the first key.
        let qc = try Tensor(shape: [1, 2, 1], scalars: [1, 1]), kc = try Tensor(shape: [1, 2, 1], scalars: [0, 5])
        let vc = try Tensor(shape: [1, 2, 1], scalars: [7, 9])
        let yc = try scaledDotProductAttention(q: qc, k: kc, v: vc, scale: 1, causal: true)
        let pc = 1 / (1 + expf(-5))
        expectClose(yc, [7, 7 * (1 - pc) + 9 * pc])
    }

    @Test func momentsSurviveALargeMean() throws {
        // A mean large against the spread must not cancel the variance away. The reference is
        // computed in double from the same float inputs; what remains is the rounding of the
        // fused x·scale + shift form (PyTorch's too), about ulp(300·100) here.
        let x = randn([1, 32, 40, 40], seed: 57) * 0.01 + 300
        let y = try groupNorm(x, groups: 8).scalars
        let v = x.scalars, block = 4 * 1600
        var worst = 0.0
        for g in 0..<8 {
            let part = v[(g * block)..<((g + 1) * block)].map(Double.init)
            let mean = part.reduce(0, +) / Double(block)
            let variance = part.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(block)
            for (i, value) in part.enumerated() {
                let expected = (value - mean) / (variance + 1e-5).squareRoot()
                worst = max(worst, Swift.abs(Double(y[g * block + i]) - expected))
            }
        }
        #expect(worst < 0.02, "worst absolute error \(worst)")
    }

    @Test func gradients() throws {
        try checkGradients([randn([2, 3, 5], seed: 51)]) { $0[0].softmax() }
        try checkGradients([randn([2, 3, 37], seed: 58)]) { $0[0].softmax() }
        let q = randn([2, 4, 3], seed: 52), k = randn([2, 5, 3], seed: 53), v = randn([2, 5, 2], seed: 54)
        try checkGradients([q, k, v]) { try scaledDotProductAttention(q: $0[0], k: $0[1], v: $0[2]) }
        let kc = randn([2, 4, 3], seed: 55), vc = randn([2, 4, 2], seed: 56)
        try checkGradients([q, kc, vc]) { try scaledDotProductAttention(q: $0[0], k: $0[1], v: $0[2], scale: 0.7, causal: true) }
    }

    @Test func badShapesThrow() throws {
        #expect(throws: TensorError.self) {
            try scaledDotProductAttention(q: randn([2, 4, 3], seed: 1), k: randn([2, 5, 4], seed: 1), v: randn([2, 5, 2], seed: 1))
        }
        #expect(throws: TensorError.self) {
            try scaledDotProductAttention(q: randn([2, 4, 3], seed: 1), k: randn([2, 5, 3], seed: 1), v: randn([2, 5, 2], seed: 1), causal: true)
        }
    }
}

@Suite struct EmbeddingTests {
    @Test func lookupAndErrors() throws {
        let table = try Tensor(shape: [3, 2], scalars: [0, 1, 10, 11, 20, 21])
        expectClose(try embedding([2, 0, 2], table: table), [20, 21, 0, 1, 20, 21])
        #expect(throws: TensorError.self) { try embedding([3], table: table) }
    }

    @Test func timestepEmbeddingValues() throws {
        // dim 4: half = 2, freqs = [1, 10000^(-1/2) = 0.01]
        let e = try timestepEmbedding([0, 5], dim: 4)
        expectClose(e, [1, 1, 0, 0, cosf(5), cosf(0.05), sinf(5), sinf(0.05)], tolerance: 1e-6)
        #expect(try timestepEmbedding([1], dim: 5).shape == [1, 5])
        #expect(try timestepEmbedding([1], dim: 5).scalars[4] == 0)
    }
}

#if canImport(Glibc)
import Glibc
#endif
