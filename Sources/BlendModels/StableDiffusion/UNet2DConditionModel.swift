#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import BlendTensor

/// Stable Diffusion's denoising UNet, diffusers' `UNet2DConditionModel` as SD 1.x and 2.x
/// configure it (Rombach et al. 2022, "High-Resolution Image Synthesis with Latent Diffusion
/// Models", appendix E; diffusers/models/unets/unet_2d_condition.py): a sinusoidal timestep
/// embedding through a 2-layer MLP, `conv_in`, the down blocks, the mid block, the up blocks
/// with skip connections, then GroupNorm–SiLU–`conv_out`. Inference; differentiable in the
/// latent and the context.
///
/// Build it from checkpoint tensors with ``UNet2DConditionModel/init(config:weights:layout:)``
/// (both key layouts live in UNet2DConditionCheckpoint.swift).
public struct UNet2DConditionModel: Sendable {
    public let config: UNet2DConditionConfig
    let timeEmbedding: (LinearLayer, LinearLayer)
    let convIn: Conv2dLayer
    let downBlocks: [UNetDownBlock]
    let midBlock: UNetMidBlock?
    let upBlocks: [UNetUpBlock]
    let convNormOut: GroupNormLayer
    let convOut: Conv2dLayer

    /// The model output (ε for ε-prediction checkpoints, v for v-prediction ones) for latents
    /// `sample` `[N, inChannels, H, W]` (H and W multiples of 2^(levels−1): 8 for SD) at
    /// `timesteps` (one per latent, in the 0..<1000 training range, fractional allowed), given
    /// the text encoder's hidden states `context` `[N, S, crossAttentionDim]` (S = 77 for SD).
    /// Returns `[N, outChannels, H, W]`.
    ///
    /// Throws `ModelError.badInput` for shapes that do not fit the config.
    public func callAsFunction(_ sample: Tensor, timesteps: [Float], context: Tensor) throws -> Tensor {
        guard sample.rank == 4, sample.dim(1) == config.inChannels else {
            throw ModelError.badInput("the SD UNet takes latents [N, \(config.inChannels), H, W], got \(sample.shape)")
        }
        let factor = 1 << (config.levels - 1)
        guard sample.dim(2) % factor == 0, sample.dim(3) % factor == 0, sample.dim(2) > 0, sample.dim(3) > 0 else {
            throw ModelError.badInput("the SD UNet needs latent height and width that are multiples of \(factor) "
                                          + "(images multiples of \(factor * 8)), got \(sample.shape)")
        }
        guard timesteps.count == sample.dim(0) else {
            throw ModelError.badInput("the SD UNet needs one timestep per latent: \(timesteps.count) for batch \(sample.dim(0))")
        }
        guard context.rank == 3, context.dim(0) == sample.dim(0), context.dim(2) == config.contextDim(downBlock: 0) else {
            throw ModelError.badInput("the SD UNet's context must be [\(sample.dim(0)), S, \(config.contextDim(downBlock: 0))] "
                                          + "text-encoder hidden states, got \(context.shape)")
        }
        let x = config.centerInputSample ? sample * 2 - 1 : sample
        let emb = try timeEmbedding.1(timeEmbedding.0(sinusoidalEmbedding(timesteps)).silu())
        let embSiLU = emb.silu()

        var h = try convIn(x)
        var skips = [h]
        for block in downBlocks {
            let (out, kept) = try block(h, embSiLU: embSiLU, context: context)
            h = out
            skips.append(contentsOf: kept)
        }
        if let midBlock { h = try midBlock(h, embSiLU: embSiLU, context: context) }
        for block in upBlocks { h = try block(h, skips: &skips, embSiLU: embSiLU, context: context) }
        return try convOut(convNormOut.silu(h))
    }

    /// diffusers' `get_timestep_embedding`: for half = C/2 frequencies
    /// fᵢ = exp(−ln(10000)·i / (half − freq_shift)), `[sin(t·f), cos(t·f)]`, swapped to cos first
    /// with `flip_sin_to_cos`. Computed in float32 in the reference's order. `[N, C]`, C = block_out_channels[0].
    func sinusoidalEmbedding(_ timesteps: [Float]) throws -> Tensor {
        let dim = config.blockOutChannels[0], half = dim / 2
        let logPeriod = Float(-9.210340371976184)     // −ln(10000)
        let freqs = (0..<half).map { i in expf(logPeriod * Float(i) / Float(half - config.freqShift)) }
        return try Tensor(shape: [timesteps.count, dim]) { buffer in
            for (r, t) in timesteps.enumerated() {
                let row = buffer.baseAddress! + r * dim
                for i in 0..<half {
                    let arg = t * freqs[i]
                    let (first, second) = config.flipSinToCos ? (cosf(arg), sinf(arg)) : (sinf(arg), cosf(arg))
                    row[i] = first
                    row[half + i] = second
                }
                if dim % 2 == 1 { row[dim - 1] = 0 }
            }
        }
    }
}
