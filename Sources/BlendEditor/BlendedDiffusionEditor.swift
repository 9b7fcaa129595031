import BlendDiffusion
import BlendModels
import BlendTensor

/// The networks an edit needs. LPIPS only for the local-CLIP baseline.
public struct EditorModels: Sendable {
    public var unet: UNetModel
    public var clip: ClipModel
    public var lpips: LPIPSModel?

    public init(unet: UNetModel, clip: ClipModel, lpips: LPIPSModel? = nil) {
        self.unet = unet
        self.clip = clip
        self.lpips = lpips
    }
}

/// Blended Diffusion (Avrahami, Lischinski & Fried, CVPR 2022), and its local-CLIP
/// baseline, over a guided-diffusion UNet and CLIP.
///
/// Follows the reference (omriav/blended-diffusion `optimization/image_editor.py`) step
/// by step, with one change that does not alter the result: the reference evaluates the
/// UNet twice per step (for the sample, and again inside the guidance); here one
/// recorded forward pass serves both, and the guidance is computed one sample at a time
/// (each sample's loss depends only on that sample) so memory stays bounded.
public struct BlendedDiffusionEditor: Sendable {
    public let models: EditorModels
    public let settings: EditSettings
    public let diffusion: GaussianDiffusion

    public init(models: EditorModels, settings: EditSettings) throws {
        self.models = models
        self.settings = settings
        guard settings.method != .latent else {
            throw EditError.invalidSetting("the latent method runs in BlendedLatentDiffusionEditor, not on a guided-diffusion UNet")
        }
        try settings.validate()
        diffusion = try GaussianDiffusion.spaced(schedule: .linear, steps: 1000, respacing: settings.pixel.timestepRespacing)
        if settings.usesLPIPS && models.lpips == nil {
            throw EditError.invalidSetting("the local-CLIP baseline needs the LPIPS model (or an LPIPS lambda of 0)")
        }
    }

    /// CLIP text embedding `[1, D]` of the prompt's tokens (as the tokenizer returns them).
    public func promptEmbedding(tokens: [Int]) throws -> Tensor {
        try models.clip.text([tokens])
    }

    /// Edits `image` (`[1, 3, S, S]` in [-1, 1], S the UNet's size) where `mask`
    /// (`[1, 1, S, S]`, 1 = edit) is set, steered towards `promptEmbedding`.
    ///
    /// Makes the samples numbered `sampleIndices` (default: all of `0..<settings.samples`),
    /// `batchSize` at a time through the shared ``SampleLoop``, and returns them ranked by
    /// CLIP distance (best first).
    /// `finished` is called with each sample as soon as its batch is done, so a caller can
    /// save it at once; a throw from `progress` or `finished` stops the edit there.
    ///
    /// Sample i draws all its randomness (start noise, step noise, augmentations, class
    /// labels, and the noise of the background it is blended with) from streams that depend
    /// only on the seed and i (``NoiseSource/sample(seed:index:)``,
    /// ``NoiseSource/background(seed:sample:timestep:)``). So the same seed gives the same
    /// sample i whatever the batch size, and a resumed edit that makes only the missing
    /// indices gives what an uninterrupted one would have. (The reference draws one stream
    /// for the whole run and shares the background noise within a batch; the distribution of
    /// every sample is the same.)
    ///
    /// - Throws: ``EditError/badInput(_:)`` for tensors of the wrong shape, an empty mask or a
    ///   negative sample index; whatever `progress` or `finished` throw.
    public func edit(image: Tensor, mask: Tensor, promptEmbedding text: Tensor, sampleIndices: [Int]? = nil,
                     progress: (EditProgress) throws -> Void = { _ in },
                     finished: (EditedSample) throws -> Void = { _ in }) throws -> [EditedSample] {
        let size = models.unet.config.imageSize
        guard image.shape == [1, 3, size, size] else {
            throw EditError.badInput("the image must be [1, 3, \(size), \(size)] for this diffusion model, got \(image.shape)")
        }
        guard mask.shape == [1, 1, size, size] else {
            throw EditError.badInput("the mask must be [1, 1, \(size), \(size)], got \(mask.shape)")
        }
        let editMask = settings.invertMask ? 1 - mask : mask
        guard try editMask.sum().scalar > 0 else {
            throw EditError.badInput("the mask selects nothing to edit: mark the region to change in white")
        }
        let sampler = Sampler(editor: self, source: image, mask: editMask, text: text,
                              augment: ClipAugmentations(outputSize: models.clip.config.imageResolution, count: settings.pixel.augmentations))
        let samples = try SampleLoop.run(sampler, indices: sampleIndices ?? Array(0..<settings.samples), batchSize: settings.batchSize,
                                         progress: progress, finished: finished)
        return samples.sorted { ($0.distance ?? .infinity, $0.index) < ($1.distance ?? .infinity, $1.index) }
    }

