import Dispatch
import Testing
@testable import BlendTensor
import BlendTestSupport

/// A direct six-loop convolution, independent of the im2col/BLAS path.
func naiveConv2d(_ x: Tensor, _ w: Tensor, _ b: Tensor?, stride: (Int, Int), padding: (Int, Int)) -> [Float] {
    let (n, c, h, wd) = (x.dim(0), x.dim(1), x.dim(2), x.dim(3))
    let (co, kh, kw) = (w.dim(0), w.dim(2), w.dim(3))
    let oh = (h + 2 * padding.0 - kh) / stride.0 + 1, ow = (wd + 2 * padding.1 - kw) / stride.1 + 1
    let xs = x.scalars, ws = w.scalars, bs = b?.scalars
    var out = [Float](repeating: 0, count: n * co * oh * ow)
    for b0 in 0..<n { for o in 0..<co { for y in 0..<oh { for xo in 0..<ow {
        var acc: Double = Double(bs?[o] ?? 0)
        for ci in 0..<c { for i in 0..<kh { for j in 0..<kw {
            let iy = y * stride.0 - padding.0 + i, ix = xo * stride.1 - padding.1 + j
            guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
            acc += Double(xs[((b0 * c + ci) * h + iy) * wd + ix]) * Double(ws[((o * c + ci) * kh + i) * kw + j])
        } } }
        out[((b0 * co + o) * oh + y) * ow + xo] = Float(acc)
    } } } }
    return out
}

@Suite struct ConvolutionTests {
    @Test func hand3x3() throws {
        // A 3x3 ramp convolved with a 3x3 box filter, padding 1: each output is the sum of its neighbourhood.
        let x = try Tensor(shape: [1, 1, 3, 3], scalars: [1, 2, 3, 4, 5, 6, 7, 8, 9])
        let w = try Tensor(shape: [1, 1, 3, 3], repeating: 1)
        let y = try conv2d(x, weight: w, bias: Tensor(shape: [1], scalars: [0.5]), padding: 1)
        expectClose(y, [12, 21, 16, 27, 45, 33, 24, 39, 28].map { $0 + 0.5 })
        let strided = try conv2d(x, weight: w, stride: 2, padding: 1)
        expectClose(strided, [12, 16, 24, 28])
    }

    @Test(arguments: [
        (1, 1, 0, 0), (1, 1, 1, 1), (2, 2, 1, 1), (2, 1, 0, 2), (1, 2, 2, 0),
    ])
    func matchesDirectConvolution(strideH: Int, strideW: Int, padH: Int, padW: Int) throws {
        let x = randn([2, 3, 7, 9], seed: 21), w = randn([4, 3, 3, 3], seed: 22), b = randn([4], seed: 23)
        let y = try conv2d(x, weight: w, bias: b, stride: (strideH, strideW), padding: (padH, padW))
        expectClose(y, naiveConv2d(x, w, b, stride: (strideH, strideW), padding: (padH, padW)), tolerance: 1e-5)
    }

    @Test(arguments: [(32, 37, 1, 3), (35, 41, 0, 3), (33, 40, 1, 1), (40, 36, 2, 5), (20, 37, 1, 3)])
    func fastPathsMatchDirectConvolution(height: Int, width: Int, padding: Int, kernel: Int) throws {
        // Images of at least 1024 pixels take the stride-1 fast paths (Winograd for 3x3, shifted
        // GEMMs for 5x5), wide enough for Winograd's eight-tile vector path, with odd sizes for
        // its discarded edge outputs; the last case is small enough for im2col.
        let x = randn([1, 4, height, width], seed: 81), w = randn([5, 4, kernel, kernel], seed: 82), b = randn([5], seed: 83)
        let y = try conv2d(x, weight: w, bias: b, padding: padding)
        expectClose(y, naiveConv2d(x, w, b, stride: (1, 1), padding: (padding, padding)), tolerance: 1e-5)
        try checkGradients([x], maxProbes: 16) { try conv2d($0[0], weight: w, padding: padding) }
    }

    @Test func pointwiseAndConv1d() throws {
        let x = randn([2, 5, 4, 3], seed: 24), w = randn([6, 5, 1, 1], seed: 25), b = randn([6], seed: 26)
        expectClose(try conv2d(x, weight: w, bias: b), naiveConv2d(x, w, b, stride: (1, 1), padding: (0, 0)))
        let seq = randn([2, 5, 12], seed: 27), w1 = randn([6, 5, 1], seed: 28)
        let y1 = try conv1d(seq, weight: w1, bias: b)
        #expect(y1.shape == [2, 6, 12])
        expectClose(y1, naiveConv2d(try seq.reshaped([2, 5, 1, 12]), try w1.reshaped([6, 5, 1, 1]), b, stride: (1, 1), padding: (0, 0)))
    }

