#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Numerically stable softmax of each row of `count / width` rows, in place: the C kernel of
/// the CPU's widest ISA (e^(x − max) within 2 ulp of expf, see CBlendKernels.h).
@inline(__always)
func softmaxRowsInPlace(_ p: UnsafeMutablePointer<Float>, rows: Int, width: Int) {
    let softmaxRow = kernels.softmaxRow
    parallelFor(rows, grain: 8) { r in softmaxRow(p + r * width, width) }
}

/// The softmax backward for rows of width `width`: dx = y·(g − Σ g·y) (the C kernel of the
/// CPU's widest ISA; `dx` may be `g`).
@inline(__always)
func softmaxRowsBackward(_ y: UnsafeMutablePointer<Float>, _ g: UnsafeMutablePointer<Float>, into dx: UnsafeMutablePointer<Float>,
                         rows: Int, width: Int) {
    let backward = kernels.softmaxBackwardRow
    parallelFor(rows, grain: 8) { r in backward(y + r * width, g + r * width, dx + r * width, width) }
}

extension Tensor {
    /// Softmax over the last dimension.
    public func softmax() -> Tensor {
        let width = Swift.max(dim(-1), 1), rows = count / width
        let y = Tensor(uninitializedShape: shape)
        y.pointer.update(from: pointer, count: count)
        softmaxRowsInPlace(y.pointer, rows: rows, width: width)
        return Tensor.recorded(y, from: [self]) { g in
            let gx = Tensor(uninitializedShape: y.shape)
            softmaxRowsBackward(y.pointer, g.pointer, into: gx.pointer, rows: rows, width: width)
            return [gx]
        }
    }
}

/// Multi-head scaled dot-product attention on pre-split heads.
///
/// `q` is `[B, T, D]`, `k` `[B, S, D]`, `v` `[B, S, Dv]` where B is batch × heads;
/// returns `softmax(q·kᵀ·scale)·v` as `[B, T, Dv]`. `scale` defaults to 1/√D. With
/// `causal`, position t attends only to positions ≤ t (CLIP's text transformer).
/// Differentiable in q, k and v.
public func scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, scale: Float? = nil, causal: Bool = false) throws -> Tensor {
    guard q.rank == 3, k.rank == 3, v.rank == 3,
          q.dim(0) == k.dim(0), k.dim(0) == v.dim(0), q.dim(2) == k.dim(2), k.dim(1) == v.dim(1) else {
        throw TensorError.shapeMismatch(op: "attention",
                                        expected: "q [B, T, D], k [B, S, D], v [B, S, Dv]; got q \(q.shape), k \(k.shape), v",
                                        got: v.shape)
    }
    let b = q.dim(0), t = q.dim(1), s = k.dim(1), d = q.dim(2), dv = v.dim(2)
    if causal && t != s {
        throw TensorError.invalidArgument(op: "attention", message: "a causal mask needs as many queries as keys (\(t) vs \(s))")
    }
    let alpha = scale ?? 1 / Float(d).squareRoot()
    // Attention weights are kept for the backward pass: B·T·S floats. Every product is one
    // (batch × head) item of a batched GEMM: the items are shared out among the threads, and
    // an item's values never depend on the others (GEMMSplit).
    let probs = Tensor(uninitializedShape: [b, t, s])
    let y = Tensor(uninitializedShape: [b, t, dv])
    sgemmBatch(count: b, transB: true, m: t, n: s, k: d, alpha: alpha, a: q.pointer, lda: d, strideA: t * d,
               b: k.pointer, ldb: d, strideB: s * d, c: probs.pointer, ldc: s, strideC: t * s)
    if causal {
        for i in 0..<b {
            let pr = probs.pointer + i * t * s
            for row in 0..<t where row + 1 < s { (pr + row * s + row + 1).initialize(repeating: -.infinity, count: s - row - 1) }
        }
    }
    softmaxRowsInPlace(probs.pointer, rows: b * t, width: s)
    sgemmBatch(count: b, m: t, n: dv, k: s, a: probs.pointer, lda: s, strideA: t * s,
               b: v.pointer, ldb: dv, strideB: s * dv, c: y.pointer, ldc: dv, strideC: t * dv)
    return Tensor.recorded(y, from: [q, k, v]) { g in
        let gq = Tensor(uninitializedShape: q.shape), gk = Tensor(uninitializedShape: k.shape)
        let gv = Tensor(uninitializedShape: v.shape)
        let pr = probs.pointer, gp = g.pointer
        // dV = Pᵀ·dY, dP = dY·Vᵀ, dS = softmax'(dP) (in place), dQ = α·dS·K, dK = α·dSᵀ·Q
        if v.node != nil {
            sgemmBatch(count: b, transA: true, m: s, n: dv, k: t, a: pr, lda: s, strideA: t * s,
                       b: gp, ldb: dv, strideB: t * dv, c: gv.pointer, ldc: dv, strideC: s * dv)
        }
        let ds = TensorStorage(uninitializedCount: b * t * s)
        sgemmBatch(count: b, transB: true, m: t, n: s, k: dv, a: gp, lda: dv, strideA: t * dv,
                   b: v.pointer, ldb: dv, strideB: s * dv, c: ds.pointer, ldc: s, strideC: t * s)
        softmaxRowsBackward(pr, ds.pointer, into: ds.pointer, rows: b * t, width: s)
        if q.node != nil {
            sgemmBatch(count: b, m: t, n: d, k: s, alpha: alpha, a: ds.pointer, lda: s, strideA: t * s,
                       b: k.pointer, ldb: d, strideB: s * d, c: gq.pointer, ldc: d, strideC: t * d)
        }
        if k.node != nil {
            sgemmBatch(count: b, transA: true, m: s, n: d, k: t, alpha: alpha, a: ds.pointer, lda: s, strideA: t * s,
                       b: q.pointer, ldb: d, strideB: t * d, c: gk.pointer, ldc: d, strideC: s * d)
        }
        return [q.node == nil ? nil : gq, k.node == nil ? nil : gk, v.node == nil ? nil : gv]
    }
}
