import Testing
@testable import BlendTensor
import BlendTestSupport

/// Largest absolute difference over the largest magnitude of the reference.
func relativeError(_ a: Tensor, _ reference: Tensor) -> Float {
    let r = reference.scalars
    let scale = r.map { Swift.abs($0) }.max() ?? 0
    return zip(a.scalars, r).map { Swift.abs($0 - $1) }.max().map { $0 / max(scale, .leastNormalMagnitude) } ?? 0
}

/// A convolution's output and input gradient (for a fixed random seed gradient).
func convolveWithGradient(_ x: Tensor, _ w: Tensor, _ b: Tensor?, stride: Int, padding: Int) throws -> (Tensor, Tensor) {
    let leaf = x.requiringGradient()
    let y = try conv2d(leaf, weight: w, bias: b, stride: stride, padding: padding)
    let g = try gradients(of: y, withRespectTo: [leaf], seed: randn(y.shape, seed: 77))[0]
    return (y.detached(), g)
}

@Suite struct ComputePrecisionTests {
    @Test func bfloat16RoundingIsToNearestEven() {
        let ulp: Float = 1.0 / 128   // bf16's spacing in [1, 2): 7 stored mantissa bits
        #expect(roundedToBFloat16(1) == 1)
        #expect(roundedToBFloat16(1 + ulp / 2) == 1)                          // tie: to the even 1.0
        #expect(roundedToBFloat16(1 + 3 * ulp / 2) == 1 + 2 * ulp)            // tie: to the even 1 + 2 ulp
        #expect(roundedToBFloat16(1 + ulp / 2 + ulp / 4096) == 1 + ulp)      // just above the tie: up
        #expect(roundedToBFloat16(-1 - ulp / 4) == -1)
        #expect(roundedToBFloat16(-2.5) == -2.5)
        #expect(roundedToBFloat16(.greatestFiniteMagnitude) == .infinity)
        #expect(roundedToBFloat16(.nan).isNaN)
        let t = randn([1000], seed: 5)
        let r = t.roundedToBFloat16().scalars
        #expect(zip(t.scalars, r).allSatisfy { $1.bitPattern & 0xFFFF == 0 && Swift.abs($0 - $1) <= Swift.abs($0) / 256 })
    }

    /// Shapes of the UNet's convolutions in miniature: 3×3 stride 1 (im2col and Winograd
    /// sizes), stride 2, 1×1 (the attention blocks' conv1d and the skip projections),
    /// a batch of two, with and without bias.
    static let shapes: [(batch: Int, inC: Int, size: Int, outC: Int, kernel: Int, stride: Int, padding: Int, bias: Bool)] = [
        (1, 16, 12, 24, 3, 1, 1, true),
        (2, 8, 33, 16, 3, 1, 1, true),
        (1, 16, 13, 32, 3, 2, 1, true),
        (1, 32, 10, 48, 1, 1, 0, false),
        (2, 3, 9, 8, 3, 1, 0, true),
    ]

    @Test(arguments: shapes.indices)
    func oneDNNFP32MatchesTheEngine(index: Int) throws {
        let s = Self.shapes[index]
        let x = randn([s.batch, s.inC, s.size, s.size], seed: UInt64(10 + index))
        let w = randn([s.outC, s.inC, s.kernel, s.kernel], seed: UInt64(20 + index), std: 0.2)
        let b = s.bias ? randn([s.outC], seed: UInt64(30 + index)) : nil
        let (y0, g0) = try ConvolutionBackend.$current.withValue(.engine) {
            try convolveWithGradient(x, w, b, stride: s.stride, padding: s.padding)
        }
        let (y1, g1) = try ConvolutionBackend.$current.withValue(.oneDNN) {
            try convolveWithGradient(x, w, b, stride: s.stride, padding: s.padding)
        }
        // oneDNN really ran (it has optimised fp32 kernels for every CPU this project supports),
        // one image at a time.
        let shape = OneDNNConvolution.Shape(batch: 1, inChannels: s.inC, height: s.size, width: s.size, outChannels: s.outC,
                                            kernelH: s.kernel, kernelW: s.kernel, strideH: s.stride, strideW: s.stride,
                                            padH: s.padding, padW: s.padding, bf16: false, bias: s.bias)
        #expect(OneDNNConvolution.cached(shape) != nil)
        #expect(relativeError(y1, y0) <= 1e-5)
        #expect(relativeError(g1, g0) <= 1e-5)
        #expect(y1.shape == y0.shape && g1.shape == x.shape)
    }

