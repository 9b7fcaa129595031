import BlendTensor

/// A deterministic solver of the reverse diffusion process over a fixed list of timesteps:
/// diffusers' scheduler after `set_timesteps`. The seam between DDIM and DPM-Solver++(2M);
/// the latent editor runs either. A solver is a value: a multistep solver keeps its history
/// in itself, so each run starts from a fresh copy.
public protocol DiffusionSolver: Sendable {
    /// The timesteps the model is evaluated at, descending (`scheduler.timesteps`).
    var timesteps: [Int] { get }
    /// The training process the timesteps index.
    var schedule: NoiseSchedule { get }
    var predictionType: PredictionType { get }
    /// The noise level ᾱ of the sample that step `index` returns (1 for a clean sample).
    func outputAlphaBar(at index: Int) throws -> Double
    /// One step from `sample` (at level ᾱ of `timesteps[index]`) with the model's output for it
    /// (ε or v, `[N, C, h, w]` like the sample) to the sample at ``outputAlphaBar(at:)``.
    /// Steps run in order; a multistep solver's first step after a skip is first order.
    mutating func step(modelOutput: Tensor, index: Int, sample: Tensor) throws -> Tensor
}

extension DiffusionSolver {
    public var stepCount: Int { timesteps.count }

    /// The noise level ᾱ of the sample that step `index` starts from.
    public func inputAlphaBar(at index: Int) throws -> Double {
        try checkIndex(index)
        return try schedule.alphaBar(at: timesteps[index])
    }

    func checkIndex(_ index: Int) throws {
        guard timesteps.indices.contains(index) else {
            throw DiffusionError.invalidSampling("step \(index) is outside the solver's \(timesteps.count) steps")
        }
    }

    /// The clean-sample estimate x0 (diffusers' `pred_original_sample`, predXStart) that step
    /// `index` is built on, from the model's output (ε or v) for `sample` at the level of
    /// `timesteps[index]`: ``NoiseSchedule/predictions(modelOutput:sample:alphaBar:predictionType:)``,
    /// as DDIM and DPM-Solver++ compute it inside ``step(modelOutput:index:sample:)``.
    /// `[N, C, h, w]` like `sample`. Throws for an index outside the steps or mismatched shapes.
    public func predictedOriginal(modelOutput: Tensor, index: Int, sample: Tensor) throws -> Tensor {
        try NoiseSchedule.predictions(modelOutput: modelOutput, sample: sample, alphaBar: inputAlphaBar(at: index),
                                      predictionType: predictionType).x0
    }

    /// The first step an image-to-image run takes (diffusers' img2img `get_timesteps`): with
    /// `strength` s in (0, 1], it runs the last `int(steps · s)` steps and starts at index
    /// `steps − int(steps · s)`, from the source noised to that step's timestep. Throws when
    /// `strength` is outside (0, 1] or leaves no step to run.
    public func startIndex(strength: Double) throws -> Int {
        guard strength > 0 && strength <= 1 else {
            throw DiffusionError.invalidSampling("strength must be greater than 0 and at most 1, got \(strength)")
        }
        let run = min(Int(Double(stepCount) * strength), stepCount)
        guard run >= 1 else {
            throw DiffusionError.invalidSampling("strength \(strength) of \(stepCount) steps leaves no step to run: raise the strength or the number of steps")
        }
        return stepCount - run
    }
}

/// The solvers offered for Stable Diffusion, with the settings SD's published configs give them.
public enum LatentSolverKind: String, Codable, Sendable, CaseIterable {
    /// DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", Algorithm 2), "linspace" timesteps.
    case dpmSolverPlusPlus2M = "dpm++2m"
    /// DDIM with η = 0 (Song et al. 2021, eq. 12), "leading" timesteps with `steps_offset` 1.
    case ddim

    /// A fresh solver of `steps` steps over `schedule` (SD's scaled-linear one by default).
    public func makeSolver(steps: Int, predictionType: PredictionType,
                           schedule: NoiseSchedule? = nil) throws -> any DiffusionSolver {
        let schedule = try schedule ?? NoiseSchedule.scaledLinear()
        switch self {
        case .dpmSolverPlusPlus2M:
            return try DPMSolverMultistep(schedule: schedule, steps: steps, predictionType: predictionType)
        case .ddim:
            return try DDIMSolver(schedule: schedule, steps: steps, predictionType: predictionType)
        }
    }
}

/// Classifier-free guidance (Ho & Salimans 2022, eq. 6; diffusers' pipelines):
/// `ε_u + s·(ε_c − ε_u)` from the unconditional and the conditional model outputs (ε or v,
/// same shape). `scale` 1 gives the conditional output; SD's default is 7.5.
public func classifierFreeGuidance(unconditional: Tensor, conditional: Tensor, scale: Float) throws -> Tensor {
    try unconditional + (conditional - unconditional) * scale
}
