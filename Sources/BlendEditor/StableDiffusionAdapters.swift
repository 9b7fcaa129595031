import BlendModels
import BlendTensor

/// Stable Diffusion's UNet as the latent editor's ``LatentDenoiser``: every latent of the
/// batch at the same training timestep, as diffusers' pipelines call
/// `UNet2DConditionModel(latents, t, encoder_hidden_states=context)`.
public struct StableDiffusionDenoiser: LatentDenoiser {
    public let unet: UNet2DConditionModel

    public init(unet: UNet2DConditionModel) { self.unet = unet }

    /// ε or v `[N, 4, h, w]` for latents `[N, 4, h, w]` (h, w multiples of 2^(levels−1)) and
    /// context `[N, 77, crossAttentionDim]`. Throws the UNet's `ModelError.badInput` for other shapes.
    public func predict(_ latents: Tensor, timestep: Int, context: Tensor) throws -> Tensor {
        try unet(latents, timesteps: Array(repeating: Float(timestep), count: latents.dim(0)), context: context)
    }
}

/// Stable Diffusion's VAE as the latent editor's ``LatentAutoencoder``: encoding takes the
/// posterior mean times `scaling_factor` (0.18215), decoding divides by it first (diffusers'
/// img2img pipeline; BLD's `text_editing_SD2.py` encodes with `latent_dist.mean` too).
public struct StableDiffusionAutoencoder: LatentAutoencoder {
    public let vae: AutoencoderKL

    public init(vae: AutoencoderKL) { self.vae = vae }

    public var downsamplingFactor: Int { vae.config.downsamplingFactor }

    public func encode(_ images: Tensor) throws -> Tensor {
        vae.scaledLatents(try vae.encode(images).mean)
    }

    public func decode(_ latents: Tensor) throws -> Tensor {
        try vae.decode(vae.unscaledLatents(latents))
    }
}
