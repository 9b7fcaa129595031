import BlendTensor

/// The posterior of the VAE's encoder, a diagonal Gaussian per latent element
/// (diffusers' `DiagonalGaussianDistribution`): `mean` and `logvar`, both `[N, latent, h, w]`,
/// the log-variance clamped to [−30, 20] as the reference does.
public struct DiagonalGaussian: Sendable {
    public let mean: Tensor
    public let logvar: Tensor

    /// exp(logvar / 2).
    public var std: Tensor { (logvar * 0.5).exp() }

    /// `mean + std · noise` for standard normal `noise` shaped like `mean`
    /// (the reference's `latent_dist.sample()` with the noise drawn by the caller).
    public func sample(noise: Tensor) throws -> Tensor {
        guard noise.shape == mean.shape else {
            throw ModelError.badInput("the noise for a VAE latent sample must be \(mean.shape), got \(noise.shape)")
        }
        return try mean + std * noise
    }
}

/// Stable Diffusion's VAE, diffusers' `AutoencoderKL` (Rombach et al. 2022, §3 and appendix G;
/// diffusers/models/autoencoders/autoencoder_kl.py): images in [−1, 1] to an 8× smaller latent
/// Gaussian and latents back to images. The latents the UNet works on are the VAE's times
/// `config.scalingFactor` (0.18215); `encode` and `decode` work on the VAE's own (unscaled)
/// latents, and ``scaledLatents(_:)``/``unscaledLatents(_:)`` convert. Differentiable in its
/// inputs (background reconstruction optimises a latent through `decode`).
///
/// It runs once or twice per edit, so its convolutions do not keep transformed kernels between
/// calls (``WeightTransformPolicy/perCall``): that would hold about 16/9 of its 3×3 weights
/// (≈ 0.5 GB for SD's VAE) for the rest of the edit, to save milliseconds.
///
/// Build it from checkpoint tensors with ``AutoencoderKL/init(config:weights:layout:)``
/// (both key layouts live in AutoencoderKLCheckpoint.swift).
public struct AutoencoderKL: Sendable {
    public let config: AutoencoderKLConfig
    let encoder: VAEEncoder
    let decoder: VAEDecoder
    let quantConv: Conv2dLayer?
    let postQuantConv: Conv2dLayer?

    /// The latent distribution of `images` `[N, inChannels, H, W]` (values in [−1, 1]; H and W
    /// multiples of `config.downsamplingFactor`): mean and clamped log-variance,
    /// `[N, latentChannels, H/8, W/8]` for SD.
    ///
    /// Throws `ModelError.badInput` for other shapes.
    public func encode(_ images: Tensor) throws -> DiagonalGaussian {
        let f = config.downsamplingFactor
        guard images.rank == 4, images.dim(1) == config.inChannels, images.dim(2) % f == 0, images.dim(3) % f == 0,
              images.dim(2) > 0, images.dim(3) > 0 else {
            throw ModelError.badInput("the VAE encodes images [N, \(config.inChannels), H, W] with H and W multiples of \(f), got \(images.shape)")
        }
        var moments = try WeightTransformPolicy.$current.withValue(.perCall) { try encoder(images) }
        if let quantConv { moments = try quantConv(moments) }
        let parts = try moments.chunked(2, axis: 1)
        return DiagonalGaussian(mean: parts[0], logvar: parts[1].clamped(min: -30, max: 20))
    }

    /// Images `[N, outChannels, 8h, 8w]` (nominally in [−1, 1], not clamped) from unscaled
    /// latents `z` `[N, latentChannels, h, w]`.
    ///
    /// Throws `ModelError.badInput` for other shapes.
    public func decode(_ z: Tensor) throws -> Tensor {
        guard z.rank == 4, z.dim(1) == config.latentChannels, z.dim(2) > 0, z.dim(3) > 0 else {
            throw ModelError.badInput("the VAE decodes latents [N, \(config.latentChannels), h, w], got \(z.shape)")
        }
        let latents = try postQuantConv.map { try $0(z) } ?? z
        return try WeightTransformPolicy.$current.withValue(.perCall) { try decoder(latents) }
    }

    /// The UNet's latents from the VAE's: `z · scalingFactor`.
    public func scaledLatents(_ z: Tensor) -> Tensor { z * Float(config.scalingFactor) }
    /// The VAE's latents from the UNet's: `latents / scalingFactor`.
    public func unscaledLatents(_ latents: Tensor) -> Tensor { latents * Float(1 / config.scalingFactor) }
}