    @Test func inputGradients() throws {
        let w = randn([4, 3, 3, 3], seed: 31), b = randn([4], seed: 32)
        let x = randn([2, 3, 6, 5], seed: 33)
        try checkGradients([x]) { try conv2d($0[0], weight: w, bias: b, padding: 1) }
        try checkGradients([x]) { try conv2d($0[0], weight: w, bias: b, stride: 2, padding: 1) }
        try checkGradients([x]) { try conv2d($0[0], weight: w, stride: (1, 2), padding: (0, 2)) }
        let w1 = randn([4, 3, 1, 1], seed: 34)
        try checkGradients([x]) { try conv2d($0[0], weight: w1, bias: b) }
        try checkGradients([randn([2, 3, 10], seed: 35)]) { try conv1d($0[0], weight: w1.reshaped([4, 3, 1])) }
    }

    @Test func badShapesThrow() throws {
        let x = randn([1, 3, 4, 4], seed: 36)
        #expect(throws: TensorError.self) { try conv2d(x, weight: randn([2, 4, 3, 3], seed: 1)) }
        #expect(throws: TensorError.self) { try conv2d(randn([3, 4, 4], seed: 1), weight: randn([2, 3, 3, 3], seed: 1)) }
        #expect(throws: TensorError.self) { try conv2d(x, weight: randn([2, 3, 5, 5], seed: 1)) }
        #expect(throws: TensorError.self) { try conv2d(x, weight: randn([2, 3, 3, 3], seed: 1), bias: randn([3], seed: 1)) }
        #expect(throws: TensorError.self) { try conv2d(x, weight: randn([2, 3, 3, 3], seed: 1), stride: 0) }
    }
}

/// The input gradient of a convolution, computed directly: dx[c, iy, ix] = Σ r[o, oy, ox]·w[o, c, i, j]
/// over every output (oy, ox) whose window puts tap (i, j) on (iy, ix).
func naiveConvInputGradient(_ r: Tensor, _ w: Tensor, inputShape: [Int], stride: (Int, Int), padding: (Int, Int)) -> [Float] {
    let (n, c, h, wd) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
    let (co, kh, kw) = (w.dim(0), w.dim(2), w.dim(3))
    let (oh, ow) = (r.dim(2), r.dim(3))
    let rs = r.scalars, ws = w.scalars
    var out = [Double](repeating: 0, count: n * c * h * wd)
    for b0 in 0..<n { for o in 0..<co { for y in 0..<oh { for xo in 0..<ow {
        let g = Double(rs[((b0 * co + o) * oh + y) * ow + xo])
        for ci in 0..<c { for i in 0..<kh { for j in 0..<kw {
            let iy = y * stride.0 - padding.0 + i, ix = xo * stride.1 - padding.1 + j
            guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
            out[((b0 * c + ci) * h + iy) * wd + ix] += g * Double(ws[((o * c + ci) * kh + i) * kw + j])
        } } }
    } } } }
    return out.map { Float($0) }
}

@Suite struct ConvolutionCachingTests {
    @Test(arguments: [(32, 37, 1, 3), (35, 41, 0, 3), (40, 36, 2, 5), (20, 37, 1, 3), (33, 33, 1, 1)])
    func inputGradientMatchesTheDirectAdjoint(height: Int, width: Int, padding: Int, kernel: Int) throws {
        // Winograd and shifted GEMMs reuse the forward kernel's kept transform for the
        // gradient (transposed, flipped by reordering); 6 in and 7 out channels catch a
        // transposition. Run twice: the second pass reads the kept transform.
        let w = randn([7, 6, kernel, kernel], seed: 91)
        for round in 0..<2 {
            let x = randn([2, 6, height, width], seed: 92 + UInt64(round)).requiringGradient()
            let y = try conv2d(x, weight: w, padding: padding)
            let r = randn(y.shape, seed: 94)
            let g = try gradients(of: y, withRespectTo: [x], seed: r)[0]
            expectClose(g, naiveConvInputGradient(r, w, inputShape: x.shape, stride: (1, 1), padding: (padding, padding)),
                        tolerance: 1e-5)
            expectClose(y, naiveConv2d(x, w, nil, stride: (1, 1), padding: (padding, padding)), tolerance: 1e-5)
        }
    }

