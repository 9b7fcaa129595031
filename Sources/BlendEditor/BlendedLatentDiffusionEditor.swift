import BlendDiffusion
import BlendTensor

/// The Gaussian noise a latent edit draws: for each sample, the noise of its first latent and
/// the noise the source is blended with after each step. Sample i's noise depends only on the
/// seed and i (not on the batch size), so one edit of a seed reproduces any single sample.
public struct LatentNoise: Sendable {
    public enum Purpose: Equatable, Sendable {
        /// The noise the first latent is made from (added to the source, or pure noise).
        case initial
        /// The noise of the source blended in after step `index` of the solver.
        case background(step: Int)
    }

    private let make: @Sendable (Purpose, Int, [Int]) throws -> Tensor

    /// Noise from `make(purpose, sample, shape)`, which must return a tensor of `shape`
    /// (`[1, C, h, w]`): for injecting recorded noise.
    public init(_ make: @escaping @Sendable (_ purpose: Purpose, _ sample: Int, _ shape: [Int]) throws -> Tensor) {
        self.make = make
    }

    /// Seeded ``NoiseSource`` streams: one per sample and purpose (stream 3 for the initial
    /// latent, stream 4 with the step index for blending; the pixel method uses 1 and 2).
    public static func seeded(_ seed: UInt64) -> LatentNoise {
        LatentNoise { purpose, sample, shape in
            var source: NoiseSource
            switch purpose {
            case .initial: source = NoiseSource(seed: seed, stream: 3, iteration: sample, timestep: 0)
            case let .background(step): source = NoiseSource(seed: seed, stream: 4, iteration: sample, timestep: step)
            }
            return try source.gaussian(shape)
        }
    }

    func callAsFunction(_ purpose: Purpose, samples: [Int], shape: [Int]) throws -> Tensor {
        let parts = try samples.map { i -> Tensor in
            let t = try make(purpose, i, shape)
            guard t.shape == shape else {
                throw EditError.badInput("injected noise for sample \(i) has shape \(t.shape), expected \(shape)")
            }
            return t
        }
        return try Tensor.concatenate(parts, axis: 0)
    }
}

/// A step of a sample's background reconstruction (``BackgroundReconstruction``), for
/// progress display: it runs after the sample's last solver step, and can be long.
public struct ReconstructionProgress: Sendable, Equatable {
    /// The sample's number.
    public var sample: Int
    /// The Adam step about to be taken (1-based) and the steps in all.
    public var step: Int
    public var steps: Int
    /// The reconstruction loss before this step.
    public var loss: Float

    public init(sample: Int, step: Int, steps: Int, loss: Float) {
        self.sample = sample
        self.step = step
        self.steps = steps
        self.loss = loss
    }
}

/// Blended Latent Diffusion (Avrahami, Fried & Lischinski, SIGGRAPH 2023 / TOG 42(4)): local
/// text-driven edits in the latent space of a latent-diffusion model, without gradients.
///
/// The source image is encoded to the latent z0, the mask is brought to the latent grid
/// (nearest, ≥ 0.5). The first latent is z0 noised to the first step's timestep (or pure
/// noise, `.noise`). After each solver step, guided by classifier-free guidance, the latent is
/// kept inside the mask and replaced outside it by z0 noised to the level the step reached
/// (`.same`; `.next` reproduces the official script's one-level-too-high blending). The last
/// latent is decoded, and optionally optimised so that its decoding keeps the source's
/// background (``BackgroundReconstruction``, `settings.backgroundReconstructionSteps`;
/// the autoencoder's `decode` must then be differentiable in its input). Facts from omriav/blended-latent-diffusion (`scripts/text_editing_SD2.py`,
/// `ldm/models/diffusion/ddim.py` for progressive mask shrinking) and diffusers' img2img pipeline.
public struct BlendedLatentDiffusionEditor: Sendable {
    public let denoiser: any LatentDenoiser
    public let autoencoder: any LatentAutoencoder
    public let solver: any DiffusionSolver
    public let settings: LatentEditSettings
    /// The solver step blending starts at.
    public let startIndex: Int