    /// The pixel methods' step for ``SampleLoop``: the source noised to the start step, then
    /// guided DDPM (or DDIM) steps down to t = 0, each followed (Blended Diffusion) by the
    /// background blend; the last x0 estimate, with the clean background pasted, is the sample.
    struct Sampler: BatchSampler {
        struct Batch {
            var indices: [Int]
            var rngs: [NoiseSource]
            var x: Tensor
            var predicted: Tensor
        }

        let editor: BlendedDiffusionEditor
        let source: Tensor
        let mask: Tensor
        let text: Tensor
        let augment: ClipAugmentations
        var settings: EditSettings { editor.settings }
        var diffusion: GaussianDiffusion { editor.diffusion }
        /// The first (noisiest) step's timestep.
        var startStep: Int { diffusion.stepCount - settings.pixel.skipTimesteps - 1 }
        var steps: Int { startStep + 1 }

        func begin(samples indices: [Int]) throws -> Batch {
            var rngs = indices.map { NoiseSource.sample(seed: settings.seed, index: $0) }
            let image = try Tensor.concatenate(Array(repeating: source, count: indices.count), axis: 0)
            let x = try diffusion.qSample(image, t: startStep, noise: perSample(&rngs) { try $0.gaussian(source.shape) })
            return Batch(indices: indices, rngs: rngs, x: x, predicted: x)
        }

        /// One draw per sample from its own stream, stacked on the batch axis.
        func perSample(_ rngs: inout [NoiseSource], _ draw: (inout NoiseSource) throws -> Tensor) throws -> Tensor {
            var parts: [Tensor] = []
            for i in rngs.indices { parts.append(try draw(&rngs[i])) }
            return try Tensor.concatenate(parts, axis: 0)
        }

        func step(_ batch: inout Batch, step: Int) throws -> SamplerStep {
            let t = startStep - step
            var means: [Tensor] = [], logVars: [Tensor] = [], preds: [Tensor] = []
            var clipTotal: Float = 0, rangeTotal: Float = 0
            for i in batch.indices.indices {
                let xi = try batch.x.sliced(i..<i + 1, axis: 0)
                let g = try editor.guidedPrediction(xi, t: t, batch: batch.indices.count, source: source, mask: mask, text: text,
                                                    augment: augment, rng: &batch.rngs[i])
                means.append(g.prediction.mean)
                logVars.append(g.prediction.logVariance)
                preds.append(g.prediction.predXStart)
                clipTotal += g.clipLoss
                rangeTotal += g.rangeLoss
            }
            let p = GaussianDiffusion.Prediction(mean: try Tensor.concatenate(means, axis: 0),
                                                 logVariance: try Tensor.concatenate(logVars, axis: 0),
                                                 predXStart: try Tensor.concatenate(preds, axis: 0))
            let noise = try perSample(&batch.rngs) { try $0.gaussian(source.shape) }
            var x = settings.pixel.ddim
                ? try diffusion.ddimStep(p, xt: batch.x, t: t, noise: noise)
                : try diffusion.ddpmStep(p, t: t, noise: noise)
            if settings.method == .blended {
                // The source noised to the *current* step's level t (not t − 1), as the
                // reference does; each sample has its own draw.
                var backgrounds: [Tensor] = []
                for index in batch.indices {
                    var backgroundNoise = NoiseSource.background(seed: settings.seed, sample: index, timestep: t)
                    backgrounds.append(try diffusion.qSample(source, t: t, noise: backgroundNoise.gaussian(source.shape)))
                }
                x = try blendBackground(sample: x, background: Tensor.concatenate(backgrounds, axis: 0), mask: mask)
            }
            batch.x = x
            batch.predicted = p.predXStart
            return SamplerStep(timestep: t, sample: x, prediction: p.predXStart,
                               guidance: GuidanceLossValues(clip: clipTotal, range: rangeTotal))
        }

