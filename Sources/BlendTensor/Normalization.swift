#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Mean and reciprocal standard deviation of `count` contiguous values (biased variance).
@inline(__always)
private func moments(_ p: UnsafeMutablePointer<Float>, _ count: Int, eps: Float) -> (mean: Float, rstd: Float) {
    // One pass over memory (these blocks are megabytes): sums of (x − k) and (x − k)² with
    // k an estimate of the mean, so that E[d²] − E[d]² does not cancel even when the mean is
    // large against the spread. Vector float partial sums over short runs keep the loop
    // fast; accumulating the runs in double keeps a million-element sum exact enough to
    // match PyTorch to float rounding.
    let probe = min(count, 64)
    var k: Float = 0
    for i in 0..<probe { k += p[i] }
    k /= Float(max(probe, 1))
    let shift = SIMD16<Float>(repeating: k)
    var sum = 0.0, sq = 0.0
    var i = 0
    while i < count {
        let n = min(4096, count - i)
        var s = SIMD16<Float>(), q = SIMD16<Float>()
        var j = 0
        let run = UnsafeRawPointer(p + i)
        while j + 16 <= n {
            let d = run.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self) - shift
            s += d
            q += d * d
            j += 16
        }
        var ts = Double(s.sum()), tq = Double(q.sum())
        while j < n { let d = Double(p[i + j] - k); ts += d; tq += d * d; j += 1 }
        sum += ts
        sq += tq
        i += n
    }
    let meanShift = sum / Double(count)
    let variance = max(sq / Double(count) - meanShift * meanShift, 0)
    return (Float(Double(k) + meanShift), Float(1 / (variance + Double(eps)).squareRoot()))
}

/// Group normalisation (PyTorch's `F.group_norm`) of `[N, C, ...]` over groups of
/// `C / groups` channels; `weight` and `bias` (`[C]`, constants) scale and shift per channel.
public func groupNorm(_ x: Tensor, groups: Int, weight: Tensor? = nil, bias: Tensor? = nil, eps: Float = 1e-5) throws -> Tensor {
    try fusedGroupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps, modulation: nil, silu: false)
}

/// `silu(groupNorm(x) · (1 + scale) + shift)` in one pass, the diffusion UNet's
/// normalisation layers: `scale` and `shift` (`[N, C]`, optional) are the timestep
/// modulation of a scale-shift ResBlock. Fusing saves a full-size temporary per layer, two
/// passes over memory, and the saved activation of a separate SiLU. Differentiable in
/// `x`; when `scale` or `shift` take part in a differentiable computation themselves, the
/// unfused composition runs instead so that they get their gradients too.
public func groupNormSiLU(_ x: Tensor, groups: Int, weight: Tensor? = nil, bias: Tensor? = nil, eps: Float = 1e-5,
                          scale: Tensor? = nil, shift: Tensor? = nil) throws -> Tensor {
    if scale?.requiresGradient == true || shift?.requiresGradient == true || (scale == nil) != (shift == nil) {
        var h = try groupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps)
        let shape = [x.dim(0), x.dim(1)] + Array(repeating: 1, count: max(x.rank - 2, 0))
        if let scale { h = try h * (scale.reshaped(shape) + 1) }
        if let shift { h = try h + shift.reshaped(shape) }
        return h.silu()
    }
    return try fusedGroupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps,
                              modulation: scale.map { ($0, shift!) }, silu: true)
}