    /// Throws `EditError.invalidSetting` for unusable settings (a strength that leaves no step).
    public init(denoiser: any LatentDenoiser, autoencoder: any LatentAutoencoder, solver: any DiffusionSolver,
                settings: LatentEditSettings) throws {
        try settings.validate()
        self.denoiser = denoiser
        self.autoencoder = autoencoder
        self.solver = solver
        self.settings = settings
        switch settings.start {
        case let .strength(s):
            do {
                startIndex = try solver.startIndex(strength: s)
            } catch let error as DiffusionError {
                throw EditError.invalidSetting(SettingMessage(error.description))
            }
        case let .skipFraction(p):
            startIndex = Int(Double(solver.stepCount) * p)
        }
        guard startIndex < solver.stepCount else {
            throw EditError.invalidSetting("no step is left to run after skipping \(startIndex) of \(solver.stepCount)")
        }
    }

    /// Edits `image` (`[1, 3, H, W]` in [−1, 1], H and W multiples of the autoencoder's factor)
    /// where `mask` (`[1, 1, H, W]` in [0, 1], 1 = edit) is set, towards the text `context`
    /// (`[1, L, D]`, the prompt's hidden states) against `unconditionalContext` (`[1, L, D]`,
    /// the empty or negative prompt's). Returns the samples in order (ranking is the caller's).
    /// `noise` defaults to seeded streams of `settings.seed`.
    ///
    /// Makes the samples numbered `sampleIndices` (default: all of `0..<settings.samples`),
    /// `batchSize` at a time through the shared ``SampleLoop``; sample i's noise depends only on the seed and i, so a resumed edit
    /// that makes only the missing indices gives what an uninterrupted one would have.
    /// `progress` is called after every step, `reconstruction` before every step of a
    /// background reconstruction, `finished` with each sample as soon as its batch is decoded
    /// (and reconstructed); a throw from any of them stops the edit there and is rethrown.
    public func edit(image: Tensor, mask: Tensor, context: Tensor, unconditionalContext: Tensor,
                     noise: LatentNoise? = nil, sampleIndices: [Int]? = nil,
                     progress: (EditProgress) throws -> Void = { _ in },
                     reconstruction: (ReconstructionProgress) throws -> Void = { _ in },
                     finished: (EditedSample) throws -> Void = { _ in }) throws -> [EditedSample] {
        let f = autoencoder.downsamplingFactor
        guard image.rank == 4, image.dim(0) == 1, image.dim(1) == 3, f >= 1,
              image.dim(2) % f == 0, image.dim(3) % f == 0, image.dim(2) > 0, image.dim(3) > 0 else {
            throw EditError.badInput("the image must be [1, 3, H, W] with H and W multiples of \(f), got \(image.shape)")
        }
        guard mask.shape == [1, 1, image.dim(2), image.dim(3)] else {
            throw EditError.badInput("the mask must be [1, 1, \(image.dim(2)), \(image.dim(3))] like the image, got \(mask.shape)")
        }
        guard context.rank == 3, context.dim(0) == 1, unconditionalContext.shape == context.shape else {
            throw EditError.badInput("the text contexts must both be [1, L, D], got \(context.shape) and \(unconditionalContext.shape)")
        }
        let noise = noise ?? .seeded(settings.seed)
        let source = try autoencoder.encode(image)
        let h = image.dim(2) / f, w = image.dim(3) / f
        guard source.rank == 4, source.dim(0) == 1, source.dim(2) == h, source.dim(3) == w else {
            throw EditError.badInput("the autoencoder returned a latent of shape \(source.shape), expected [1, C, \(h), \(w)]")
        }
        let preview = try LatentPreview.fit(latent: source, image: image, factor: f)
        let latentMask = try LatentMasks.downsample(mask, height: h, width: w)
        guard try latentMask.sum().scalar > 0 else {
            throw EditError.badInput("the mask selects nothing to edit on the \(h) × \(w) latent grid: mark a larger region to change in white")
        }
        let sampler = Sampler(editor: self, image: image, mask: mask, source: source, context: context,
                              unconditionalContext: unconditionalContext, noise: noise, preview: preview,
                              masks: try LatentMasks.progressive(latentMask, dilations: settings.maskDilations))
        return try SampleLoop.run(sampler, indices: sampleIndices ?? Array(0..<settings.samples), batchSize: settings.batchSize,
                                  progress: progress, reconstruction: reconstruction, finished: finished)
    }

