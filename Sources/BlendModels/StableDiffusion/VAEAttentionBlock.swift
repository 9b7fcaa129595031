import BlendTensor

/// The single-head self-attention of the VAE's mid blocks: diffusers' `Attention` built from
/// the deprecated attention block (GroupNorm eps 1e-6, projections with biases, one head over
/// all channels, residual connection); CompVis `AttnBlock` in ldm/modules/diffusionmodules/model.py.
/// `[N, C, H, W]` → `[N, C, H, W]`; differentiable, with the attention tiled over query rows
/// (a 64×64 latent has 4096 positions).
public struct VAEAttentionBlock: Sendable {
    let groupNorm: GroupNormLayer
    let attention: SDAttention

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        let n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3)
        let tokens = try groupNorm(x).reshaped([n, c, h * w]).transposed(1, 2)
        let out = try attention(tokens)
        return try x + out.transposed(1, 2).reshaped([n, c, h, w])
    }
}

/// diffusers' `UNetMidBlock2D` without a timestep, as the VAE uses it: ResNet → attention
/// (when `mid_block_add_attention`) → ResNet, all at the lowest resolution.
public struct VAEMidBlock: Sendable {
    let resnet1: ResnetBlock2D
    let attention: VAEAttentionBlock?
    let resnet2: ResnetBlock2D

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        var h = try resnet1(x, embSiLU: nil)
        if let attention { h = try attention(h) }
        return try resnet2(h, embSiLU: nil)
    }
}
