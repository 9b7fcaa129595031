import BlendTensor

/// guided-diffusion's `AttentionBlock`: self-attention over all spatial positions,
/// GroupNorm → 1×1 qkv projection → multi-head attention → 1×1 output projection,
/// added to the input.
public struct UNetAttentionBlock: Sendable {
    let norm: GroupNormLayer
    let qkv: Conv2dLayer
    let projOut: Conv2dLayer
    let heads: Int
    /// `QKVAttention` (split q/k/v first, then heads) instead of `QKVAttentionLegacy`
    /// (split heads first): they read the qkv channels in different orders.
    let newOrder: Bool

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        let b = x.dim(0), c = x.dim(1)
        let tokens = x.count / (b * c)
        let flat = try x.reshaped([b, c, tokens])
        let qkv = try qkv(norm(flat))                       // [b, 3c, T]
        let ch = c / heads
        let q, k, v: Tensor
        if newOrder {
            let parts = try qkv.chunked(3, axis: 1)
            (q, k, v) = (try parts[0].reshaped([b * heads, ch, tokens]),
                         try parts[1].reshaped([b * heads, ch, tokens]),
                         try parts[2].reshaped([b * heads, ch, tokens]))
        } else {
            let parts = try qkv.reshaped([b * heads, 3 * ch, tokens]).chunked(3, axis: 1)
            (q, k, v) = (parts[0], parts[1], parts[2])
        }
        // The reference scales q and k by ch^(-1/4) each; one 1/sqrt(ch) on the scores is the same product.
        let a = try scaledDotProductAttention(q: q.transposed(1, 2), k: k.transposed(1, 2), v: v.transposed(1, 2),
                                              scale: 1 / Float(ch).squareRoot())
        let h = try projOut(a.transposed(1, 2).reshaped([b, c, tokens]))
        return try (flat + h).reshaped(x.shape)
    }
}
