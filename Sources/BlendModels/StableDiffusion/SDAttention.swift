import BlendTensor

/// diffusers' `Attention` (scaled dot-product, AttnProcessor2_0) on token sequences:
/// `to_out.0(attention(to_q(x), to_k(c), to_v(c)))` with `c` the context for cross-attention
/// or `x` itself for self-attention, heads packed in the feature axis and scale 1/√(head dim).
/// The UNet's projections have no bias except `to_out.0`; the VAE's all have one.
/// Runs on ``tiledAttention(q:k:v:heads:scale:maxScoreElements:)``, so 4096 tokens never
/// hold every head's score matrix at once. `x` is `[N, T, C]`, the context `[N, S, Dc]`, the
/// result `[N, T, C]`; differentiable in both.
public struct SDAttention: Sendable {
    let toQ: LinearLayer
    let toK: LinearLayer
    let toV: LinearLayer
    let toOut: LinearLayer
    let heads: Int

    func callAsFunction(_ x: Tensor, context: Tensor? = nil) throws -> Tensor {
        let c = context ?? x
        guard c.rank == 3, c.dim(0) == x.dim(0) else {
            throw ModelError.badInput("the attention context must be [\(x.dim(0)), S, D] for tokens \(x.shape), got \(c.shape)")
        }
        let a = try tiledAttention(q: toQ(x), k: toK(c), v: toV(c), heads: heads)
        return try toOut(a)
    }
}
