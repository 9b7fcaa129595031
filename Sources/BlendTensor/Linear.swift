extension Tensor {
    /// Matrix product over the last two dimensions: `[..., M, K] × [..., K, N] -> [..., M, N]`.
    /// Leading (batch) dimensions must be equal, or `other` may be a plain `[K, N]` matrix.
    /// Differentiable in both operands.
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
        if sharedB {
            sgemm(m: batch * m, n: n, k: k, a: a.pointer, lda: k, b: b.pointer, ldb: n, c: y.pointer, ldc: n)
        } else {
            for i in 0..<batch {
                sgemm(m: m, n: n, k: k, a: a.pointer + i * m * k, lda: k, b: b.pointer + i * k * n, ldb: n,
                      c: y.pointer + i * m * n, ldc: n)
            }
        }
        return Tensor.recorded(y, from: [a, b]) { g in
            var ga: Tensor?, gb: Tensor?
            if a.node != nil {
                // dA = dY · Bᵀ
                let t = Tensor(uninitializedShape: a.shape)
                for i in 0..<(sharedB ? 1 : batch) {
                    sgemm(transB: true, m: sharedB ? batch * m : m, n: k, k: n,
                          a: g.pointer + i * m * n, lda: n, b: b.pointer + (sharedB ? 0 : i * k * n), ldb: n,
                          c: t.pointer + i * m * k, ldc: k)
                }
                ga = t
            }
            if b.node != nil {
                // dB = Aᵀ · dY (summed over the batch when B is shared)
                let t = Tensor(uninitializedShape: b.shape)
                if sharedB {
                    sgemm(transA: true, m: k, n: n, k: batch * m, a: a.pointer, lda: k, b: g.pointer, ldb: n,
                          c: t.pointer, ldc: n)
                } else {
                    for i in 0..<batch {
                        sgemm(transA: true, m: k, n: n, k: m, a: a.pointer + i * m * k, lda: k,
                              b: g.pointer + i * m * n, ldb: n, c: t.pointer + i * k * n, ldc: n)
                    }
                }
                gb = t
            }
            return [ga, gb]
        }
    }
}

/// A fully connected layer over the last dimension, PyTorch's `nn.Linear`:
/// `x [..., in]`, `weight [out, in]`, `bias [out]` → `[..., out]`.
/// The weight and bias are constants; the gradient flows to `x`.
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) throws -> Tensor {
    guard weight.rank == 2, x.rank >= 1, x.dim(-1) == weight.dim(1) else {
        throw TensorError.shapeMismatch(op: "linear", expected: "input [..., \(weight.rank == 2 ? weight.dim(1) : -1)] for weight \(weight.shape)", got: x.shape)
    }
    let outF = weight.dim(0), inF = weight.dim(1)
    if let bias, bias.shape != [outF] {
        throw TensorError.shapeMismatch(op: "linear bias", expected: "[\(outF)]", got: bias.shape)
    }
    let rows = x.count / max(inF, 1)
    let y = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [outF])
    if let bias {
        for r in 0..<rows { (y.pointer + r * outF).update(from: bias.pointer, count: outF) }
    }
    sgemm(transB: true, m: rows, n: outF, k: inF, a: x.pointer, lda: inF, b: weight.pointer, ldb: inF,
          beta: bias == nil ? 0 : 1, c: y.pointer, ldc: outF)
    return Tensor.recorded(y, from: [x]) { g in
        let gx = Tensor(uninitializedShape: x.shape)
        sgemm(m: rows, n: inF, k: outF, a: g.pointer, lda: outF, b: weight.pointer, ldb: inF, c: gx.pointer, ldc: inF)
        return [gx]
    }
}