    @Test func oneDNNResultsDoNotDependOnTheBatch() throws {
        // A sample's edit must not change with the batch it is made in (resumed runs, batch sizes).
        let x = randn([2, 16, 20, 20], seed: 90), w = randn([24, 16, 3, 3], seed: 91, std: 0.1), b = randn([24], seed: 92)
        let seed = randn([2, 24, 10, 10], seed: 93)
        try ConvolutionBackend.$current.withValue(.oneDNN) {
            func run(_ input: Tensor, _ g: Tensor) throws -> ([Float], [Float]) {
                let leaf = input.requiringGradient()
                let y = try conv2d(leaf, weight: w, bias: b, stride: 2, padding: 1)
                return (y.scalars, try gradients(of: y, withRespectTo: [leaf], seed: g)[0].scalars)
            }
            let (pair, pairGradient) = try run(x, seed)
            let (first, firstGradient) = try run(x.sliced(0..<1, axis: 0), seed.sliced(0..<1, axis: 0))
            #expect(Array(pair[..<first.count]) == first)
            #expect(Array(pairGradient[..<firstGradient.count]) == firstGradient)
        }
    }

    @Test func bf16RoundedIsBF16Accurate() throws {
        // bf16 keeps 8 significant bits (relative rounding error ≤ 2⁻⁹ per operand); sums of
        // products of rounded operands land within a few 10⁻³ of fp32, and visibly off it.
        let x = randn([1, 32, 20, 20], seed: 40), w = randn([32, 32, 3, 3], seed: 41, std: 0.06), b = randn([32], seed: 42)
        let (y0, g0) = try convolveWithGradient(x, w, b, stride: 1, padding: 1)
        let (y1, g1) = try ComputePrecision.$current.withValue(.bf16Rounded) {
            try convolveWithGradient(x, w, b, stride: 1, padding: 1)
        }
        for error in [relativeError(y1, y0), relativeError(g1, g0)] {
            #expect(error > 1e-4 && error <= 1e-2, "relative error \(error)")
        }
        // The weights are rounded once and kept with them.
        #expect(w.bfloat16RoundedWeights.storage === w.bfloat16RoundedWeights.storage)
    }

    @Test func bf16RunsOnBF16HardwareOrFallsBackToFP32() throws {
        let x = randn([1, 16, 16, 16], seed: 50), w = randn([16, 16, 3, 3], seed: 51, std: 0.08), b = randn([16], seed: 52)
        let (y0, g0) = try convolveWithGradient(x, w, b, stride: 1, padding: 1)
        let (y1, g1) = try ComputePrecision.$current.withValue(.bf16) { try convolveWithGradient(x, w, b, stride: 1, padding: 1) }
        if ComputeLibrary.supportsBF16 {
            #expect(ComputePrecision.bf16.effective == .bf16)
            #expect(ComputePrecision.bf16Unavailable == nil)
            for error in [relativeError(y1, y0), relativeError(g1, g0)] {
                #expect(error > 1e-4 && error <= 1e-2, "relative error \(error)")
            }
        } else {
            #expect(ComputePrecision.bf16.effective == .fp32)
            let note = try #require(ComputePrecision.bf16Unavailable)
            #expect(note.contains("AVX512_BF16") && note.contains(ComputeLibrary.oneDNNInstructionSet) && note.contains("fp32"))
            #expect(y1.scalars == y0.scalars && g1.scalars == g0.scalars)
        }
        #expect(ComputePrecision.fp32.effective == .fp32 && ComputePrecision.bf16Rounded.effective == .bf16Rounded)
    }

    @Test(.enabled(if: ComputeLibrary.supportsBF16, "needs a CPU with AVX512_BF16 or AMX"))
    func oneDNNBF16HasTheNumericsOfRoundedOperands() throws {
        // oneDNN's bf16 kernels multiply the same rounded operands, accumulating in fp32: the
        // two differ only by fp32 summation order.
        let x = randn([2, 24, 17, 17], seed: 60), w = randn([40, 24, 3, 3], seed: 61, std: 0.07), b = randn([40], seed: 62)
        for stride in [1, 2] {
            let (y0, g0) = try ComputePrecision.$current.withValue(.bf16Rounded) {
                try convolveWithGradient(x, w, b, stride: stride, padding: 1)
            }
            let (y1, g1) = try ComputePrecision.$current.withValue(.bf16) {
                try convolveWithGradient(x, w, b, stride: stride, padding: 1)
            }
            // (≈ 10⁻³ between fp32 and bf16: a tenth of that is only summation order.)
            #expect(relativeError(y1, y0) <= 1e-4)
            // The input gradient's operand dY is rounded too, at the gradient's own scale.
            #expect(relativeError(g1, g0) <= 1e-4)
        }
    }
}
