import BlendTensor

/// diffusers' `BasicTransformerBlock` with layer norms (diffusers/models/attention.py), the
/// unit of SD's spatial transformers: pre-norm self-attention, cross-attention to the text
/// context, and a GEGLU feed-forward, each added to its input. LayerNorm eps 1e-5.
/// Tokens `[N, T, C]`, context `[N, S, Dc]`; differentiable in both.
public struct BasicTransformerBlock: Sendable {
    let norm1: LayerNormLayer
    let selfAttention: SDAttention
    let norm2: LayerNormLayer
    let crossAttention: SDAttention
    let norm3: LayerNormLayer
    let feedForward: FeedForwardGEGLU

    func callAsFunction(_ x: Tensor, context: Tensor) throws -> Tensor {
        var h = try x + selfAttention(norm1(x))
        h = try h + crossAttention(norm2(h), context: context)
        return try h + feedForward(norm3(h))
    }
}
