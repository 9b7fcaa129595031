import BlendTensor

/// The denoising network of a latent-diffusion model (Stable Diffusion's UNet) as the latent
/// editor calls it. The seam between the editor and the model: the SD UNet, or in tests an
/// analytic stand-in.
public protocol LatentDenoiser: Sendable {
    /// The model output — ε or v, per the model's prediction type — `[N, C, h, w]` for latents
    /// `[N, C, h, w]` at training `timestep` (0 ..< 1000), cross-attending to the text context
    /// `[N, L, D]` (row i conditions latent i).
    func predict(_ latents: Tensor, timestep: Int, context: Tensor) throws -> Tensor
}

/// The autoencoder between pixels and the latent space the denoiser works in (Stable
/// Diffusion's AutoencoderKL with its scaling factor, 0.18215 for SD 1.x/2.x).
public protocol LatentAutoencoder: Sendable {
    /// Pixels per latent cell along each axis (8 for SD's VAE).
    var downsamplingFactor: Int { get }
    /// Images `[N, 3, H, W]` in [−1, 1] (H, W multiples of the factor) to latents
    /// `[N, C, H/f, W/f]`: the posterior mean times the scaling factor, as BLD and diffusers'
    /// img2img encode the source (`latent_dist.mean`, no sampling).
    func encode(_ images: Tensor) throws -> Tensor
    /// Latents `[N, C, h, w]` (divided by the scaling factor, then decoded) to images
    /// `[N, 3, h·f, w·f]`, about [−1, 1] (not clamped).
    func decode(_ latents: Tensor) throws -> Tensor
}
