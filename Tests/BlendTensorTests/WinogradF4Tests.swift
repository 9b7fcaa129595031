import Testing
@testable import BlendTensor
import BlendTestSupport

/// Winograd F(4×4, 3×3), forced by ``Convolution3x3Algorithm`` at small sizes (the automatic
/// rule takes it from 2,048 pixels) and compared with the direct six-loop convolution and its
/// adjoint. Tolerance: 5e-5 relative (of max(1, |value|)) with unit-variance weights and inputs
/// (sums of 54 products of size ~7; F(2×2, 3×3) and im2col pass 1e-5): F(4×4, 3×3)'s
/// transforms multiply by up to 8 and add more terms, and its fp32 error is measured at 2–4e-5
/// there. On a layer scaled like a trained one it is ~2e-6 of the largest output (below).
@Suite struct WinogradF4Tests {
    func forcingF4<T>(_ body: () throws -> T) rethrows -> T {
        try Convolution3x3Algorithm.$current.withValue(.winogradF4, operation: body)
    }

    @Test(arguments: [(16, 16, 1), (13, 21, 1), (10, 37, 0), (9, 7, 2), (4, 45, 1), (530, 30, 1)])
    func matchesTheDirectConvolutionAndItsAdjoint(height: Int, width: Int, padding: Int) throws {
        // Outputs of every size modulo 4 (ragged tiles computed and dropped), rows of 8 tiles and
        // more (SIMD lanes) and fewer (the lane-by-lane remainder), padding 0/1/2 (the adjoint
        // pads 2/1/0), with and without a bias (`accumulate`); the last case runs in two bands
        // of tile rows. 6 in and 7 out channels catch a transposition. The gradient runs after
        // the scope has ended: it keeps the forward's algorithm. By default no transform is
        // kept (F(4×4, 3×3)'s is computed per call, the adjoint reading it in reverse).
        let w = randn([7, 6, 3, 3], seed: 111), b = randn([7], seed: 112)
        for bias in [b, nil] {
            let x = randn([2, 6, height, width], seed: 113).requiringGradient()
            let y = try forcingF4 { try conv2d(x, weight: w, bias: bias, padding: padding) }
            expectClose(y, naiveConv2d(x, w, bias, stride: (1, 1), padding: (padding, padding)), tolerance: 5e-5)
            let r = randn(y.shape, seed: 114)
            let g = try gradients(of: y, withRespectTo: [x], seed: r)[0]
            expectClose(g, naiveConvInputGradient(r, w, inputShape: x.shape, stride: (1, 1), padding: (padding, padding)),
                        tolerance: 5e-5)
        }
        #expect(w.storage.keptDerived(.winogradF4Filter(out: 7, in: 6)) == nil)
        #expect(w.storage.keptDerived(.winogradFilter(out: 7, in: 6)) == nil)
    }

    @Test func finiteDifferencesOfTheInputGradient() throws {
        let w = randn([3, 2, 3, 3], seed: 115), b = randn([3], seed: 116)
        try forcingF4 {
            try checkGradients([randn([1, 2, 11, 9], seed: 117)]) { try conv2d($0[0], weight: w, bias: b, padding: 1) }
        }
    }

    @Test func everyPolicyGivesTheSameResultsAndOnlyKeptKeepsTheTransform() throws {
        // Three weights with the same values, one per ``WeightTransformPolicy``, forward and
        // (after the scope has ended) backward: results equal bit for bit; only `kept` holds
        // F(4×4, 3×3)'s transform afterwards (the default computes it per call).
        let values = randn([5, 4, 3, 3], seed: 118)
        let x = randn([1, 4, 21, 19], seed: 119), r = randn([1, 5, 21, 19], seed: 120)
        var outputs: [[Float]] = [], inputGradients: [[Float]] = []
        for policy in WeightTransformPolicy.allCases {
            let w = try Tensor(shape: values.shape, scalars: values.scalars)
            let xl = x.requiringGradient()
            let y = try forcingF4 { try WeightTransformPolicy.$current.withValue(policy) { try conv2d(xl, weight: w, padding: 1) } }
            outputs.append(y.scalars)
            inputGradients.append(try gradients(of: y, withRespectTo: [xl], seed: r)[0].scalars)
            #expect((w.storage.keptDerived(.winogradF4Filter(out: 5, in: 4)) != nil) == (policy == .kept), "\(policy)")
        }
        #expect(outputs.allSatisfy { $0 == outputs[0] })
        #expect(inputGradients.allSatisfy { $0 == inputGradients[0] })
    }

    @Test func accuracyOnATrainedSizedLayerIsCloseToF2() throws {
        // 48 channels, 48×48, weights scaled like a trained layer's (std 1/√(9·in)): the error
        // against the direct sum in double precision, relative to the largest output, for
        // each path. Measured here: F(4×4, 3×3) 2.1e-6, F(2×2, 3×3) 2.9e-7, im2col 5.5e-7.
        let c = 48
        let x = randn([1, c, 48, 48], seed: 121), w = randn([c, c, 3, 3], seed: 122, std: 1 / (9 * Float(c)).squareRoot())
        let exact = naiveConv2d(x, w, nil, stride: (1, 1), padding: (1, 1))
        let scale = exact.map { abs($0) }.max() ?? 1
        func error(_ algorithm: Convolution3x3Algorithm) throws -> Float {
            let y = try Convolution3x3Algorithm.$current.withValue(algorithm) { try conv2d(x, weight: w, padding: 1) }
            return zip(y.scalars, exact).map { abs($0 - $1) }.max()! / scale
        }
        let f4 = try error(.winogradF4), f2 = try error(.winogradF2), direct = try error(.im2col)
        #expect(f4 < 4e-6, "F(4x4, 3x3) \(f4), F(2x2, 3x3) \(f2), im2col \(direct)")
        #expect(direct < 1e-6, "im2col \(direct)")
        #expect(f2 < 1e-6, "F(2x2, 3x3) \(f2)")
    }

    @Test func theAutomaticRuleBySize() throws {
        func path(_ size: Int, kernel: Int = 3) -> Stride1Path? {
            let geo = ConvGeometry(batch: 1, inChannels: 8, height: size, width: size, outChannels: 8,
                                   kernelH: kernel, kernelW: kernel, strideH: 1, strideW: 1,
                                   padH: kernel / 2, padW: kernel / 2, outH: size, outW: size)
            return geo.stride1Path(pixels: size * size)
        }
        #expect(path(31) == nil)
        #expect(path(32) == .winogradF2)
        #expect(path(45) == .winogradF2)
        #expect(path(46) == .winogradF4)
        #expect(path(64) == .winogradF4)
        #expect(path(64, kernel: 5) == .shifted)
        #expect(Convolution3x3Algorithm.$current.withValue(.im2col) { path(64) } == nil)
        #expect(Convolution3x3Algorithm.$current.withValue(.winogradF2) { path(8) } == .winogradF2)
    }
}
