import BlendTensor

/// What an edit method supplies to the shared sample loop (``SampleLoop``): how a batch of
/// samples starts, takes one denoising step, and ends. The loop owns what every method shares:
/// sample numbering, batching, the order of the callbacks, and stopping when one throws.
///
/// Invariant every sampler keeps: sample i draws all its randomness from streams that depend
/// only on the seed and i (``NoiseSource``, ``LatentNoise``), so the same seed gives the same
/// sample i whatever the batch size or the other indices asked for — which is what makes a
/// resumed edit (only the missing indices) equal an uninterrupted one.
public protocol BatchSampler {
    /// One batch's state between steps (its samples, noise streams, solver history).
    associatedtype Batch
    /// The denoising steps each batch takes.
    var steps: Int { get }
    /// The batch of samples numbered `indices` before its first step.
    func begin(samples indices: [Int]) throws -> Batch
    /// Takes step `step` (0-based, of ``steps``) of `batch`, and says what it did.
    func step(_ batch: inout Batch, step: Int) throws -> SamplerStep
    /// The finished sample at `position` in `batch` after its last step (each is handed on
    /// before the next is finished, so a long finish — a decode, the latent method's background
    /// reconstruction, whose steps `reconstruction` reports — saves each sample as it comes).
    func finish(_ batch: Batch, position: Int, reconstruction: (ReconstructionProgress) throws -> Void) throws -> EditedSample
}

/// What one denoising step of a batch did, as a ``BatchSampler`` reports it.
public struct SamplerStep: Sendable {
    /// The timestep the step started from.
    public var timestep: Int
    /// The batch's state after the step and the blending: `[B, 3, H, W]` for the pixel
    /// methods, the latents `[B, C, h, w]` for the latent one.
    public var sample: Tensor
    /// The step's estimate of the final state, x0 (predXStart), in the same space.
    public var prediction: Tensor
    /// For a latent state: the colour map that shows `prediction` as an image without a decode.
    public var preview: LatentPreview?
    /// The guidance losses of the step, summed over the batch (the CLIP-guided methods).
    public var guidance: GuidanceLossValues?

    public init(timestep: Int, sample: Tensor, prediction: Tensor, preview: LatentPreview? = nil,
                guidance: GuidanceLossValues? = nil) {
        self.timestep = timestep
        self.sample = sample
        self.prediction = prediction
        self.preview = preview
        self.guidance = guidance
    }
}

/// The values of a guided step's losses (``GuidanceLosses``), summed over the batch.
public struct GuidanceLossValues: Sendable, Equatable {
    /// The CLIP loss: `clip_guidance_lambda ×` the spherical distance.
    public var clip: Float
    /// The range loss: `range_lambda ×` the out-of-range penalty of x0.
    public var range: Float

    public init(clip: Float, range: Float) {
        self.clip = clip
        self.range = range
    }
}

/// Where a running edit stands, for progress display: the same for every method.
public struct EditProgress: Sendable {
    /// The batch being made (0-based, of this call's batches), and how many batches there are.
    public var iteration: Int
    public var iterations: Int
    /// Denoising steps done in this batch (1-based), and steps per batch.
    public var step: Int
    public var steps: Int
    /// The timestep the step just taken started from.
    public var timestep: Int
    /// The numbers of the samples in this batch.
    public var sampleIndices: [Int]
    /// The batch's state after the step and blending (``SamplerStep/sample``).
    public var sample: Tensor
    /// The step's x0 estimate in the state's space (``SamplerStep/prediction``).
    public var prediction: Tensor
    /// The latent colour map, for a latent state.
    public var preview: LatentPreview?
    /// The guidance losses, for the CLIP-guided methods.
    public var guidance: GuidanceLossValues?

    public var completedSteps: Int { iteration * steps + step }
    public var totalSteps: Int { iterations * steps }

