import Testing
@testable import BlendTensor
import BlendTestSupport
import CBlendKernels

/// `f(x)` and its input gradient for the output gradient `g` (a fixed seed of the output's
/// shape), at every forced thread count: each must be bit for bit the 1-thread result.
/// Returns the 1-thread pair.
func forwardAndGradientAtEveryThreadCount(_ x: Tensor, seed: UInt64 = 777, _ label: String,
                                          sourceLocation: SourceLocation = #_sourceLocation,
                                          _ f: (Tensor) throws -> Tensor) throws -> (y: [Float], dx: [Float], g: [Float]) {
    var g: Tensor?
    let runs = try atEveryThreadCount { () -> ([Float], [Float]) in
        let leaf = x.requiringGradient()
        let y = try f(leaf)
        if g == nil { g = randn(y.shape, seed: seed) }
        return (y.scalars, try gradients(of: y, withRespectTo: [leaf], seed: g!)[0].scalars)
    }
    let first = runs[0].value
    for (threads, (y, dx)) in runs.dropFirst() {
        #expect(sameBits(y, first.0), "\(label): the output at \(threads) threads differs from 1 thread", sourceLocation: sourceLocation)
        #expect(sameBits(dx, first.1), "\(label): the input gradient at \(threads) threads differs from 1 thread",
                sourceLocation: sourceLocation)
    }
    return (first.0, first.1, g!.scalars)
}

/// Every fast path of the engine against float64 references over odd, prime and 32j+1 shapes,
/// forward and input gradient, at 1 to 64 forced threads: each result is also bit for bit the
/// same at every thread count (the split never changes an element's arithmetic).
@Suite struct ThreadCountPropertyTests {
    /// A convolution case: shapes, and the path forced on it.
    struct ConvCase: CustomStringConvertible, Sendable {
        let input: [Int], weight: [Int], stride: (Int, Int), padding: (Int, Int)
        let algorithm: Convolution3x3Algorithm, backend: ConvolutionBackend, precision: ComputePrecision
        var description: String {
            "x \(input) w \(weight) stride \(stride) pad \(padding) \(algorithm.rawValue) \(backend.rawValue) \(precision.rawValue)"
        }
    }

    static let convCases: [ConvCase] = {
        func c(_ input: [Int], _ weight: [Int], stride: (Int, Int) = (1, 1), padding: (Int, Int) = (1, 1),
               _ algorithm: Convolution3x3Algorithm = .automatic, backend: ConvolutionBackend = .engine,
               precision: ComputePrecision = .fp32) -> ConvCase {
            ConvCase(input: input, weight: weight, stride: stride, padding: padding, algorithm: algorithm, backend: backend,
                     precision: precision)
        }
        var cases = [
            // im2col: the 17×17 (289 = 9·32 + 1 columns) and a batch of 2.
            c([2, 24, 17, 17], [40, 24, 3, 3]),
            c([1, 33, 33, 33], [65, 33, 3, 3], stride: (2, 2)),
            c([1, 7, 29, 37], [97, 7, 5, 5], padding: (2, 1)),
            c([1, 13, 31, 23], [49, 13, 3, 5], padding: (0, 2)),
            // Pointwise, and a 1×7 shifted-GEMM kernel (stride 1, ≥ 1,024 pixels).
            c([2, 65, 33, 31], [97, 65, 1, 1], padding: (0, 0)),
            c([1, 17, 37, 41], [33, 17, 1, 7], padding: (0, 3)),
            c([1, 11, 47, 43], [23, 11, 5, 5], padding: (2, 2)),
            // Winograd F(2×2) and F(4×4) forced, odd output sizes for their discarded edges.
            c([1, 24, 17, 17], [40, 24, 3, 3], .winogradF2),
            c([1, 31, 45, 33], [53, 31, 3, 3], .winogradF2),
            c([1, 24, 17, 17], [40, 24, 3, 3], .winogradF4),
            c([1, 19, 53, 39], [37, 19, 3, 3], padding: (1, 0), .winogradF4),
            c([2, 9, 65, 67], [5, 9, 3, 3], .automatic),
        ]
        if OneDNN.context != nil {
            cases.append(c([1, 24, 17, 17], [40, 24, 3, 3], backend: .oneDNN))
            cases.append(c([1, 33, 33, 33], [65, 33, 3, 3], stride: (2, 2), backend: .oneDNN))
        }
        cases.append(c([1, 24, 17, 17], [40, 24, 3, 3], precision: .bf16Rounded))
        if ComputeLibrary.supportsBF16 {
            cases.append(c([1, 24, 17, 17], [40, 24, 3, 3], precision: .bf16))
            cases.append(c([1, 33, 33, 33], [65, 33, 3, 3], stride: (2, 2), precision: .bf16))
        }
        return cases
    }()

