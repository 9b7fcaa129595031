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

/// Where a running edit stands, for progress display.
public struct EditProgress: Sendable {
    public var iteration: Int
    public var iterations: Int
    /// The batch being made (of this call's batches), and how many batches there are.
    /// Denoising steps done in this iteration, and per iteration.
    public var step: Int
    public var steps: Int
    /// The step's timestep index (counting down to 0).
    public var timestep: Int
    /// The numbers of the samples in this batch (see ``BlendedDiffusionEditor/edit(image:mask:promptEmbedding:sampleIndices:progress:finished:)``).
    public var sampleIndices: [Int]
    /// The current samples `[B, 3, H, W]` after blending, and their x0 predictions.
    public var sample: Tensor
    public var predictedImage: Tensor
    /// The guidance losses of this step, summed over the batch.
    public var clipLoss: Float
    public var rangeLoss: Float

    public var completedSteps: Int { iteration * steps + step }
    public var totalSteps: Int { iterations * steps }

    public init(iteration: Int, iterations: Int, step: Int, steps: Int, timestep: Int, sampleIndices: [Int],
                sample: Tensor, predictedImage: Tensor, clipLoss: Float, rangeLoss: Float) {
        self.iteration = iteration
        self.iterations = iterations
        self.step = step
        self.steps = steps
        self.timestep = timestep
        self.sampleIndices = sampleIndices
        self.sample = sample
        self.predictedImage = predictedImage
        self.clipLoss = clipLoss
        self.rangeLoss = rangeLoss
    }
}