    /// The x0 estimates as images `[B, 3, H, W]` in about [−1, 1]: the prediction itself for
    /// the pixel methods, through ``preview`` (no decode, upsampled ×f) for a latent one.
    /// - Throws: `EditError.badInput` as ``LatentPreview/image(_:)``.
    public func predictedImage() throws -> Tensor {
        try preview.map { try $0.image(prediction) } ?? prediction
    }

    public init(iteration: Int, iterations: Int, step: Int, steps: Int, sampleIndices: [Int], reported: SamplerStep) {
        self.iteration = iteration
        self.iterations = iterations
        self.step = step
        self.steps = steps
        self.timestep = reported.timestep
        self.sampleIndices = sampleIndices
        self.sample = reported.sample
        self.prediction = reported.prediction
        self.preview = reported.preview
        self.guidance = reported.guidance
    }
}

/// One finished sample, whatever the method.
public struct EditedSample: Sendable {
    /// The sample's number: its noise depends only on the seed and this.
    public var index: Int
    /// The image `[1, 3, H, W]` at the model's resolution, about [−1, 1] (the pixel methods
    /// clamp to it; a decoded latent is not clamped), not pasted back.
    public var image: Tensor
    /// The unaugmented CLIP distance of the masked result to the prompt (lower is better),
    /// where the method ranks its own samples (the pixel methods); nil otherwise.
    public var distance: Float?
    /// The final latent `[1, C, h, w]`, for a latent method.
    public var latent: Tensor?
    /// The background reconstruction's loss before each step and after the last (empty when none ran).
    public var reconstructionLosses: [Float] = []
    /// The batch (of this call) that made it, and its place in that batch.
    public var iteration: Int = 0
    public var batchIndex: Int = 0

    public init(index: Int, image: Tensor, distance: Float? = nil, latent: Tensor? = nil) {
        self.index = index
        self.image = image
        self.distance = distance
        self.latent = latent
    }
}

/// The sample loop every edit method shares.
public enum SampleLoop {
    /// Makes the samples numbered `indices` with `sampler`, `batchSize` at a time in the
    /// order given: after every step `progress`, after each batch `finished` with each of its
    /// samples (so a caller can save it at once). A throw from any callback stops the edit
    /// there and is rethrown (cancelling: finished samples were already handed over).
    /// Returns the samples in the order made.
    /// - Throws: ``EditError/badInput(_:)`` for a negative index, ``EditError/invalidSetting(_:)``
    ///   for a batch size below 1; what the sampler and the callbacks throw.
    public static func run<Sampler: BatchSampler>(
        _ sampler: Sampler, indices: [Int], batchSize: Int,
        progress: (EditProgress) throws -> Void,
        reconstruction: (ReconstructionProgress) throws -> Void = { _ in },
        finished: (EditedSample) throws -> Void
    ) throws -> [EditedSample] {
        guard indices.allSatisfy({ $0 >= 0 }) else {
            throw EditError.badInput("sample indices must be 0 or more, got \(indices)")
        }
        guard batchSize >= 1 else { throw EditError.invalidSetting("the batch size must be at least 1, got \(batchSize)") }
        let batches = stride(from: 0, to: indices.count, by: batchSize).map {
            Array(indices[$0..<min($0 + batchSize, indices.count)])
        }
        var samples: [EditedSample] = []
        for (iteration, members) in batches.enumerated() {
            var batch = try sampler.begin(samples: members)
            for step in 0..<sampler.steps {
                let reported = try sampler.step(&batch, step: step)
                try progress(EditProgress(iteration: iteration, iterations: batches.count, step: step + 1, steps: sampler.steps,
                                          sampleIndices: members, reported: reported))
            }
            for position in members.indices {
                var sample = try sampler.finish(batch, position: position, reconstruction: reconstruction)
                sample.iteration = iteration
                sample.batchIndex = position
                samples.append(sample)
                try finished(sample)
            }
        }
        return samples
    }
}
