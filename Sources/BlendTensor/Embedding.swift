#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Rows of `table` (`[V, D]`, a constant) picked by `indices`: result `[indices.count, D]`.
/// Token ids are discrete, so there is no gradient.
public func embedding(_ indices: [Int], table: Tensor) throws -> Tensor {
    guard table.rank == 2 else {
        throw TensorError.shapeMismatch(op: "embedding", expected: "a table [V, D]", got: table.shape)
    }
    let v = table.dim(0), d = table.dim(1)
    if let bad = indices.first(where: { $0 < 0 || $0 >= v }) {
        throw TensorError.invalidArgument(op: "embedding", message: "index \(bad) is outside the table's \(v) rows")
    }
    let y = Tensor(uninitializedShape: [indices.count, d])
    for (r, i) in indices.enumerated() { (y.pointer + r * d).update(from: table.pointer + i * d, count: d) }
    return y
}

/// Sinusoidal timestep embedding of the diffusion UNet: for each timestep t,
/// `[cos(t·f₀), …, cos(t·f_{h−1}), sin(t·f₀), …, sin(t·f_{h−1})]` with h = dim/2 and
/// fᵢ = maxPeriod^(−i/h); an odd `dim` gets a trailing zero. Result `[timesteps.count, dim]`.
public func timestepEmbedding(_ timesteps: [Float], dim: Int, maxPeriod: Float = 10000) throws -> Tensor {
    guard dim > 0 else { throw TensorError.invalidArgument(op: "timestepEmbedding", message: "dim must be positive, got \(dim)") }
    let half = dim / 2
    let y = Tensor(uninitializedShape: [timesteps.count, dim])
    for (r, t) in timesteps.enumerated() {
        let row = y.pointer + r * dim
        for i in 0..<half {
            // Computed like the reference: the frequency in float32, then the product in float32.
            let freq = expf(-logf(maxPeriod) * Float(i) / Float(half))
            let arg = t * freq
            row[i] = cosf(arg)
            row[half + i] = sinf(arg)
        }
        if dim % 2 == 1 { row[dim - 1] = 0 }
    }
    return y
}