    @Test(arguments: 0..<convCases.count)
    func conv2dMatchesFloat64AtEveryThreadCount(index: Int) throws {
        let t = Self.convCases[index]
        let x = randn(t.input, seed: UInt64(100 + index))
        let fanIn = Float(t.weight.dropFirst().reduce(1, *))
        let w = randn(t.weight, seed: UInt64(200 + index), std: 1 / fanIn.squareRoot()), b = randn([t.weight[0]], seed: UInt64(300 + index))
        let run = try forwardAndGradientAtEveryThreadCount(x, "\(t)") { leaf in
            try ComputePrecision.$current.withValue(t.precision) {
                try ConvolutionBackend.$current.withValue(t.backend) {
                    try Convolution3x3Algorithm.$current.withValue(t.algorithm) {
                        try conv2d(leaf, weight: w, bias: b, stride: t.stride, padding: t.padding)
                    }
                }
            }
        }
        let shape = Reference.ConvShape(input: t.input, weight: t.weight, stride: t.stride, padding: t.padding)
        // bf16 multiplies operands rounded to bf16 and accumulates in fp32: its reference is the
        // float64 convolution of the rounded operands (the gradient's dY is rounded too).
        let bf16 = t.precision != .fp32
        let round: ([Float]) -> [Float] = { bf16 ? $0.map(roundedToBFloat16) : $0 }
        let y = Reference.conv2d(round(x.scalars), round(w.scalars), bias: b.scalars, shape)
        let dx = Reference.conv2dInputGradient(round(run.g), round(w.scalars), shape)
        // Winograd F(4×4) rounds its transforms in fp32: 2–3e-6 of the output's maximum.
        let bound = t.algorithm == .winogradF4 ? 1e-5 : 2e-6
        let forward = Reference.relativeError(run.y, y), backward = Reference.relativeError(run.dx, dx)
        #expect(forward < bound, "\(t): output error \(forward) against float64")
        #expect(backward < bound, "\(t): input-gradient error \(backward) against float64")
    }

