#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
import CBlendKernels
@testable import BlendTensor

/// The C kernels (CBlendKernels.h) of every ISA this CPU runs — always the baseline one, and
/// AVX2+FMA / AVX-512 where the CPU has them — against libm and double-precision references
/// over dense sweeps and edge cases.
@Suite struct KernelTests {
    /// Every kernel table this CPU runs, baseline first.
    static let tables: [BlendKernelTable] = (0...2).compactMap { blend_kernels_level(Int32($0))?.pointee }

    static func ulp(_ x: Float) -> Float { x.magnitude.ulp }

    /// Evenly spaced values over `range`, `count` of them.
    static func sweep(_ range: ClosedRange<Float>, count: Int) -> [Float] {
        (0..<count).map { range.lowerBound + (range.upperBound - range.lowerBound) * Float($0) / Float(count - 1) }
    }

    static func run(_ f: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void, _ x: [Float]) -> [Float] {
        var y = [Float](repeating: .nan, count: x.count)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in f(xp.baseAddress!, yp.baseAddress!, x.count) } }
        return y
    }

    static func run(_ f: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void,
                    _ x: [Float], _ g: [Float]) -> [Float] {
        var y = [Float](repeating: .nan, count: x.count)
        x.withUnsafeBufferPointer { xp in
            g.withUnsafeBufferPointer { gp in y.withUnsafeMutableBufferPointer { yp in f(xp.baseAddress!, gp.baseAddress!, yp.baseAddress!, x.count) } }
        }
        return y
    }

    /// Seeded values: uniform in ±`scale`.
    static func values(_ count: Int, seed: UInt64, scale: Float) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in (Float(rng.next() >> 40) / Float(1 << 24) * 2 - 1) * scale }
    }

    @Test func dispatchPicksAnAvailableTable() {
        #expect(Self.tables.first?.level == 0 && Self.tables.first?.lanes ?? 0 >= 4)
        #expect(blend_kernels_level(-1) == nil && blend_kernels_level(3) == nil)
        let best = blend_kernels().pointee
        #expect(Self.tables.contains { $0.level == best.level })
        if getenv("BLEND_KERNELS") == nil { #expect(best.level == Self.tables.last!.level) }
        #expect(kernels.level == best.level)
    }

    /// e^x within 2 ulp of expf on [−87.3, 88.3] (a dense sweep of 400,001 points); 0 below
    /// −87.34 and for −∞, NaN stays NaN (the softmax sweeps' exponential; it replaced the Swift
    /// `vectorExp`).
    @Test func expWithinTwoUlpOfLibm() {
        let x = Self.sweep(-87.3...88.3, count: 400_001) + [0, 1, -1, 1e-8, -1e-8]
        for t in Self.tables {
            let y = Self.run(t.exp, x)
            var worst: Float = 0
            for (xi, yi) in zip(x, y) { worst = max(worst, (yi - expf(xi)).magnitude / Self.ulp(expf(xi))) }
            #expect(worst <= 2, "level \(t.level): \(worst) ulp")
            let special = Self.run(t.exp, [-.infinity, -1000, -88, -87.5, .nan, 0])
            #expect(special[0] == 0 && special[1] == 0 && special[2] == 0 && special[3] == 0 && special[4].isNaN && special[5] == 1,
                    "level \(t.level): \(special)")
        }
    }

    /// erf within 2 ulp (and 1.5e-7 absolute) of libm's erff over [−6, 6] (800,001 points)
    /// and over small magnitudes 2⁻¹²⁶…2; odd; ±1 at ±∞; NaN stays NaN.
    @Test func erfWithinTwoUlpOfLibm() {
        var x = Self.sweep(-6...6, count: 800_001)
        for e in -126...1 { for m in stride(from: Float(1), to: 2, by: 1.0 / 64) { x.append(Float(sign: .plus, exponent: e, significand: m)) } }
        for t in Self.tables {
            let y = Self.run(t.erf, x)
            var worstUlp: Float = 0, worstAbs: Float = 0
            for (xi, yi) in zip(x, y) {
                let r = erff(xi)
                worstUlp = max(worstUlp, (yi - r).magnitude / Self.ulp(r))
                worstAbs = max(worstAbs, (yi - r).magnitude)
            }
            #expect(worstUlp <= 2 && worstAbs <= 1.5e-7, "level \(t.level): \(worstUlp) ulp, \(worstAbs) absolute")
            let negated = Self.run(t.erf, x.map { -$0 })
            #expect(zip(y, negated).allSatisfy { $0 == -$1 }, "level \(t.level): erf is not odd")
            let special = Self.run(t.erf, [.infinity, -.infinity, .nan, 0, -0.0])
            #expect(special[0] == 1 && special[1] == -1 && special[2].isNaN && special[3] == 0 && special[4] == 0 && special[4].sign == .minus,
                    "level \(t.level): \(special)")
        }
    }

    /// GELU, its derivative, sigmoid, SiLU, quick GELU and their derivatives against the libm formulas the
    /// engine used before (absolute error ≤ 2.5e-7·(1 + |x|)), over ±12 and odd lengths.
    @Test func activationsMatchLibmFormulas() {
        let x = Self.sweep(-12...12, count: 100_003) + [0, -0.0]
        let g = Self.values(x.count, seed: 11, scale: 2)
        func cdf(_ v: Float) -> Float { 0.5 * (1 + erff(v * 0.70710678118654752)) }
        func sig(_ v: Float) -> Float { 1 / (1 + expf(-v)) }
        let references: [(String, (Float, Float) -> Float)] = [
            ("gelu", { x, _ in x * cdf(x) }),
            ("geluBackward", { x, g in g * (cdf(x) + x * expf(-0.5 * x * x) * 0.39894228040143268) }),
            ("sigmoid", { x, _ in sig(x) }),
            ("silu", { x, _ in x * sig(x) }),
            ("siluBackward", { x, g in g * sig(x) * (1 + x * (1 - sig(x))) }),
            ("quickGELU", { x, _ in x * sig(1.702 * x) }),
            ("quickGELUBackward", { x, g in g * sig(1.702 * x) * (1 + 1.702 * x * (1 - sig(1.702 * x))) }),
        ]
        for t in Self.tables {
            let results: [[Float]] = [Self.run(t.gelu, x), Self.run(t.geluBackward, x, g), Self.run(t.sigmoid, x),
                                      Self.run({ t.silu($0, $1, $2, 1) }, x), Self.run({ t.siluBackward($0, $1, $2, $3, 1) }, x, g),
                                      Self.run({ t.silu($0, $1, $2, 1.702) }, x), Self.run({ t.siluBackward($0, $1, $2, $3, 1.702) }, x, g)]
            for ((name, f), y) in zip(references, results) {
                var worst: Float = 0
                for i in x.indices { worst = max(worst, (y[i] - f(x[i], g[i])).magnitude / (1 + x[i].magnitude) / max(1, g[i].magnitude)) }
                #expect(worst <= 2.5e-7, "level \(t.level) \(name): \(worst)")
            }
            // NaN propagates; ±∞ saturate.
            let special = Self.run({ t.silu($0, $1, $2, 1) }, [.nan, .infinity, -100])
            #expect(special[0].isNaN && special[1] == .infinity && special[2].magnitude < 1e-30, "level \(t.level) silu: \(special)")
            let gelu = Self.run(t.gelu, [.nan, .infinity, -.infinity, -20])
            #expect(gelu[0].isNaN && gelu[1] == .infinity && gelu[3] == 0, "level \(t.level) gelu: \(gelu)")
        }
    }

    /// GEGLU forward and backward against the libm formulas, on lengths around the vector
    /// widths (0, 1, 7, 8, 9, 15, 16, 17, 33, 1000).
    @Test func gegluMatchesLibmFormulas() {
        for t in Self.tables {
            for n in [0, 1, 7, 8, 9, 15, 16, 17, 33, 1000] {
                let h = Self.values(n, seed: UInt64(n) + 1, scale: 3), z = Self.values(n, seed: UInt64(n) + 2, scale: 6)
                let dy = Self.values(n, seed: UInt64(n) + 3, scale: 1)
                var out = [Float](repeating: .nan, count: n + 1), dh = out, dz = out
                out[n] = 42; dh[n] = 42; dz[n] = 42
                t.geglu(h, z, &out, n)
                t.gegluBackward(h, z, dy, &dh, &dz, n)
                for j in 0..<n {
                    let cdf = 0.5 * (1 + erff(z[j] * 0.70710678118654752)), pdf = expf(-0.5 * z[j] * z[j]) * 0.39894228040143268
                    #expect((out[j] - h[j] * z[j] * cdf).magnitude <= 1e-6, "level \(t.level) n \(n) forward \(j)")
                    #expect((dh[j] - dy[j] * z[j] * cdf).magnitude <= 1e-6, "level \(t.level) n \(n) dHidden \(j)")
                    #expect((dz[j] - dy[j] * h[j] * (cdf + z[j] * pdf)).magnitude <= 1e-6, "level \(t.level) n \(n) dGate \(j)")
                }
                // Nothing past the end is written.
                #expect(out[n] == 42 && dh[n] == 42 && dz[n] == 42, "level \(t.level) n \(n)")
            }
        }
    }

    /// e^(x − max) in place with its sum, and the softmax, against double precision on widths
    /// 0…40 and 4101, for values up to ±80 (differences below −87.34 flush to 0), rows
    /// with −∞ (masked positions give 0), and NaN (NaN in place and in the sum, as before).
    @Test func softmaxSweepsMatchDoublePrecision() {
        for t in Self.tables {
            for width in Array(0...40) + [4101] {
                for scale: Float in [1, 80] {
                    var row = Self.values(width, seed: UInt64(width * 7) + UInt64(scale), scale: scale)
                    if width > 3 { row[width / 2] = -.infinity }
                    // The reference exponentiates the same float differences x − max as the kernel.
                    let m = row.max() ?? 0
                    let e = row.map { Foundation_exp(Double($0 - m)) }
                    let sum = e.reduce(0, +)
                    var shifted = row + [42]
                    let s = t.expShiftedRow(&shifted, width)
                    #expect(shifted[width] == 42)
                    #expect(Double(s) == 0 && width == 0 || (Double(s) - sum).magnitude <= 1e-6 * sum, "level \(t.level) width \(width): \(s) vs \(sum)")
                    for i in 0..<width { #expect((Double(shifted[i]) - e[i]).magnitude <= 2.5e-7 * max(e[i], 1e-30) + 1e-37, "level \(t.level) width \(width) at \(i)") }
                    var soft = row + [42]
                    t.softmaxRow(&soft, width)
                    #expect(soft[width] == 42)
                    for i in 0..<width { #expect((Double(soft[i]) - e[i] / sum).magnitude <= 1e-6 * e[i] / sum + 1e-37, "level \(t.level) width \(width) at \(i)") }
                }
            }
            // The backward dx = y·(g − Σ y·g), also in place (dx = g) as the tiled attention runs it.
            for width in [0, 1, 7, 8, 9, 31, 33, 65, 1000] {
                var y = Self.values(width, seed: UInt64(width) + 30, scale: 1).map { $0.magnitude / Float(max(width, 1)) }
                let g = Self.values(width, seed: UInt64(width) + 31, scale: 3)
                let dot = zip(y, g).map { Double($0) * Double($1) }.reduce(0, +)
                let absDot = zip(y, g).map { (Double($0) * Double($1)).magnitude }.reduce(0, +)
                var dx = [Float](repeating: .nan, count: width) + [42]
                t.softmaxBackwardRow(y, g, &dx, width)
                var inPlace = g
                inPlace.withUnsafeMutableBufferPointer { p in t.softmaxBackwardRow(&y, p.baseAddress!, p.baseAddress!, width) }
                #expect(dx[width] == 42, "level \(t.level) width \(width)")
                for i in 0..<width {
                    let r = Double(y[i]) * (Double(g[i]) - dot)
                    #expect((Double(dx[i]) - r).magnitude <= 1e-6 * (Double(y[i]) * (Double(g[i].magnitude) + absDot) + 1e-30),
                            "level \(t.level) width \(width) at \(i)")
                    #expect(inPlace[i] == dx[i], "level \(t.level) width \(width) in place at \(i)")
                }
            }
            var nanRow: [Float] = [1, 2, .nan, 3, 0, 0, 0, 0, 0, 0, 0]
            let s = t.expShiftedRow(&nanRow, nanRow.count)
            #expect(s.isNaN && nanRow[2].isNaN && nanRow[3] == 1 && (nanRow[0] - expf(-2)).magnitude < 1e-7, "level \(t.level): \(nanRow)")
        }
    }

    /// Group norm + SiLU's per-channel kernels: silu(x·a + b), and the backward's two sweeps,
    /// against the libm formulas (sums in double), on lengths around the vector widths.
    @Test func affineSiLUMatchesLibm() {
        let x = Self.values(1003, seed: 5, scale: 4)
        let (a, b, gm, mean, rstd, cx, c0): (Float, Float, Float, Float, Float, Float, Float) = (1.7, -0.3, 0.8, 0.25, 1.3, -0.2, 0.05)
        func sig(_ v: Float) -> Float { 1 / (1 + expf(-v)) }
        for t in Self.tables {
            for n in [0, 1, 5, 8, 13, 16, 17, 1003] {
                let g = Self.values(n, seed: UInt64(n) + 9, scale: 1)
                let d = (0..<n).map { i -> Double in
                    let u = x[i] * a + b
                    return Double(g[i] * sig(u) * (1 + u * (1 - sig(u))) * gm)
                }
                var sums: [Float] = [.nan, .nan]
                t.affineSiLUBackwardSums(x, g, n, a, b, gm, mean, &sums)
                let sd = d.reduce(0, +), sdx = zip(d, x).map { $0 * Double($1 - mean) }.reduce(0, +)
                let scale = d.map(\.magnitude).reduce(0, +) * 4 + 1e-30
                #expect((Double(sums[0]) - sd).magnitude <= 1e-6 * scale && (Double(sums[1]) - sdx).magnitude <= 1e-6 * scale,
                        "level \(t.level) n \(n): \(sums) vs \(sd), \(sdx)")
                var dx = [Float](repeating: 42, count: n + 1)
                t.affineSiLUBackward(x, g, &dx, n, a, b, gm, mean, rstd, cx, c0)
                #expect(dx[n] == 42, "level \(t.level) n \(n): wrote past the end")
                for i in 0..<n {
                    let r = Double(rstd) * d[i] + Double(cx) * Double(x[i] - mean) + Double(c0)
                    #expect((Double(dx[i]) - r).magnitude <= 1e-6 * (1 + r.magnitude), "level \(t.level) n \(n) at \(i)")
                }
            }
            var y = [Float](repeating: .nan, count: x.count)
            t.affineSiLU(x, &y, x.count, 1.7, -0.3)
            for i in x.indices {
                let u = x[i] * 1.7 - 0.3
                #expect((y[i] - u / (1 + expf(-u))).magnitude <= 2.5e-7 * (1 + u.magnitude), "level \(t.level) at \(i)")
            }
        }
    }
}

private func Foundation_exp(_ x: Double) -> Double { exp(x) }