private func fusedGroupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float,
                            modulation: (scale: Tensor, shift: Tensor)?, silu: Bool) throws -> Tensor {
    guard x.rank >= 2 else {
        throw TensorError.shapeMismatch(op: "groupNorm", expected: "input [N, C, ...]", got: x.shape)
    }
    let n = x.dim(0), c = x.dim(1)
    guard groups > 0, c % groups == 0 else {
        throw TensorError.invalidArgument(op: "groupNorm", message: "\(c) channels do not split into \(groups) groups")
    }
    for p in [weight, bias].compactMap({ $0 }) where p.shape != [c] {
        throw TensorError.shapeMismatch(op: "groupNorm weight/bias", expected: "[\(c)]", got: p.shape)
    }
    if let modulation, modulation.scale.count != n * c || modulation.shift.count != n * c {
        throw TensorError.shapeMismatch(op: "groupNormSiLU scale/shift", expected: "[\(n), \(c)]", got: modulation.scale.shape)
    }
    let spatial = x.count / max(n * c, 1)
    let perGroup = c / groups
    let blocks = n * groups, blockSize = perGroup * spatial
    var stats = [Float](repeating: 0, count: 2 * blocks)   // mean, rstd per (n, group)
    let y = Tensor(uninitializedShape: x.shape)
    let xp = x.pointer, yp = y.pointer
    let gamma = weight?.pointer, beta = bias?.pointer
    let mScale = modulation?.scale.pointer, mShift = modulation?.shift.pointer

    /// The per-channel affine map u = x·a + b of block `b`, channel `j`, and the modulation factor.
    @inline(__always)
    func affine(_ b: Int, _ j: Int, mean: Float, rstd: Float) -> (a: Float, b: Float, m: Float, ch: Int) {
        let ch = (b % groups) * perGroup + j
        let nc = (b / groups) * c + ch
        let m = 1 + (mScale?[nc] ?? 0)
        let a = rstd * (gamma?[ch] ?? 1)
        return (a * m, ((beta?[ch] ?? 0) - mean * a) * m + (mShift?[nc] ?? 0), m, ch)
    }

    let affineSiLU = kernels.affineSiLU
    // Invariant: one (image, group) block per work item, its sums serial within it.
    stats.withUnsafeMutableBufferPointer { st in
        parallelFor(blocks) { b in
            let base = b * blockSize
            let (mean, rstd) = moments(xp + base, blockSize, eps: eps)
            st[2 * b] = mean
            st[2 * b + 1] = rstd
            for j in 0..<perGroup {
                let (a, sh, _, _) = affine(b, j, mean: mean, rstd: rstd)
                let src = xp + base + j * spatial, dst = yp + base + j * spatial
                if silu {
                    affineSiLU(src, dst, spatial, a, sh)
                } else {
                    for i in 0..<spatial { dst[i] = src[i] * a + sh }
                }
            }
        }
    }
    // The capture list keeps the constants alive for as long as the closure reads their pointers.
    return Tensor.recorded(y, from: [x]) { [x, weight, bias, modulation] g in
        // dx = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)), where dx̂ = ∂L/∂x̂ = g·silu′(u)·γ·m
        // (g·γ·m without SiLU). Two vectorised sweeps over each block: the first sums dx̂ and
        // dx̂·(x − mean), the second recomputes dx̂ (cheaper than storing and reloading it)
        // and writes dx = rstd·dx̂ + cx·(x − mean) + c0 with per-block constants. With SiLU,
        // both sweeps are C kernels (affineSiLUBackwardSums/affineSiLUBackward).
        let gx = Tensor(uninitializedShape: x.shape)
        let gp = g.pointer, gxp = gx.pointer
        stats.withUnsafeBufferPointer { st in
            parallelFor(blocks) { b in
                let base = b * blockSize
                let mean = st[2 * b], rstd = st[2 * b + 1]
                var sumD = 0.0, sumDX = 0.0
                for j in 0..<perGroup {
                    let (a, sh, m, ch) = affine(b, j, mean: mean, rstd: rstd)
                    let gm = (gamma?[ch] ?? 1) * m
                    let src = xp + base + j * spatial, gr = gp + base + j * spatial
                    if silu {
                        // The C kernel of the CPU's widest ISA (e^x with FMA on AVX2).
                        var sums: (Float, Float) = (0, 0)
                        withUnsafeMutablePointer(to: &sums) {
                            $0.withMemoryRebound(to: Float.self, capacity: 2) { kernels.affineSiLUBackwardSums(src, gr, spatial, a, sh, gm, mean, $0) }
                        }
                        sumD += Double(sums.0)
                        sumDX += Double(sums.1) * Double(rstd)
                        continue
                    }
                    // Without SiLU, dx̂ = g·γ·m.
                    let meanV = SIMD8<Float>(repeating: mean), gmV = SIMD8<Float>(repeating: gm)
                    var sdv = SIMD8<Float>(), sdxv = SIMD8<Float>()
                    let rs = UnsafeRawPointer(src), rg = UnsafeRawPointer(gr)
                    var i = 0
                    while i + 8 <= spatial {
                        let xv = rs.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
                        let dv = rg.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) * gmV
                        sdv += dv
                        sdxv += dv * (xv - meanV)
                        i += 8
                    }
                    var sd = sdv.sum(), sdx = sdxv.sum()
                    while i < spatial {
                        let dv = gr[i] * gm
                        sd += dv
                        sdx += dv * (src[i] - mean)
                        i += 1
                    }
                    sumD += Double(sd)
                    sumDX += Double(sdx) * Double(rstd)
                }
                let meanD = Float(sumD / Double(blockSize)), meanDX = Float(sumDX / Double(blockSize))
                // dx = rstd·dx̂ − rstd·meanD − (x − mean)·rstd²·meanDX
                let cx = -rstd * rstd * meanDX, c0 = -rstd * meanD
                let rstdV = SIMD8<Float>(repeating: rstd), cxV = SIMD8<Float>(repeating: cx), c0V = SIMD8<Float>(repeating: c0)
                let meanV = SIMD8<Float>(repeating: mean)
                for j in 0..<perGroup {
                    let (a, sh, m, ch) = affine(b, j, mean: mean, rstd: rstd)
                    let gm = (gamma?[ch] ?? 1) * m
                    let src = xp + base + j * spatial, gr = gp + base + j * spatial, d = gxp + base + j * spatial
                    if silu {
                        kernels.affineSiLUBackward(src, gr, d, spatial, a, sh, gm, mean, rstd, cx, c0)
                        continue
                    }
                    let gmV = SIMD8<Float>(repeating: gm)
                    let rs = UnsafeRawPointer(src), rg = UnsafeRawPointer(gr), rd = UnsafeMutableRawPointer(d)
                    var i = 0
                    while i + 8 <= spatial {
                        let xv = rs.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
                        let dv = rg.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) * gmV
                        rd.storeBytes(of: rstdV * dv + cxV * (xv - meanV) + c0V, toByteOffset: i * 4, as: SIMD8<Float>.self)
                        i += 8
                    }
                    while i < spatial {
                        d[i] = rstd * gr[i] * gm + cx * (src[i] - mean) + c0
                        i += 1
                    }
                }
            }
        }
        withExtendedLifetime((x, weight, bias, modulation)) {}
        return [gx]
    }
}

