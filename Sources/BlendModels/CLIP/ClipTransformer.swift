import BlendTensor

/// The MLP non-linearity of a CLIP transformer.
public enum ClipActivation: String, Codable, Sendable {
    /// `x·sigmoid(1.702x)`: OpenAI CLIP (and so SD 1.x's text encoder), transformers' "quick_gelu".
    case quickGELU = "quick_gelu"
    /// The exact erf GELU: OpenCLIP's ViT-H/14 (SD 2.x's text encoder), transformers' "gelu".
    case gelu

    func callAsFunction(_ x: Tensor) -> Tensor {
        switch self {
        case .quickGELU: return x.quickGELU()
        case .gelu: return x.gelu()
        }
    }
}

/// CLIP's `ResidualAttentionBlock`: pre-LayerNorm multi-head self-attention and an MLP
/// (QuickGELU in OpenAI CLIP, erf GELU in OpenCLIP ViT-H), each added to the residual
/// stream. Sequences are `[N, L, width]`.
public struct ClipResidualBlock: Sendable {
    let ln1: LayerNormLayer
    /// `nn.MultiheadAttention`'s packed projection: rows 0..<w are q, w..<2w k, 2w..<3w v.
    let inProjection: LinearLayer
    let outProjection: LinearLayer
    let ln2: LayerNormLayer
    let fc: LinearLayer
    let proj: LinearLayer
    let heads: Int
    var activation: ClipActivation = .quickGELU

    func callAsFunction(_ x: Tensor, causal: Bool) throws -> Tensor {
        let h = try x + attention(ln1(x), causal: causal)
        return try h + proj(activation(fc(ln2(h))))
    }

    private func attention(_ x: Tensor, causal: Bool) throws -> Tensor {
        let n = x.dim(0), l = x.dim(1), width = x.dim(2), hd = width / heads
        let qkv = try inProjection(x).chunked(3, axis: 2)
        // [N, L, width] -> [N·heads, L, hd]
        func splitHeads(_ t: Tensor) throws -> Tensor {
            try t.reshaped([n, l, heads, hd]).permuted([0, 2, 1, 3]).reshaped([n * heads, l, hd])
        }
        let a = try scaledDotProductAttention(q: splitHeads(qkv[0]), k: splitHeads(qkv[1]), v: splitHeads(qkv[2]),
                                              causal: causal)
        return try outProjection(a.reshaped([n, heads, l, hd]).permuted([0, 2, 1, 3]).reshaped([n, l, width]))
    }
}

/// A stack of residual attention blocks (CLIP's `Transformer`).
public struct ClipTransformer: Sendable {
    let blocks: [ClipResidualBlock]

    func callAsFunction(_ x: Tensor, causal: Bool) throws -> Tensor {
        var h = x
        for block in blocks { h = try block(h, causal: causal) }
        return h
    }
}