        func finish(_ batch: Batch, position i: Int, reconstruction: (ReconstructionProgress) throws -> Void) throws -> EditedSample {
            var result = try batch.predicted.sliced(i..<i + 1, axis: 0)
            if settings.method == .blended && settings.enforceBackground {
                result = try blendBackground(sample: result, background: source, mask: mask)
            }
            return EditedSample(index: batch.indices[i], image: result,
                                distance: try editor.rankingDistance(result, mask: mask, text: text))
        }
    }

    /// One sample's model prediction at step t, conditioned on the guidance gradient.
    func guidedPrediction(_ x: Tensor, t: Int, batch: Int, source: Tensor, mask: Tensor, text: Tensor,
                          augment: ClipAugmentations, rng: inout NoiseSource)
        throws -> (prediction: GaussianDiffusion.Prediction, clipLoss: Float, rangeLoss: Float) {
        // A class-conditional model (the 512x512 one) gets a random ImageNet class at every
        // step, as the reference samples with randomize_class=True.
        let classes = models.unet.config.numClasses.map { [Int(rng.next() % UInt64($0))] }
        // The reference's cond_fn returns a zero gradient for an empty prompt: unguided sampling.
        if settings.prompt.isEmpty {
            let output = try models.unet(x, timesteps: [diffusion.modelTimestep(t)], classes: classes)
            return (try diffusion.pMeanVariance(modelOutput: output, xt: x, t: t), 0, 0)
        }
        let leaf = x.requiringGradient()
        let output = try models.unet(leaf, timesteps: [diffusion.modelTimestep(t)], classes: classes)
        let p = try diffusion.pMeanVariance(modelOutput: output, xt: leaf, t: t)
        var clipLoss: Float = 0, rangeLoss: Float = 0
        let fac = Float(diffusion.sqrtOneMinusAlphasCumprod[t])
        let xIn = try p.predXStart * fac + leaf * (1 - fac)
        var loss: Tensor?
        func add(_ term: Tensor) throws { loss = try loss.map { try $0 + term } ?? term }

        if settings.pixel.clipGuidanceLambda != 0 {
            let views = try augment(xIn * mask, using: &rng)
            let embeddings = try models.clip.image(ClipImageEncoder.normalize((views + 1) * 0.5))
            let term = try GuidanceLosses.sphericalDistance(embeddings, text).mean() * settings.pixel.clipGuidanceLambda
            clipLoss = try term.scalar
            try add(term)
        }
        if settings.pixel.rangeLambda != 0 {
            let term = try GuidanceLosses.rangeLoss(p.predXStart).sum() * settings.pixel.rangeLambda
            rangeLoss = try term.scalar
            try add(term)
        }
        if settings.method == .localClip {
            let background = try xIn * (1 - mask)
            if settings.pixel.l2SimLambda != 0 {
                // mse_loss over the whole batch divides by B·N: each sample carries 1/B of it.
                try add((background - source).squared().mean() * (settings.pixel.l2SimLambda / Float(batch)))
            }
            if settings.pixel.lpipsSimLambda != 0, let lpips = models.lpips {
                try add(lpips(background, source).sum() * settings.pixel.lpipsSimLambda)
            }
        }
        let constant = GaussianDiffusion.Prediction(mean: p.mean.detached(), logVariance: p.logVariance,
                                                    predXStart: p.predXStart.detached())
        guard let loss else { return (constant, 0, 0) }
        // cond_fn returns −∂loss/∂x_t.
        let gradient = try -gradients(of: loss, withRespectTo: [leaf])[0]
        let conditioned = settings.pixel.ddim
            ? try diffusion.conditionScore(constant, gradient: gradient, xt: x, t: t)
            : try diffusion.conditionMean(constant, gradient: gradient)
        return (conditioned, clipLoss, rangeLoss)
    }

    /// The reference's `unaugmented_clip_distance` (see ``ClipRanking/distance(_:mask:text:)``).
    public func rankingDistance(_ image: Tensor, mask: Tensor, text: Tensor) throws -> Float {
        try ClipRanking(clip: models.clip).distance(image, mask: mask, text: text)
    }
}