/// One finished edit.
public struct EditSample: Sendable {
    /// `[1, 3, H, W]` in [-1, 1] at the model's resolution.
    public var image: Tensor
    /// Unaugmented CLIP distance of the masked result to the prompt (lower is better).
    public var distance: Float
    /// The sample's number: its noise depends only on the seed and this.
    public var index: Int
    /// The batch (of this call) that made it, and its place in that batch.
    public var iteration: Int
    public var batchIndex: Int
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
        diffusion = try GaussianDiffusion.spaced(schedule: .linear, steps: 1000, respacing: settings.timestepRespacing)
        try settings.validate(totalSteps: diffusion.stepCount)
        guard settings.method != .latent else {
            throw EditError.invalidSetting("the latent method runs in BlendedLatentDiffusionEditor, not on a guided-diffusion UNet")
        }
        if settings.method == .localClip && settings.lpipsSimLambda != 0 && models.lpips == nil {
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
    /// `batchSize` at a time, and returns them ranked by CLIP distance (best first).
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
                     finished: (EditSample) throws -> Void = { _ in }) throws -> [EditSample] {
        let size = models.unet.config.imageSize
        guard image.shape == [1, 3, size, size] else {
            throw EditError.badInput("the image must be [1, 3, \(size), \(size)] for this diffusion model, got \(image.shape)")
        }
        guard mask.shape == [1, 1, size, size] else {
            throw EditError.badInput("the mask must be [1, 1, \(size), \(size)], got \(mask.shape)")
        }
        let indices = sampleIndices ?? Array(0..<settings.samples)
        guard indices.allSatisfy({ $0 >= 0 }) else {
            throw EditError.badInput("sample indices must be 0 or more, got \(indices)")
        }
        let editMask = settings.invertMask ? 1 - mask : mask
        let maskSum = try editMask.sum().scalar
        guard maskSum > 0 else {
            throw EditError.badInput("the mask selects nothing to edit: mark the region to change in white")
        }
        var samples: [EditSample] = []
        let startStep = diffusion.stepCount - settings.skipTimesteps - 1
        let augment = ClipAugmentations(outputSize: models.clip.config.imageResolution, count: settings.augmentations)
        let batches = stride(from: 0, to: indices.count, by: settings.batchSize).map {
            Array(indices[$0..<min($0 + settings.batchSize, indices.count)])
        }

        for (iteration, batch) in batches.enumerated() {
            let b = batch.count
            var rngs = batch.map { NoiseSource.sample(seed: settings.seed, index: $0) }
            func perSample(_ draw: (inout NoiseSource) throws -> Tensor) throws -> Tensor {
                var parts: [Tensor] = []
                for i in 0..<b { parts.append(try draw(&rngs[i])) }
                return try Tensor.concatenate(parts, axis: 0)
            }
            let batchImage = try Tensor.concatenate(Array(repeating: image, count: b), axis: 0)
            var x = try diffusion.qSample(batchImage, t: startStep, noise: perSample { try $0.gaussian(image.shape) })
            var predicted = x
            for (stepIndex, t) in (0...startStep).reversed().enumerated() {
                var means: [Tensor] = [], logVars: [Tensor] = [], preds: [Tensor] = []
                var clipTotal: Float = 0, rangeTotal: Float = 0
                for i in 0..<b {
                    let xi = try x.sliced(i..<i + 1, axis: 0)
                    let g = try guidedPrediction(xi, t: t, batch: b, source: image, mask: editMask, text: text,
                                                 augment: augment, rng: &rngs[i])
                    means.append(g.prediction.mean)
                    logVars.append(g.prediction.logVariance)
                    preds.append(g.prediction.predXStart)
                    clipTotal += g.clipLoss
                    rangeTotal += g.rangeLoss
                }
                let p = GaussianDiffusion.Prediction(mean: try Tensor.concatenate(means, axis: 0),
                                                     logVariance: try Tensor.concatenate(logVars, axis: 0),
                                                     predXStart: try Tensor.concatenate(preds, axis: 0))
                let noise = try perSample { try $0.gaussian(image.shape) }
                x = settings.ddim
                    ? try diffusion.ddimStep(p, xt: x, t: t, noise: noise)
                    : try diffusion.ddpmStep(p, t: t, noise: noise)
                if settings.method == .blended {
                    // The source noised to the *current* step's level t (not t − 1), as the
                    // reference does; each sample has its own draw.
                    var backgrounds: [Tensor] = []
                    for index in batch {
                        var backgroundNoise = NoiseSource.background(seed: settings.seed, sample: index, timestep: t)
                        backgrounds.append(try diffusion.qSample(image, t: t, noise: backgroundNoise.gaussian(image.shape)))
                    }
                    x = try blendBackground(sample: x, background: Tensor.concatenate(backgrounds, axis: 0), mask: editMask)
                }
                predicted = p.predXStart
                try progress(EditProgress(iteration: iteration, iterations: batches.count, step: stepIndex + 1,
                                          steps: startStep + 1, timestep: t, sampleIndices: batch, sample: x,
                                          predictedImage: predicted, clipLoss: clipTotal, rangeLoss: rangeTotal))
            }
            for i in 0..<b {
                var result = try predicted.sliced(i..<i + 1, axis: 0)
                if settings.method == .blended && settings.enforceBackground {
                    result = try blendBackground(sample: result, background: image, mask: editMask)
                }
                let sample = EditSample(image: result, distance: try rankingDistance(result, mask: editMask, text: text),
                                        index: batch[i], iteration: iteration, batchIndex: i)
                samples.append(sample)
                try finished(sample)
            }
        }
        return samples.sorted { ($0.distance, $0.index) < ($1.distance, $1.index) }
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

        if settings.clipGuidanceLambda != 0 {
            let views = try augment(xIn * mask, using: &rng)
            let embeddings = try models.clip.image(ClipImageEncoder.normalize((views + 1) * 0.5))
            let term = try GuidanceLosses.sphericalDistance(embeddings, text).mean() * settings.clipGuidanceLambda
            clipLoss = try term.scalar
            try add(term)
        }
        if settings.rangeLambda != 0 {
            let term = try GuidanceLosses.rangeLoss(p.predXStart).sum() * settings.rangeLambda
            rangeLoss = try term.scalar
            try add(term)
        }
        if settings.method == .localClip {
            let background = try xIn * (1 - mask)
            if settings.l2SimLambda != 0 {
                // mse_loss over the whole batch divides by B·N: each sample carries 1/B of it.
                try add((background - source).squared().mean() * (settings.l2SimLambda / Float(batch)))
            }
            if settings.lpipsSimLambda != 0, let lpips = models.lpips {
                try add(lpips(background, source).sum() * settings.lpipsSimLambda)
            }
        }
        let constant = GaussianDiffusion.Prediction(mean: p.mean.detached(), logVariance: p.logVariance,
                                                    predXStart: p.predXStart.detached())
        guard let loss else { return (constant, 0, 0) }
        // cond_fn returns −∂loss/∂x_t.
        let gradient = try -gradients(of: loss, withRespectTo: [leaf])[0]
        let conditioned = settings.ddim
            ? try diffusion.conditionScore(constant, gradient: gradient, xt: x, t: t)
            : try diffusion.conditionMean(constant, gradient: gradient)
        return (conditioned, clipLoss, rangeLoss)
    }

    /// The reference's `unaugmented_clip_distance` (see ``ClipRanking/distance(_:mask:text:)``).
    public func rankingDistance(_ image: Tensor, mask: Tensor, text: Tensor) throws -> Float {
        try ClipRanking(clip: models.clip).distance(image, mask: mask, text: text)
    }
}
