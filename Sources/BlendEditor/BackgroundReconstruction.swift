import BlendTensor

/// Blended Latent Diffusion's optional background reconstruction (Avrahami, Fried &
/// Lischinski 2023, §4.2 "Background reconstruction"; `ldm/image_reconstruction.py` of
/// omriav/blended-latent-diffusion, `--optimization_mode latents`): the VAE cannot reproduce
/// a photo exactly, so after the edit the latent is optimised so that its decoding matches the
/// source outside the mask while staying close to the first decoding inside it.
///
/// The loss of a latent z with decoding D(z) `[1, 3, H, W]` is the reference's
///
///     L(z) = mean((m·(D(z) − edited))²) + preservationRatio · mean(((1 − m)·(D(z) − source))²)
///
/// (means over all 3·H·W elements, `F.mse_loss`), minimised with Adam (PyTorch's defaults:
/// β = (0.9, 0.999), ε = 1e-8) at learning rate 0.1 for `steps` steps, starting from the
/// edit's final latent (the reference re-encodes the decoded edit; starting from the latent it
/// was decoded from begins at that image exactly and saves an encoder pass). Only input
/// gradients are needed: dL/dD(z) is formed here and pulled back through the decoder with
/// ``gradients(of:withRespectTo:seed:retainGraph:)``, so the decoder must be differentiable
/// in its input (``StableDiffusionAutoencoder`` is).
public struct BackgroundReconstruction: Sendable {
    /// Adam steps (the reference's `--optimization_steps`, 75 there); 0 does nothing.
    public var steps: Int
    /// Adam's learning rate on the latent (0.1 in the reference's latent mode).
    public var learningRate: Float = 0.1
    /// Weight of the background term (the reference's `preservation_ratio`, 100).
    public var preservationRatio: Float = 100
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-8

    public init(steps: Int) { self.steps = steps }

    /// The result of a reconstruction.
    public struct Result: Sendable {
        /// The optimised latent `[1, C, h, w]`.
        public var latent: Tensor
        /// Its decoding `[1, 3, H, W]`, about [−1, 1] (not clamped).
        public var image: Tensor
        /// The loss before each step, then after the last one (`steps + 1` values).
        public var losses: [Float]
    }

    /// Throws `EditError.invalidSetting` for a negative step count or a learning rate or
    /// weight that is not a finite positive number.
    public func validate() throws {
        guard steps >= 0, steps <= 10_000 else {
            throw EditError.invalidSetting("background reconstruction steps must be from 0 to 10000, got \(steps)")
        }
        guard learningRate.isFinite, learningRate > 0, preservationRatio.isFinite, preservationRatio >= 0 else {
            throw EditError.invalidSetting("the background reconstruction's learning rate must be > 0 and its preservation ratio >= 0, both finite")
        }
    }

    /// L(z) and dL/dD(z) for a decoding `decoded` (shapes as in ``reconstruct(latent:edited:source:mask:decode:progress:)``).
    func lossAndGradient(decoded: Tensor, edited: Tensor, source: Tensor, mask: Tensor) throws -> (Float, Tensor) {
        let inside = mask, outside = 1 - mask
        let toEdit = try decoded - edited, toSource = try decoded - source
        let a = try inside * toEdit, b = try outside * toSource
        let count = Float(decoded.count)
        let loss = try ((a * a).sum().scalar + preservationRatio * (b * b).sum().scalar) / count
        // d/dD of mean((m·e)²) is 2·m²·e / count, and likewise outside.
        let grad = try (inside * a + outside * b * preservationRatio) * (2 / count)
        return (loss, grad)
    }

    /// Optimises `latent` (`[1, C, h, w]`, the edit's final latent) so that `decode(latent)`
    /// matches `source` (`[1, 3, H, W]` in [−1, 1]) where `mask` (`[1, 1, H, W]` in [0, 1],
    /// 1 = edited) is 0, and `edited` (`[1, 3, H, W]`, the edit's decoding) where it is 1.
    /// `decode` maps latents to images and must be differentiable in its input.
    /// `progress` sees the step number (1-based) and the loss before that step.
    ///
    /// Throws `EditError.badInput` for shapes that do not fit, `EditError.invalidSetting` for
    /// settings ``validate()`` refuses, and whatever `decode` or `progress` throws.
    public func reconstruct(latent: Tensor, edited: Tensor, source: Tensor, mask: Tensor,
                            decode: (Tensor) throws -> Tensor,
                            progress: (_ step: Int, _ loss: Float) throws -> Void = { _, _ in }) throws -> Result {
        try validate()
        guard latent.rank == 4, latent.dim(0) == 1 else {
            throw EditError.badInput("background reconstruction optimises one latent [1, C, h, w], got \(latent.shape)")
        }
        guard edited.rank == 4, edited.dim(0) == 1, edited.dim(1) == 3, source.shape == edited.shape else {
            throw EditError.badInput("background reconstruction needs the edit and the source as [1, 3, H, W] of one size, got \(edited.shape) and \(source.shape)")
        }
        guard mask.shape == [1, 1, edited.dim(2), edited.dim(3)] else {
            throw EditError.badInput("the reconstruction mask must be [1, 1, \(edited.dim(2)), \(edited.dim(3))], got \(mask.shape)")
        }
        var z = latent
        var m = try Tensor.zeros(latent.shape), v = try Tensor.zeros(latent.shape)
        var losses: [Float] = []
        var beta1Power: Float = 1, beta2Power: Float = 1
        for step in 1...max(steps, 1) where steps > 0 {
            let leaf = z.requiringGradient()
            let decoded = try decode(leaf)
            guard decoded.shape == edited.shape else {
                throw EditError.badInput("the decoder returned \(decoded.shape) for the latent \(latent.shape), expected \(edited.shape)")
            }
            let (loss, seed) = try lossAndGradient(decoded: decoded, edited: edited, source: source, mask: mask)
            losses.append(loss)
            try progress(step, loss)
            let g = try gradients(of: decoded, withRespectTo: [leaf], seed: seed)[0]
            // Adam (Kingma & Ba 2015, algorithm 1), as torch.optim.Adam without weight decay.
            m = try m * beta1 + g * (1 - beta1)
            v = try v * beta2 + g * g * (1 - beta2)
            beta1Power *= beta1
            beta2Power *= beta2
            let c1 = 1 - beta1Power, c2 = 1 - beta2Power
            let stepSize = learningRate / c1
            z = try z - (m * stepSize) / ((v / c2).sqrt() + epsilon)
        }
        let image = try decode(z)
        if steps > 0 {
            losses.append(try lossAndGradient(decoded: image, edited: edited, source: source, mask: mask).0)
        }
        return Result(latent: z, image: image, losses: losses)
    }
}