    @Test(arguments: [(131, 101, 1), (130, 100, 0)])
    func winogradBandsOfTileRowsMatchTheDirectConvolution(height: Int, width: Int, padding: Int) throws {
        // Tall enough that Winograd F(2×2, 3×3) runs in several bands of tile rows (about 2048
        // tiles each, each with only its own padded input rows), the last band shorter; forward
        // and input gradient (which keeps the forward's algorithm). F(4×4, 3×3), which the
        // automatic rule takes at this size, has its own case in WinogradF4Tests.
        let w = randn([5, 3, 3, 3], seed: 85), b = randn([5], seed: 86)
        let x = randn([1, 3, height, width], seed: 84).requiringGradient()
        let y = try Convolution3x3Algorithm.$current.withValue(.winogradF2) { try conv2d(x, weight: w, bias: b, padding: padding) }
        expectClose(y, naiveConv2d(x, w, b, stride: (1, 1), padding: (padding, padding)), tolerance: 1e-5)
        let r = randn(y.shape, seed: 87)
        expectClose(try gradients(of: y, withRespectTo: [x], seed: r)[0],
                    naiveConvInputGradient(r, w, inputShape: x.shape, stride: (1, 1), padding: (padding, padding)),
                    tolerance: 1e-5)
    }

    @Test func perCallTransformsGiveTheSameResultsAndKeepNothing() throws {
        // Two weights with the same values: one keeps its transforms, the other computes them
        // per call, forward and (after the task-local scope has ended) backward.
        let values = randn([6, 4, 3, 3], seed: 88)
        let keptWeight = try Tensor(shape: values.shape, scalars: values.scalars)
        let perCallWeight = try Tensor(shape: values.shape, scalars: values.scalars)
        for (height, width, kernel) in [(36, 40, 3), (33, 35, 5)] {
            let kw = kernel == 3 ? keptWeight : try Tensor(shape: [6, 4, 5, 5], scalars: randn([6, 4, 5, 5], seed: 89).scalars)
            let pw = kernel == 3 ? perCallWeight : try Tensor(shape: kw.shape, scalars: kw.scalars)
            let x = randn([2, 4, height, width], seed: 90)
            let r = randn([2, 6, height, width], seed: 91)
            let xk = x.requiringGradient(), xp = x.requiringGradient()
            let yk = try conv2d(xk, weight: kw, padding: kernel / 2)
            let yp = try WeightTransformPolicy.$current.withValue(.perCall) { try conv2d(xp, weight: pw, padding: kernel / 2) }
            #expect(yp.scalars == yk.scalars)
            let gk = try gradients(of: yk, withRespectTo: [xk], seed: r)[0]
            let gp = try gradients(of: yp, withRespectTo: [xp], seed: r)[0]
            #expect(gp.scalars == gk.scalars)
            let keys: [TensorStorage.DerivedKey] = [.winogradFilter(out: 6, in: 4), .kernelTaps(out: 6, in: 4, kernelH: kernel, kernelW: kernel)]
            #expect(keys.contains { kw.storage.keptDerived($0) != nil }, "the default keeps the transform")
            #expect(keys.allSatisfy { pw.storage.keptDerived($0) == nil }, "per call keeps nothing")
        }
    }

    @Test func transformsAreComputedOnceAndSharedByThreads() throws {
        let w = randn([24, 16, 3, 3], seed: 95), x = randn([1, 16, 34, 34], seed: 96)
        let expected = naiveConv2d(x, w, nil, stride: (1, 1), padding: (1, 1))
        // First use from several threads at once: one computes the transform, the others wait.
        let results = UnsafeMutableBufferPointer<Tensor?>.allocate(capacity: 4)
        results.initialize(repeating: nil)
        defer { results.deinitialize(); results.deallocate() }
        let slots = UncheckedSendable(results)
        DispatchQueue.concurrentPerform(iterations: 4) { i in
            slots.value[i] = try? conv2d(x, weight: w, padding: 1)
        }
        for y in results { expectClose(try #require(y), expected, tolerance: 1e-5) }
        var calls = 0
        let kept = w.storage.derived(.winogradFilter(out: 24, in: 16), count: 16 * 24 * 16) { _ in calls += 1 }
        #expect(calls == 0, "the transform was kept from the first use")
        #expect(kept === w.storage.derived(.winogradFilter(out: 24, in: 16), count: 0) { _ in calls += 1 })
    }
}
