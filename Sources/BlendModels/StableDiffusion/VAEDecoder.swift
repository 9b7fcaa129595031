import BlendTensor

/// The VAE's decoder (diffusers' `Decoder`; CompVis `Decoder`): `conv_in` from the latent
/// channels, the mid block, one `UpDecoderBlock2D` per level from the deepest (layers + 1
/// ResNets, then a nearest-2× upsampler except at the last level), GroupNorm–SiLU–`conv_out`.
/// `[N, latent, h, w]` → `[N, 3, 8h, 8w]` for SD; differentiable (the input gradients that
/// background reconstruction needs).
public struct VAEDecoder: Sendable {
    let convIn: Conv2dLayer
    let midBlock: VAEMidBlock
    let upBlocks: [(resnets: [ResnetBlock2D], upsampler: Upsample2D?)]
    let convNormOut: GroupNormLayer
    let convOut: Conv2dLayer

    func callAsFunction(_ z: Tensor) throws -> Tensor {
        var h = try midBlock(convIn(z))
        for block in upBlocks {
            for resnet in block.resnets { h = try resnet(h, embSiLU: nil) }
            if let upsampler = block.upsampler { h = try upsampler(h) }
        }
        return try convOut(convNormOut.silu(h))
    }
}