/// Layer normalisation over the last dimension (PyTorch's `nn.LayerNorm(D)`), with
/// per-feature `weight` and `bias` (`[D]`, constants).
public func layerNorm(_ x: Tensor, weight: Tensor? = nil, bias: Tensor? = nil, eps: Float = 1e-5) throws -> Tensor {
    guard x.rank >= 1 else {
        throw TensorError.shapeMismatch(op: "layerNorm", expected: "input [..., D]", got: x.shape)
    }
    let d = x.dim(-1), rows = x.count / max(d, 1)
    for p in [weight, bias].compactMap({ $0 }) where p.shape != [d] {
        throw TensorError.shapeMismatch(op: "layerNorm weight/bias", expected: "[\(d)]", got: p.shape)
    }
    var stats = [Float](repeating: 0, count: 2 * rows)
    let y = Tensor(uninitializedShape: x.shape)
    let xp = x.pointer, yp = y.pointer
    let gamma = weight?.pointer, beta = bias?.pointer
    // Invariant: one row per work item, its sums serial within it.
    stats.withUnsafeMutableBufferPointer { st in
        parallelFor(rows, grain: 16) { r in
            let src = xp + r * d, dst = yp + r * d
            let (mean, rstd) = moments(src, d, eps: eps)
            st[2 * r] = mean
            st[2 * r + 1] = rstd
            for i in 0..<d { dst[i] = (src[i] - mean) * rstd * (gamma?[i] ?? 1) + (beta?[i] ?? 0) }
        }
    }
    // The capture list keeps the weights alive for as long as the closure reads their pointers.
    return Tensor.recorded(y, from: [x]) { [x, weight] g in
        let gx = Tensor(uninitializedShape: x.shape)
        let gp = g.pointer, gxp = gx.pointer
        stats.withUnsafeBufferPointer { st in
            parallelFor(rows, grain: 16) { r in
                let src = xp + r * d, gr = gp + r * d, dst = gxp + r * d
                let mean = st[2 * r], rstd = st[2 * r + 1]
                var sd: Float = 0, sdx: Float = 0
                for i in 0..<d {
                    let dh = gr[i] * (gamma?[i] ?? 1)
                    sd += dh
                    sdx += dh * (src[i] - mean) * rstd
                }
                let meanD = sd / Float(d), meanDX = sdx / Float(d)
                for i in 0..<d {
                    let xhat = (src[i] - mean) * rstd
                    dst[i] = rstd * (gr[i] * (gamma?[i] ?? 1) - meanD - xhat * meanDX)
                }
            }
        }
        withExtendedLifetime((x, weight)) {}
        return [gx]
    }
}
