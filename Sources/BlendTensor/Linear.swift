extension Tensor {
    /// Matrix product over the last two dimensions: `[..., M, K] × [..., K, N] -> [..., M, N]`.
    /// Leading (batch) dimensions must be equal, or `other` may be a plain `[K, N]` matrix.
    /// Differentiable in both operands.
    ///
    /// Each matrix of the batch is its own product, also against a shared `[K, N]`, so one
    /// item's result never depends on the others (``GEMMSplit``). A rank-2 `self` is one
    /// product: rows that are separate samples should be given as `[N, 1, K]`.
    public func matmul(_ other: Tensor) throws -> Tensor {
        guard rank >= 2, other.rank >= 2 else {
            throw TensorError.shapeMismatch(op: "matmul", expected: "operands of rank >= 2", got: rank < 2 ? shape : other.shape)
        }
        let m = dim(-2), k = dim(-1), n = other.dim(-1)
        let batchA = Array(shape.dropLast(2)), batchB = Array(other.shape.dropLast(2))
        guard other.dim(-2) == k, batchB.isEmpty || batchB == batchA else {
            throw TensorError.shapeMismatch(op: "matmul", expected: "[..., \(k), N] matching \(shape)", got: other.shape)
        }
        let batch = batchA.reduce(1, *)
        let sharedB = batchB.isEmpty
        let y = Tensor(uninitializedShape: batchA + [m, n])
        let a = self, b = other
        sgemmBatch(count: batch, m: m, n: n, k: k, a: a.pointer, lda: k, strideA: m * k,
                   b: b.pointer, ldb: n, strideB: sharedB ? 0 : k * n, c: y.pointer, ldc: n, strideC: m * n)
        return Tensor.recorded(y, from: [a, b]) { g in
            var ga: Tensor?, gb: Tensor?
            if a.node != nil {
                // dA = dY · Bᵀ, item by item
                let t = Tensor(uninitializedShape: a.shape)
                sgemmBatch(count: batch, transB: true, m: m, n: k, k: n, a: g.pointer, lda: n, strideA: m * n,
                           b: b.pointer, ldb: n, strideB: sharedB ? 0 : k * n, c: t.pointer, ldc: k, strideC: m * k)
                ga = t
            }
            if b.node != nil {
                // dB = Aᵀ · dY (summed over the batch when B is shared: one product over all rows)
                let t = Tensor(uninitializedShape: b.shape)
                if sharedB {
                    sgemm(transA: true, m: k, n: n, k: batch * m, a: a.pointer, lda: k, b: g.pointer, ldb: n,
                          c: t.pointer, ldc: n)
                } else {
                    sgemmBatch(count: batch, transA: true, m: k, n: n, k: m, a: a.pointer, lda: k, strideA: m * k,
                               b: g.pointer, ldb: n, strideB: m * n, c: t.pointer, ldc: n, strideC: k * n)
                }
                gb = t
            }
            return [ga, gb]
        }
    }
}

/// A fully connected layer over the last dimension, PyTorch's `nn.Linear`:
/// `x [N, ..., in]`, `weight [out, in]`, `bias [out]` → `[N, ..., out]`.
/// The weight and bias are constants; the gradient flows to `x`.
///
/// The first axis is the batch: each of its N items (`x[i]`, all its rows) is multiplied on
/// its own, so an item's result never depends on the others in the batch (``GEMMSplit``); a
/// rank-1 `x` is one item.
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) throws -> Tensor {
    guard weight.rank == 2, x.rank >= 1, x.dim(-1) == weight.dim(1) else {
        throw TensorError.shapeMismatch(op: "linear", expected: "input [..., \(weight.rank == 2 ? weight.dim(1) : -1)] for weight \(weight.shape)", got: x.shape)
    }
    let outF = weight.dim(0), inF = weight.dim(1)
    if let bias, bias.shape != [outF] {
        throw TensorError.shapeMismatch(op: "linear bias", expected: "[\(outF)]", got: bias.shape)
    }
    let rows = x.count / max(inF, 1)
    let items = x.rank >= 2 ? x.dim(0) : 1
    let rowsPerItem = items == 0 ? 0 : rows / items
    let y = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [outF])
    if let bias {
        for r in 0..<rows { (y.pointer + r * outF).update(from: bias.pointer, count: outF) }
    }
    sgemmBatch(count: items, transB: true, m: rowsPerItem, n: outF, k: inF,
               a: x.pointer, lda: inF, strideA: rowsPerItem * inF, b: weight.pointer, ldb: inF, strideB: 0,
               beta: bias == nil ? 0 : 1, c: y.pointer, ldc: outF, strideC: rowsPerItem * outF)
    return Tensor.recorded(y, from: [x]) { g in
        let gx = Tensor(uninitializedShape: x.shape)
        sgemmBatch(count: items, m: rowsPerItem, n: inF, k: outF, a: g.pointer, lda: outF, strideA: rowsPerItem * outF,
                   b: weight.pointer, ldb: inF, strideB: 0, c: gx.pointer, ldc: inF, strideC: rowsPerItem * inF)
        return [gx]
    }
}
