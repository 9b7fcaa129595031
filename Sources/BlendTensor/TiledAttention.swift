/// Multi-head scaled dot-product attention that never holds more than one tile of
/// attention scores: the memory-bounded form for long sequences (Stable Diffusion's
/// self-attention over 64×64 = 4096 latent positions, where the full score matrices of
/// 8 heads × batch 2 would take 1 GiB).
///
/// The heads are packed in the feature axis, as the linear projections produce them:
/// `q` is `[N, T, H·D]`, `k` `[N, S, H·D]`, `v` `[N, S, H·Dv]` with H = `heads`; head h uses
/// features `h·D ..< (h+1)·D`. The result is `softmax(q_h·k_hᵀ·scale)·v_h` for every head,
/// packed the same way: `[N, T, H·Dv]` (diffusers' `Attention` before `to_out`, without its
/// head reshapes). `scale` defaults to 1/√D.
///
/// Work is done in (batch, head, block of query rows) tiles; a tile holds at most
/// `maxScoreElements` scores (whole rows, so the softmax is exact, not the online rescaling of
/// flash attention). The forward pass runs tiles on the engine's threads at once, one score
/// buffer each of at most min(`maxScoreElements`, 2¹⁹) scores (TiledAttentionForward.swift);
/// the backward pass walks them one at a time. Nothing but the inputs is kept for the backward
/// pass: it recomputes each tile's probabilities. Differentiable in q, k and v.
///
/// Throws `TensorError` when the shapes do not fit together or `heads` does not divide the
/// feature sizes.
public func tiledAttention(q: Tensor, k: Tensor, v: Tensor, heads: Int, scale: Float? = nil,
                           maxScoreElements: Int = 1 << 20) throws -> Tensor {
    guard q.rank == 3, k.rank == 3, v.rank == 3, q.dim(0) == k.dim(0), k.dim(0) == v.dim(0),
          q.dim(2) == k.dim(2), k.dim(1) == v.dim(1) else {
        throw TensorError.shapeMismatch(op: "tiledAttention",
                                        expected: "q [N, T, H·D], k [N, S, H·D], v [N, S, H·Dv]; got q \(q.shape), k \(k.shape), v",
                                        got: v.shape)
    }
    guard heads > 0, q.dim(2) % heads == 0, v.dim(2) % heads == 0 else {
        throw TensorError.invalidArgument(op: "tiledAttention",
                                          message: "\(heads) heads do not divide the feature sizes \(q.dim(2)) and \(v.dim(2))")
    }
    guard k.dim(1) > 0 else {
        throw TensorError.invalidArgument(op: "tiledAttention", message: "attention needs at least one key, got k \(k.shape)")
    }
    guard maxScoreElements > 0 else {
        throw TensorError.invalidArgument(op: "tiledAttention", message: "maxScoreElements must be positive, got \(maxScoreElements)")
    }
    let geo = AttentionTiles(batch: q.dim(0), queries: q.dim(1), keys: k.dim(1), heads: heads,
                             headDim: q.dim(2) / heads, valueDim: v.dim(2) / heads, maxScoreElements: maxScoreElements)
    let alpha = scale ?? 1 / Float(geo.headDim).squareRoot()
    let y = Tensor(uninitializedShape: [geo.batch, geo.queries, v.dim(2)])
    if y.count > 0 {
        tiledAttentionForward(q: q, k: k, v: v, into: y, batch: geo.batch, queries: geo.queries, keys: geo.keys,
                              heads: geo.heads, headDim: geo.headDim, valueDim: geo.valueDim, alpha: alpha,
                              maxScoreElements: maxScoreElements)
    }
    return Tensor.recorded(y, from: [q, k, v]) { [q, k, v] g in
        let gq = Tensor(uninitializedShape: q.shape), gk = Tensor(uninitializedShape: k.shape)
        let gv = Tensor(uninitializedShape: v.shape)
        // dK and dV are sums over the query tiles: start from zero.
        gk.pointer.initialize(repeating: 0, count: gk.count)
        gv.pointer.initialize(repeating: 0, count: gv.count)
        let p = TensorStorage(uninitializedCount: max(geo.rowsPerTile * geo.keys, 1))
        let dp = TensorStorage(uninitializedCount: max(geo.rowsPerTile * geo.keys, 1))
        let hd = geo.heads * geo.headDim, hdv = geo.heads * geo.valueDim
        geo.forEachTile { n, h, row0, rows in
            let gRows = g.pointer + geo.queryOffset(n, h, row0, width: geo.valueDim)
            let qRows = q.pointer + geo.queryOffset(n, h, row0, width: geo.headDim)
            let kHead = k.pointer + geo.keyOffset(n, h, width: geo.headDim)
            let vHead = v.pointer + geo.keyOffset(n, h, width: geo.valueDim)
            geo.probabilities(q, k, n: n, h: h, row0: row0, rows: rows, alpha: alpha, into: p.pointer)
            // dV += Pᵀ·dY, dP = dY·Vᵀ, dS = softmax'(dP), dQ = α·dS·K, dK += α·dSᵀ·Q
            sgemm(transA: true, m: geo.keys, n: geo.valueDim, k: rows, a: p.pointer, lda: geo.keys, b: gRows, ldb: hdv,
                  beta: 1, c: gv.pointer + geo.keyOffset(n, h, width: geo.valueDim), ldc: hdv)
            sgemm(transB: true, m: rows, n: geo.keys, k: geo.valueDim, a: gRows, lda: hdv, b: vHead, ldb: hdv,
                  c: dp.pointer, ldc: geo.keys)
            // In place: each element of dP is read before it is overwritten.
            softmaxRowsBackward(p.pointer, dp.pointer, into: dp.pointer, rows: rows, width: geo.keys)
            sgemm(m: rows, n: geo.headDim, k: geo.keys, alpha: alpha, a: dp.pointer, lda: geo.keys, b: kHead, ldb: hd,
                  c: gq.pointer + geo.queryOffset(n, h, row0, width: geo.headDim), ldc: hd)
            sgemm(transA: true, m: geo.keys, n: geo.headDim, k: rows, alpha: alpha, a: dp.pointer, lda: geo.keys,
                  b: qRows, ldb: hd, beta: 1, c: gk.pointer + geo.keyOffset(n, h, width: geo.headDim), ldc: hd)
        }
        return [q.node == nil ? nil : gq, k.node == nil ? nil : gk, v.node == nil ? nil : gv]
    }
}

