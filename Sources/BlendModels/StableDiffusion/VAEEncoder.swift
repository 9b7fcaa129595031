import BlendTensor

/// The VAE's encoder (diffusers' `Encoder`; CompVis `Encoder`): `conv_in`, one
/// `DownEncoderBlock2D` per level (ResNets, then a stride-2 downsampler padded right and
/// bottom, except at the last level), the mid block, GroupNorm–SiLU–`conv_out` to
/// 2 × latent channels (mean and log-variance). `[N, 3, H, W]` → `[N, 2·latent, H/8, W/8]`
/// for SD; differentiable.
public struct VAEEncoder: Sendable {
    let convIn: Conv2dLayer
    let downBlocks: [(resnets: [ResnetBlock2D], downsampler: Downsample2D?)]
    let midBlock: VAEMidBlock
    let convNormOut: GroupNormLayer
    let convOut: Conv2dLayer

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        var h = try convIn(x)
        for block in downBlocks {
            for resnet in block.resnets { h = try resnet(h, embSiLU: nil) }
            if let downsampler = block.downsampler { h = try downsampler(h) }
        }
        h = try midBlock(h)
        return try convOut(convNormOut.silu(h))
    }
}
