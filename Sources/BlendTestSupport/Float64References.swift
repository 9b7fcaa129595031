// Float64 references of the engine's fast paths: plain loops in double precision, written
// from the ops' definitions (PyTorch's, where the engine follows it) and sharing no code with
// the engine. Compiled optimised (Package.swift) so that property tests over many shapes stay
// fast in debug builds.
import BlendTensor

/// Float64 references of the engine's ops (row-major, NCHW, as the engine).
public enum Reference {
    /// C = α·op(A)·op(B) + β·C for row-major `a` (M×K, or K×M with `transA`), `b` (K×N, or N×K
    /// with `transB`) and `c` (M×N, row stride `ldc`), with leading dimensions `lda`, `ldb`.
    public static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Double, a: [Float], lda: Int,
                            b: [Float], ldb: Int, beta: Double, c: [Float], ldc: Int) -> [Double] {
        var out = [Double](repeating: 0, count: m * ldc)
        for i in 0..<m {
            for j in 0..<n {
                var acc = 0.0
                for p in 0..<k {
                    let x = transA ? a[p * lda + i] : a[i * lda + p]
                    let y = transB ? b[j * ldb + p] : b[p * ldb + j]
                    acc += Double(x) * Double(y)
                }
                out[i * ldc + j] = alpha * acc + (beta == 0 ? 0 : beta * Double(c[i * ldc + j]))
            }
        }
        return out
    }

    /// The geometry of a convolution of `input` `[N, C, H, W]` with `weight` `[O, C, kH, kW]`.
    public struct ConvShape: Sendable {
        public let n: Int, c: Int, h: Int, w: Int, o: Int, kh: Int, kw: Int
        public let stride: (Int, Int), padding: (Int, Int)
        public var oh: Int { (h + 2 * padding.0 - kh) / stride.0 + 1 }
        public var ow: Int { (w + 2 * padding.1 - kw) / stride.1 + 1 }

        public init(input: [Int], weight: [Int], stride: (Int, Int), padding: (Int, Int)) {
            (n, c, h, w) = (input[0], input[1], input[2], input[3])
            (o, kh, kw) = (weight[0], weight[2], weight[3])
            self.stride = stride
            self.padding = padding
        }
    }

    /// Every (output, input, weight) index triple of a convolution's sum, output by output:
    /// output (b, o, y, x) adds input (b, c, y·s + i − p, x·s + j − p) times weight (o, c, i, j)
    /// for every tap inside the image.
    @inline(__always)
    static func forEachTap(_ s: ConvShape, _ body: (_ out: Int, _ input: Int, _ weight: Int) -> Void) {
        let (oh, ow) = (s.oh, s.ow)
        for b in 0..<s.n { for o in 0..<s.o { for y in 0..<oh { for xo in 0..<ow {
            let out = ((b * s.o + o) * oh + y) * ow + xo
            for ci in 0..<s.c { for i in 0..<s.kh {
                let iy = y * s.stride.0 - s.padding.0 + i
                guard iy >= 0, iy < s.h else { continue }
                for j in 0..<s.kw {
                    let ix = xo * s.stride.1 - s.padding.1 + j
                    guard ix >= 0, ix < s.w else { continue }
                    body(out, ((b * s.c + ci) * s.h + iy) * s.w + ix, ((o * s.c + ci) * s.kh + i) * s.kw + j)
                }
            } }
        } } } }
    }

    /// PyTorch's `F.conv2d` (cross-correlation with zero padding).
    public static func conv2d(_ x: [Float], _ weight: [Float], bias: [Float]?, _ s: ConvShape) -> [Double] {
        var out = [Double](repeating: 0, count: s.n * s.o * s.oh * s.ow)
        let plane = s.oh * s.ow
        for i in out.indices { out[i] = Double(bias?[(i / plane) % s.o] ?? 0) }
        forEachTap(s) { o, i, w in out[o] += Double(x[i]) * Double(weight[w]) }
        return out
    }

    /// The input gradient of ``conv2d(_:_:bias:_:)`` for the output gradient `g` (its adjoint).
    public static func conv2dInputGradient(_ g: [Float], _ weight: [Float], _ s: ConvShape) -> [Double] {
        var out = [Double](repeating: 0, count: s.n * s.c * s.h * s.w)
        forEachTap(s) { o, i, w in out[i] += Double(g[o]) * Double(weight[w]) }
        return out
    }

    /// Scaled dot-product attention for `[B, T, D]` queries, `[B, S, D]` keys and `[B, S, Dv]`
    /// values: `softmax(α·q·kᵀ)·v`, with the causal mask when asked. Returns the output
    /// `[B, T, Dv]` and, for an output gradient `g`, the gradients of q, k and v.
    public static func attention(q: [Float], k: [Float], v: [Float], b: Int, t: Int, s: Int, d: Int, dv: Int,
                                 alpha: Double, causal: Bool = false, g: [Float]? = nil)
        -> (y: [Double], dq: [Double], dk: [Double], dv: [Double]) {
        var y = [Double](repeating: 0, count: b * t * dv)
        var gq = [Double](repeating: 0, count: b * t * d), gk = [Double](repeating: 0, count: b * s * d)
        var gv = [Double](repeating: 0, count: b * s * dv)
        var p = [Double](repeating: 0, count: s), dp = [Double](repeating: 0, count: s)
        for i in 0..<b {
            for r in 0..<t {
                let keys = causal ? min(r + 1, s) : s
                var mx = -Double.infinity
                for j in 0..<keys {
                    var acc = 0.0
                    for e in 0..<d { acc += Double(q[(i * t + r) * d + e]) * Double(k[(i * s + j) * d + e]) }
                    p[j] = alpha * acc
                    mx = max(mx, p[j])
                }
                var sum = 0.0
                for j in 0..<keys { p[j] = Foundation_exp(p[j] - mx); sum += p[j] }
                for j in 0..<keys { p[j] /= sum }
                for e in 0..<dv {
                    var acc = 0.0
                    for j in 0..<keys { acc += p[j] * Double(v[(i * s + j) * dv + e]) }
                    y[(i * t + r) * dv + e] = acc
                }
                guard let g else { continue }
                // dV += pᵀ·g, dP = g·Vᵀ, dS = p·(dP − Σ p·dP), dQ = α·dS·K, dK += α·dSᵀ·q
                var dot = 0.0
                for j in 0..<keys {
                    var acc = 0.0
                    for e in 0..<dv {
                        let ge = Double(g[(i * t + r) * dv + e])
                        acc += ge * Double(v[(i * s + j) * dv + e])
                        gv[(i * s + j) * dv + e] += p[j] * ge
                    }
                    dp[j] = acc
                    dot += p[j] * acc
                }
                for j in 0..<keys {
                    let ds = p[j] * (dp[j] - dot) * alpha
                    for e in 0..<d {
                        gq[(i * t + r) * d + e] += ds * Double(k[(i * s + j) * d + e])
                        gk[(i * s + j) * d + e] += ds * Double(q[(i * t + r) * d + e])
                    }
                }
            }
        }
        return (y, gq, gk, gv)
    }

    /// PyTorch's `F.group_norm` of `[N, C, spatial…]` with per-channel `gamma`, `beta`, and,
    /// for an output gradient `g`, the input gradient.
    public static func groupNorm(_ x: [Float], n: Int, c: Int, spatial: Int, groups: Int, gamma: [Float], beta: [Float],
                                 eps: Double, g: [Float]? = nil) -> (y: [Double], dx: [Double]) {
        var y = [Double](repeating: 0, count: x.count), dx = [Double](repeating: 0, count: x.count)
        let per = c / groups, size = per * spatial
        for b in 0..<n {
            for grp in 0..<groups {
                let base = (b * c + grp * per) * spatial
                var mean = 0.0
                for i in 0..<size { mean += Double(x[base + i]) }
                mean /= Double(size)
                var variance = 0.0
                for i in 0..<size { variance += (Double(x[base + i]) - mean) * (Double(x[base + i]) - mean) }
                variance /= Double(size)
                let rstd = 1 / (variance + eps).squareRoot()
                var sumD = 0.0, sumDX = 0.0
                for i in 0..<size {
                    let ch = grp * per + i / spatial
                    let xhat = (Double(x[base + i]) - mean) * rstd
                    y[base + i] = xhat * Double(gamma[ch]) + Double(beta[ch])
                    if let g {
                        let d = Double(g[base + i]) * Double(gamma[ch])
                        sumD += d
                        sumDX += d * xhat
                    }
                }
                guard let g else { continue }
                for i in 0..<size {
                    let ch = grp * per + i / spatial
                    let xhat = (Double(x[base + i]) - mean) * rstd
                    let d = Double(g[base + i]) * Double(gamma[ch])
                    dx[base + i] = rstd * (d - sumD / Double(size) - xhat * sumDX / Double(size))
                }
            }
        }
        return (y, dx)
    }

    /// PyTorch's `nn.LayerNorm` over rows of `width`, and the input gradient for `g`.
    public static func layerNorm(_ x: [Float], width: Int, gamma: [Float], beta: [Float], eps: Double, g: [Float]? = nil)
        -> (y: [Double], dx: [Double]) {
        let (y, dx) = groupNorm(x, n: x.count / width, c: 1, spatial: width, groups: 1, gamma: [1], beta: [0], eps: eps,
                                g: g.map { g in g.enumerated().map { $0.element * gamma[$0.offset % width] } })
        return (y.enumerated().map { $0.element * Double(gamma[$0.offset % width]) + Double(beta[$0.offset % width]) }, dx)
    }

    /// Softmax over rows of `width`, and its backward y·(g − Σ y·g) for `g`.
    public static func softmax(_ x: [Float], width: Int, g: [Float]? = nil) -> (y: [Double], dx: [Double]) {
        var y = [Double](repeating: 0, count: x.count), dx = [Double](repeating: 0, count: x.count)
        for r in 0..<(x.count / width) {
            let row = r * width
            let mx = (0..<width).map { Double(x[row + $0]) }.max() ?? 0
            var sum = 0.0
            for j in 0..<width { y[row + j] = Foundation_exp(Double(x[row + j]) - mx); sum += y[row + j] }
            for j in 0..<width { y[row + j] /= sum }
            guard let g else { continue }
            var dot = 0.0
            for j in 0..<width { dot += y[row + j] * Double(g[row + j]) }
            for j in 0..<width { dx[row + j] = y[row + j] * (Double(g[row + j]) - dot) }
        }
        return (y, dx)
    }

    /// GEGLU of rows `[hidden | gate]` of width 2F: hidden·gelu(gate) with the exact GELU, and
    /// the input gradient for `g` (`[rows, F]`).
    public static func geglu(_ x: [Float], features f: Int, g: [Float]? = nil) -> (y: [Double], dx: [Double]) {
        let rows = x.count / (2 * f)
        var y = [Double](repeating: 0, count: rows * f), dx = [Double](repeating: 0, count: x.count)
        for r in 0..<rows {
            for j in 0..<f {
                let h = Double(x[r * 2 * f + j]), z = Double(x[r * 2 * f + f + j])
                let cdf = 0.5 * (1 + Foundation_erf(z / 2.0.squareRoot()))
                let pdf = Foundation_exp(-0.5 * z * z) / (2 * Double.pi).squareRoot()
                y[r * f + j] = h * z * cdf
                if let g {
                    let gy = Double(g[r * f + j])
                    dx[r * 2 * f + j] = gy * z * cdf
                    dx[r * 2 * f + f + j] = gy * h * (cdf + z * pdf)
                }
            }
        }
        return (y, dx)
    }

    /// PyTorch's `F.avg_pool2d(x, kernel, stride)` (no padding, floor mode) on `[planes, H, W]`.
    public static func avgPool(_ x: [Float], planes: Int, h: Int, w: Int, kernel: Int, stride: Int) -> [Double] {
        let oh = (h - kernel) / stride + 1, ow = (w - kernel) / stride + 1
        var out = [Double](repeating: 0, count: planes * oh * ow)
        for p in 0..<planes { for y in 0..<oh { for xo in 0..<ow {
            var acc = 0.0
            for i in 0..<kernel { for j in 0..<kernel { acc += Double(x[(p * h + y * stride + i) * w + xo * stride + j]) } }
            out[(p * oh + y) * ow + xo] = acc / Double(kernel * kernel)
        } } }
        return out
    }

    /// PyTorch's bilinear `F.interpolate(x, size, align_corners=False)` on `[planes, H, W]`
    /// (`antialias` off): source coordinate (dst + ½)·in/out − ½, clamped at 0.
    public static func resizeBilinear(_ x: [Float], planes: Int, h: Int, w: Int, outH: Int, outW: Int) -> [Double] {
        func taps(_ inSize: Int, _ outSize: Int, _ i: Int) -> (Int, Int, Double) {
            let src = max((Double(i) + 0.5) * Double(inSize) / Double(outSize) - 0.5, 0)
            let lo = min(Int(src), inSize - 1), hi = min(lo + 1, inSize - 1)
            return (lo, hi, src - Double(lo))
        }
        var out = [Double](repeating: 0, count: planes * outH * outW)
        for p in 0..<planes { for y in 0..<outH { for xo in 0..<outW {
            let (y0, y1, fy) = taps(h, outH, y), (x0, x1, fx) = taps(w, outW, xo)
            func at(_ yy: Int, _ xx: Int) -> Double { Double(x[(p * h + yy) * w + xx]) }
            let top = at(y0, x0) * (1 - fx) + at(y0, x1) * fx, bottom = at(y1, x0) * (1 - fx) + at(y1, x1) * fx
            out[(p * outH + y) * outW + xo] = top * (1 - fy) + bottom * fy
        } } }
        return out
    }

    /// The largest |a − b| relative to the largest |b| (0 for empty arrays): the error measure
    /// of the property tests, insensitive to single small elements.
    public static func relativeError(_ a: [Float], _ b: [Double]) -> Double {
        precondition(a.count == b.count, "\(a.count) values against \(b.count)")
        let scale = b.reduce(0) { max($0, Swift.abs($1)) }
        let worst = zip(a, b).reduce(0) { max($0, Swift.abs(Double($1.0) - $1.1)) }
        return worst / max(scale, .leastNormalMagnitude)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@inline(__always) private func Foundation_exp(_ x: Double) -> Double { exp(x) }
@inline(__always) private func Foundation_erf(_ x: Double) -> Double { erf(x) }

/// Whether two float arrays hold the same bits (so NaN = NaN, and +0 ≠ −0).
public func sameBits(_ a: [Float], _ b: [Float]) -> Bool {
    guard a.count == b.count else { return false }
    if a.isEmpty { return true }
    return a.withUnsafeBytes { x in b.withUnsafeBytes { y in memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0 } }
}

/// Whether every value is finite (no NaN or infinity).
public func allFinite(_ a: [Float]) -> Bool { a.allSatisfy { $0.isFinite } }
