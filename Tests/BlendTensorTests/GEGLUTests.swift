import Testing
@testable import BlendTensor
import BlendTestSupport

@Suite struct GEGLUTests {
    /// The fused op equals hidden · gelu(gate) built from chunks, on rows wide enough to be
    /// shared out across threads.
    @Test func matchesChunkedHiddenTimesGELUOfGate() throws {
        let x = randn([2, 300, 64], seed: 1)
        let parts = try x.chunked(2, axis: -1)
        let reference = try parts[0] * parts[1].gelu()
        let y = try geglu(x)
        #expect(y.shape == [2, 300, 32])
        expectClose(y, reference.scalars, tolerance: 1e-6)
        // gelu(1.5) = 1.3997980, gelu(-2) = -0.0455003 (erf tables).
        expectClose(try geglu(Tensor(shape: [2, 2], scalars: [2, 1.5, 1, -2])), [2 * 1.39979805, -0.04550026], tolerance: 1e-5)
    }

    @Test func gradients() throws {
        try checkGradients([randn([3, 4, 10], seed: 2)]) { try geglu($0[0]) }
    }

    @Test func oddOrScalarInputThrows() throws {
        #expect(throws: TensorError.self) { try geglu(randn([2, 5], seed: 3)) }
        #expect(throws: TensorError.self) { try geglu(Tensor(shape: [], scalars: [1])) }
    }
}