    /// The latent method's step for ``SampleLoop``: z0 noised to the start (or noise), then
    /// classifier-free-guided solver steps, each followed by the blend with z0 noised to the
    /// step's level under the (progressively shrinking) latent mask; the last latent decoded
    /// and, if asked, reconstructed.
    struct Sampler: BatchSampler {
        struct Batch {
            var indices: [Int]
            let sourceBatch: Tensor
            let conditional: Tensor
            /// `[unconditional ×B, conditional ×B]`, for one guided forward pass.
            let guidedContext: Tensor
            var x: Tensor
            /// The solver's own copy: multistep solvers keep the history of this batch.
            var solver: any DiffusionSolver
        }

        let editor: BlendedLatentDiffusionEditor
        let image: Tensor
        let mask: Tensor
        let source: Tensor
        let context: Tensor
        let unconditionalContext: Tensor
        let noise: LatentNoise
        let preview: LatentPreview
        let masks: [Tensor]
        var settings: LatentEditSettings { editor.settings }
        var steps: Int { editor.solver.stepCount - editor.startIndex }

        func begin(samples indices: [Int]) throws -> Batch {
            let b = indices.count
            let sourceBatch = try Tensor.concatenate(Array(repeating: source, count: b), axis: 0)
            let conditional = try Tensor.concatenate(Array(repeating: context, count: b), axis: 0)
            let guidedContext = try Tensor.concatenate(Array(repeating: unconditionalContext, count: b) + [conditional], axis: 0)
            let start = try noise(.initial, samples: indices, shape: source.shape)
            let x = settings.initialLatent == .noise
                ? start
                : try NoiseSchedule.addNoise(sourceBatch, noise: start, alphaBar: editor.solver.inputAlphaBar(at: editor.startIndex))
            return Batch(indices: indices, sourceBatch: sourceBatch, conditional: conditional, guidedContext: guidedContext,
                         x: x, solver: editor.solver)
        }

        func step(_ batch: inout Batch, step: Int) throws -> SamplerStep {
            let index = editor.startIndex + step
            let t = batch.solver.timesteps[index]
            let x = batch.x
            let output: Tensor
            if settings.guidanceScale > 1 {
                let both = try editor.denoiser.predict(Tensor.concatenate([x, x], axis: 0), timestep: t, context: batch.guidedContext)
                let parts = try both.chunked(2, axis: 0)
                output = try classifierFreeGuidance(unconditional: parts[0], conditional: parts[1], scale: settings.guidanceScale)
            } else {
                output = try editor.denoiser.predict(x, timestep: t, context: batch.conditional)
            }
            let predicted = try batch.solver.predictedOriginal(modelOutput: output, index: index, sample: x)
            var next = try batch.solver.step(modelOutput: output, index: index, sample: x)
            let level = settings.blendLevel == .same ? try batch.solver.outputAlphaBar(at: index) : try batch.solver.inputAlphaBar(at: index)
            let background = try NoiseSchedule.addNoise(
                batch.sourceBatch, noise: noise(.background(step: index), samples: batch.indices, shape: source.shape), alphaBar: level)
            let m = masks[LatentMasks.progressiveIndex(step: step, steps: steps, count: masks.count)]
            next = try blendBackground(sample: next, background: background, mask: m)
            batch.x = next
            return SamplerStep(timestep: t, sample: next, prediction: predicted, preview: preview)
        }

        func finish(_ batch: Batch, position k: Int, reconstruction: (ReconstructionProgress) throws -> Void) throws -> EditedSample {
            let i = batch.indices[k]
            let latent = try batch.x.sliced(k..<k + 1, axis: 0)
            // The decode is the edit's peak: its freed activations (32–256 MiB, many sizes)
            // would fill the engine's 1 GiB block cache on top of the UNet's weights. Held to
            // 256 MiB it runs as fast and the whole edit peaks 0.4 GiB lower (BENCHMARKS.md).
            let decoded = try TensorMemory.withCacheCeiling(256 << 20) { try editor.autoencoder.decode(latent) }
            var sample = EditedSample(index: i, image: decoded, latent: latent)
            if settings.backgroundReconstructionSteps > 0 {
                let steps = settings.backgroundReconstructionSteps
                let result = try BackgroundReconstruction(steps: steps)
                    .reconstruct(latent: latent, edited: decoded, source: image, mask: mask,
                                 decode: editor.autoencoder.decode) { step, loss in
                        try reconstruction(ReconstructionProgress(sample: i, step: step, steps: steps, loss: loss))
                    }
                sample.latent = result.latent
                sample.image = result.image
                sample.reconstructionLosses = result.losses
            }
            return sample
        }
    }
}
