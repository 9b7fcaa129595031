import BlendTensor

/// Deterministic DDIM (Song, Meng & Ermon 2021, eq. 12 with η = 0), as diffusers'
/// `DDIMScheduler.step` computes it: from the model output, x0 and ε at ᾱ_t, then
/// ``DDIMUpdate`` (`x_prev = √ᾱ_prev·x0 + √(1−ᾱ_prev)·ε`) with `prev = t − T/steps` (integer division, whatever
/// the spacing, as diffusers does) and, past timestep 0, ᾱ_prev = 1 when `setAlphaToOne`
/// else ᾱ_0 (SD's configs: `set_alpha_to_one` false). No clipping of x0 (SD: `clip_sample` false).
public struct DDIMSolver: DiffusionSolver {
    public let schedule: NoiseSchedule
    public let timesteps: [Int]
    public let predictionType: PredictionType
    /// The ᾱ a step past timestep 0 lands on.
    public let finalAlphaCumprod: Double
    /// `T / steps`: how far back each step goes.
    public let stepRatio: Int

    /// `steps` steps with the given spacing (SD's: "leading", offset 1).
    public init(schedule: NoiseSchedule, steps: Int, predictionType: PredictionType = .epsilon,
                spacing: TimestepSpacing = .leading, stepsOffset: Int = 1, setAlphaToOne: Bool = false) throws {
        let timesteps = try spacing.ddimTimesteps(steps: steps, trainSteps: schedule.trainStepCount, stepsOffset: stepsOffset)
        guard timesteps.allSatisfy({ $0 >= 0 && $0 < schedule.trainStepCount }) else {
            throw DiffusionError.invalidSampling("steps_offset \(stepsOffset) puts a timestep outside 0..<\(schedule.trainStepCount)")
        }
        self.schedule = schedule
        self.timesteps = timesteps
        self.predictionType = predictionType
        finalAlphaCumprod = setAlphaToOne ? 1 : schedule.alphasCumprod[0]
        stepRatio = schedule.trainStepCount / steps
    }

    public func outputAlphaBar(at index: Int) throws -> Double {
        try checkIndex(index)
        let prev = timesteps[index] - stepRatio
        return prev >= 0 ? schedule.alphasCumprod[prev] : finalAlphaCumprod
    }

    public func step(modelOutput: Tensor, index: Int, sample: Tensor) throws -> Tensor {
        let alphaBar = try inputAlphaBar(at: index), alphaBarPrev = try outputAlphaBar(at: index)
        let p = try NoiseSchedule.predictions(modelOutput: modelOutput, sample: sample, alphaBar: alphaBar,
                                              predictionType: predictionType)
        return try DDIMUpdate.step(predXStart: p.x0, eps: p.eps, alphaBarPrev: alphaBarPrev)
    }
}
