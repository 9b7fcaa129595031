import BlendTensor

/// diffusers' `ResnetBlock2D` as Stable Diffusion's UNet and VAE use it
/// (diffusers/models/resnet.py, "default" time-embedding norm):
/// `h = conv1(silu(norm1(x)))`, plus `time_emb_proj(silu(temb))` per channel when the block
/// takes a timestep, `h = conv2(silu(norm2(h)))` (dropout is the identity at inference), and the
/// output `shortcut(x) + h`, where the shortcut is a 1×1 convolution when the channel count
/// changes. `x` is `[N, Cin, H, W]`, the result `[N, Cout, H, W]`; differentiable in `x`.
public struct ResnetBlock2D: Sendable {
    let norm1: GroupNormLayer
    let conv1: Conv2dLayer
    /// `time_emb_proj`: absent in the VAE, whose blocks take no timestep.
    let timeEmbeddingProjection: LinearLayer?
    let norm2: GroupNormLayer
    let conv2: Conv2dLayer
    let shortcut: Conv2dLayer?
    /// `output_scale_factor` (1 in SD).
    let outputScale: Float

    /// `embSiLU` is `silu(temb)`, `[N, timeEmbedDim]`, shared by every block of the UNet; nil in the VAE.
    func callAsFunction(_ x: Tensor, embSiLU: Tensor?) throws -> Tensor {
        var h = try conv1(norm1.silu(x))
        if let timeEmbeddingProjection {
            guard let embSiLU else { throw ModelError.badInput("this ResNet block needs a timestep embedding") }
            let t = try timeEmbeddingProjection(embSiLU)
            h = try h + t.reshaped([t.dim(0), t.dim(1), 1, 1])
        }
        h = try conv2(norm2.silu(h))
        let sum = try (shortcut.map { try $0(x) } ?? x) + h
        return outputScale == 1 ? sum : sum / outputScale
    }
}