    @Test(arguments: [(12, 197, 197, 64, false), (3, 77, 77, 64, true), (5, 33, 289, 17, false), (2, 1025, 61, 40, false)])
    func attentionMatchesFloat64AtEveryThreadCount(batch: Int, queries: Int, keys: Int, headDim: Int, causal: Bool) throws {
        let q = randn([batch, queries, headDim], seed: 400), k = randn([batch, keys, headDim], seed: 401)
        let v = randn([batch, keys, headDim + 3], seed: 402), g = randn([batch, queries, headDim + 3], seed: 403)
        let runs = try atEveryThreadCount { () -> [[Float]] in
            let (lq, lk, lv) = (q.requiringGradient(), k.requiringGradient(), v.requiringGradient())
            let y = try scaledDotProductAttention(q: lq, k: lk, v: lv, causal: causal)
            return [y.scalars] + (try gradients(of: y, withRespectTo: [lq, lk, lv], seed: g)).map(\.scalars)
        }
        let ref = Reference.attention(q: q.scalars, k: k.scalars, v: v.scalars, b: batch, t: queries, s: keys, d: headDim,
                                      dv: headDim + 3, alpha: 1 / Double(headDim).squareRoot(), causal: causal, g: g.scalars)
        let refs = [ref.y, ref.dq, ref.dk, ref.dv]
        for (threads, values) in runs {
            for (name, (got, want)) in zip(["output", "dq", "dk", "dv"], zip(values, refs)) {
                let error = Reference.relativeError(got, want)
                #expect(error < 1e-5, "attention \(batch)x\(queries)x\(keys) \(name) at \(threads) threads: error \(error)")
            }
            for j in 0..<4 { #expect(sameBits(values[j], runs[0].value[j]), "attention output \(j) at \(threads) threads") }
        }
    }

    @Test(arguments: [(1, 1025, 40, 4, 1 << 20), (2, 197, 64, 12, 3000), (1, 289, 33, 3, 1000)])
    func tiledAttentionMatchesFloat64AtEveryThreadCount(batch: Int, tokens: Int, headDim: Int, heads: Int, maxScores: Int) throws {
        let width = heads * headDim
        let q = randn([batch, tokens, width], seed: 410), k = randn([batch, tokens, width], seed: 411)
        let v = randn([batch, tokens, width], seed: 412), g = randn([batch, tokens, width], seed: 413)
        let runs = try atEveryThreadCount { () -> [[Float]] in
            let (lq, lk, lv) = (q.requiringGradient(), k.requiringGradient(), v.requiringGradient())
            let y = try tiledAttention(q: lq, k: lk, v: lv, heads: heads, maxScoreElements: maxScores)
            return [y.scalars] + (try gradients(of: y, withRespectTo: [lq, lk, lv], seed: g)).map(\.scalars)
        }
        // The reference on heads split out: [N, T, H·D] -> [N·H, T, D].
        func split(_ x: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: x.count)
            for n in 0..<batch { for t in 0..<tokens { for h in 0..<heads { for e in 0..<headDim {
                out[((n * heads + h) * tokens + t) * headDim + e] = x[(n * tokens + t) * width + h * headDim + e]
            } } } }
            return out
        }
        let ref = Reference.attention(q: split(q.scalars), k: split(k.scalars), v: split(v.scalars), b: batch * heads, t: tokens,
                                      s: tokens, d: headDim, dv: headDim, alpha: 1 / Double(headDim).squareRoot(), g: split(g.scalars))
        for (threads, values) in runs {
            for (name, (got, want)) in zip(["output", "dq", "dk", "dv"], zip(values.map(split), [ref.y, ref.dq, ref.dk, ref.dv])) {
                let error = Reference.relativeError(got, want)
                #expect(error < 1e-5, "tiled attention \(tokens) tokens \(name) at \(threads) threads: error \(error)")
            }
            for j in 0..<4 { #expect(sameBits(values[j], runs[0].value[j]), "tiled attention output \(j) at \(threads) threads") }
        }
    }

    @Test(arguments: [(2, 64, 32, 33 * 31), (1, 96, 32, 4099), (3, 33, 3, 97)])
    func groupNormMatchesFloat64AtEveryThreadCount(n: Int, channels: Int, groups: Int, spatial: Int) throws {
        let x = randn([n, channels, spatial], seed: 420) * 3 + 1.5
        let gamma = randn([channels], seed: 421), beta = randn([channels], seed: 422)
        let run = try forwardAndGradientAtEveryThreadCount(x, "groupNorm") { try groupNorm($0, groups: groups, weight: gamma, bias: beta) }
        let ref = Reference.groupNorm(x.scalars, n: n, c: channels, spatial: spatial, groups: groups, gamma: gamma.scalars,
                                      beta: beta.scalars, eps: 1e-5, g: run.g)
        #expect(Reference.relativeError(run.y, ref.y) < 1e-5 && Reference.relativeError(run.dx, ref.dx) < 1e-4)
        // And with the fused SiLU: silu(groupNorm(x)), the reference composed from the parts.
        let fused = try forwardAndGradientAtEveryThreadCount(x, "groupNormSiLU") {
            try groupNormSiLU($0, groups: groups, weight: gamma, bias: beta)
        }
        let u = ref.y
        let sig = u.map { 1 / (1 + Foundation_exp(-$0)) }
        let yRef = zip(u, sig).map { $0 * $1 }
        let gu: [Double] = (0..<u.count).map { (i: Int) -> Double in
            let s: Double = sig[i], slope: Double = 1 + u[i] * (1 - s)
            return Double(fused.g[i]) * s * slope
        }
        let dxRef = Reference.groupNorm(x.scalars, n: n, c: channels, spatial: spatial, groups: groups, gamma: gamma.scalars,
                                        beta: beta.scalars, eps: 1e-5, g: gu.map { Float($0) }).dx
        #expect(Reference.relativeError(fused.y, yRef) < 1e-5 && Reference.relativeError(fused.dx, dxRef) < 1e-4)
    }

    @Test(arguments: [(197 * 8, 768), (77 * 3, 1024), (4099, 34)])
    func layerNormSoftmaxAndGEGLUMatchFloat64AtEveryThreadCount(rows: Int, width: Int) throws {
        let x = randn([rows, width], seed: 430) * 2 + 0.5
        let gamma = randn([width], seed: 431), beta = randn([width], seed: 432)
        let ln = try forwardAndGradientAtEveryThreadCount(x, "layerNorm") { try layerNorm($0, weight: gamma, bias: beta) }
        let lnRef = Reference.layerNorm(x.scalars, width: width, gamma: gamma.scalars, beta: beta.scalars, eps: 1e-5, g: ln.g)
        #expect(Reference.relativeError(ln.y, lnRef.y) < 1e-5 && Reference.relativeError(ln.dx, lnRef.dx) < 1e-4)
        let sm = try forwardAndGradientAtEveryThreadCount(x, "softmax") { $0.softmax() }
        let smRef = Reference.softmax(x.scalars, width: width, g: sm.g)
        #expect(Reference.relativeError(sm.y, smRef.y) < 1e-5 && Reference.relativeError(sm.dx, smRef.dx) < 1e-5)
        let gg = try forwardAndGradientAtEveryThreadCount(x, "geglu") { try geglu($0) }
        let ggRef = Reference.geglu(x.scalars, features: width / 2, g: gg.g)
        #expect(Reference.relativeError(gg.y, ggRef.y) < 1e-5 && Reference.relativeError(gg.dx, ggRef.dx) < 1e-5)
    }

    @Test func poolingAndResamplingMatchFloat64AtEveryThreadCount() throws {
        let x = randn([3, 17, 67, 65], seed: 440)
        let pooled = try forwardAndGradientAtEveryThreadCount(x, "avgPool2d") { try avgPool2d($0, kernel: 3, stride: 2) }
        #expect(Reference.relativeError(pooled.y, Reference.avgPool(x.scalars, planes: 51, h: 67, w: 65, kernel: 3, stride: 2)) < 1e-6)
        _ = try forwardAndGradientAtEveryThreadCount(x, "maxPool2d") { try maxPool2d($0, kernel: 2) }
        _ = try forwardAndGradientAtEveryThreadCount(x, "adaptiveAvgPool2d") { try adaptiveAvgPool2d($0, outputSize: (7, 11)) }
        let resized = try forwardAndGradientAtEveryThreadCount(x, "resizeBilinear") { try resizeBilinear($0, height: 97, width: 33) }
        let resizeRef = Reference.resizeBilinear(x.scalars, planes: 51, h: 67, w: 65, outH: 97, outW: 33)
        // Bilinear weights are fp32, as PyTorch's: a few ulp of the largest value.
        #expect(Reference.relativeError(resized.y, resizeRef) < 1e-5)
        let up = try forwardAndGradientAtEveryThreadCount(x, "upsampleNearest2x") { try upsampleNearest2x($0) }
        #expect(up.y.count == 4 * x.count)
        // Grid sampling (CLIP's augmentations) with a random warp of every image.
        var rng = SplitMix64(seed: 441)
        let matrices = try Tensor(shape: [3, 2, 3], scalars: (0..<3).flatMap { _ in
            [1 + Float(rng.next() % 100) / 500, 0.1, 0.05, -0.08, 0.9, Float(rng.next() % 100) / 1000]
        })
        let grid = try affineGrid(matrices: matrices, height: 61, width: 53)
        _ = try forwardAndGradientAtEveryThreadCount(x, "gridSample") { try gridSample($0, grid: grid, alignCorners: false) }
    }

    @Test func elementwiseOpsAreTheSameAtEveryThreadCount() throws {
        // Enough elements (2²¹ + 33) to be cut into 64 chunks at odd offsets.
        let x = randn([1 << 21 | 33], seed: 450)
        let ops: [(String, (Tensor) throws -> Tensor)] = [
            ("silu", { $0.silu() }), ("gelu", { $0.gelu() }), ("sigmoid", { $0.sigmoid() }), ("quickGELU", { $0.quickGELU() }),
            ("exp", { ($0 * 0.1).exp() }), ("tanh", { $0.tanh() }), ("mul-add", { try $0 * $0 + 0.5 }),
        ]
        for (name, op) in ops { _ = try forwardAndGradientAtEveryThreadCount(x, name, op) }
    }

    @Test func cKernelsGiveAnElementTheSameValueAtAnyOffset() {
        // A thread's chunk of an elementwise op starts anywhere: every ISA variant this CPU runs
        // must compute an element the same way in a vector, in the tail, or alone.
        let n = 1000
        let x = randn([n], seed: 460).scalars, g = randn([n], seed: 461).scalars
        var level: Int32 = 0
        while let table = blend_kernels_level(level)?.pointee {
            func map1(_ f: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void, from: Int, count: Int) -> [Float] {
                var out = [Float](repeating: .nan, count: count)
                x.withUnsafeBufferPointer { xp in out.withUnsafeMutableBufferPointer { f(xp.baseAddress! + from, $0.baseAddress!, count) } }
                return out
            }
            func map2(_ f: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void,
                      from: Int, count: Int) -> [Float] {
                var out = [Float](repeating: .nan, count: count)
                x.withUnsafeBufferPointer { xp in g.withUnsafeBufferPointer { gp in out.withUnsafeMutableBufferPointer {
                    f(xp.baseAddress! + from, gp.baseAddress! + from, $0.baseAddress!, count)
                } } }
                return out
            }
            let unary: [(String, (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void)] = [
                ("exp", table.exp), ("erf", table.erf), ("gelu", table.gelu), ("sigmoid", table.sigmoid),
                ("silu", { table.silu($0, $1, $2, 1) }),
            ]
            let binary: [(String, (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void)] = [
                ("geluBackward", table.geluBackward), ("geglu", table.geglu), ("siluBackward", { table.siluBackward($0, $1, $2, $3, 1) }),
            ]
            for (name, f) in unary {
                let whole = map1(f, from: 0, count: n)
                for from in [1, 7, 15, 16, 17, 333] {
                    for count in [1, 3, 16, 31, 100] where from + count <= n {
                        #expect(sameBits(map1(f, from: from, count: count), Array(whole[from..<(from + count)])),
                                "level \(level) \(name) from \(from), \(count) elements")
                    }
                }
            }
            for (name, f) in binary {
                let whole = map2(f, from: 0, count: n)
                for from in [1, 9, 17, 500] {
                    #expect(sameBits(map2(f, from: from, count: 37), Array(whole[from..<(from + 37)])), "level \(level) \(name) from \(from)")
                }
            }
            level += 1
        }
        #expect(level >= 1)
    }
}

#if canImport(Glibc)
import Glibc
#endif
private func Foundation_exp(_ x: Double) -> Double { exp(x) }