/// How `tiledAttention` walks its work: batch, head, then blocks of query rows.
private struct AttentionTiles {
    let batch: Int, queries: Int, keys: Int, heads: Int, headDim: Int, valueDim: Int
    /// Query rows per tile: as many whole score rows as fit in the budget, at least one.
    let rowsPerTile: Int

    init(batch: Int, queries: Int, keys: Int, heads: Int, headDim: Int, valueDim: Int, maxScoreElements: Int) {
        self.batch = batch
        self.queries = queries
        self.keys = keys
        self.heads = heads
        self.headDim = headDim
        self.valueDim = valueDim
        rowsPerTile = max(1, min(queries, maxScoreElements / max(keys, 1)))
    }

    /// Invariant: tiles by shape alone, in a fixed order (dK and dV sum over them in that order).
    func forEachTile(_ body: (_ n: Int, _ h: Int, _ row0: Int, _ rows: Int) -> Void) {
        guard queries > 0 else { return }
        for n in 0..<batch {
            for h in 0..<heads {
                var row0 = 0
                while row0 < queries {
                    let rows = min(rowsPerTile, queries - row0)
                    body(n, h, row0, rows)
                    row0 += rows
                }
            }
        }
    }

    /// Element offset of query row `row` of head `h` in a `[N, T, H·width]` tensor.
    func queryOffset(_ n: Int, _ h: Int, _ row: Int, width: Int) -> Int { (n * queries + row) * heads * width + h * width }
    /// Element offset of head `h`'s first key row in a `[N, S, H·width]` tensor.
    func keyOffset(_ n: Int, _ h: Int, width: Int) -> Int { n * keys * heads * width + h * width }

    /// softmax(α·Q·Kᵀ) for `rows` query rows of one head, written as `[rows, keys]` into `out`.
    func probabilities(_ q: Tensor, _ k: Tensor, n: Int, h: Int, row0: Int, rows: Int, alpha: Float,
                       into out: UnsafeMutablePointer<Float>) {
        sgemm(transB: true, m: rows, n: keys, k: headDim, alpha: alpha,
              a: q.pointer + queryOffset(n, h, row0, width: headDim), lda: heads * headDim,
              b: k.pointer + keyOffset(n, h, width: headDim), ldb: heads * headDim, c: out, ldc: keys)
        softmaxRowsInPlace(out, rows: rows, width: keys)
    }
}
