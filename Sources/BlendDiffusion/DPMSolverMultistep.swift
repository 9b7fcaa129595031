import BlendTensor

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of
/// Diffusion Probabilistic Models", Algorithm 2, midpoint form), as diffusers'
/// `DPMSolverMultistepScheduler` runs it with its defaults (`solver_order` 2,
/// `algorithm_type` "dpmsolver++", `solver_type` "midpoint", `final_sigmas_type` "zero",
/// `lower_order_final` true).
///
/// With α = √ᾱ, σ = √(1−ᾱ) and λ = log(α/σ), each step converts the model output to the
/// data prediction D = x0 and moves from s0 to t (h = λ_t − λ_s0):
/// - first order (the first step, a step after a skip, and the final step to σ = 0):
///   `x_t = (σ_t/σ_s0)·x − α_t·(e^{−h} − 1)·D0`;
/// - second order otherwise, with the previous step's D1 at s1 and r = (λ_s0 − λ_s1)/h:
///   `x_t = (σ_t/σ_s0)·x − α_t·(e^{−h} − 1)·(D0 + (D0 − D1)/(2r))`.
/// The final step lands on σ = 0: the returned sample is the clean x0 prediction.
public struct DPMSolverMultistep: DiffusionSolver {
    public let schedule: NoiseSchedule
    public let timesteps: [Int]
    public let predictionType: PredictionType
    /// The ᾱ each step lands on: that of the next timestep, 1 (σ = 0) after the last.
    let outputAlphaBars: [Double]
    /// The previous step's index and data prediction, for the second-order update.
    var previous: (index: Int, x0: Tensor)?

    /// `steps` steps with the given spacing (SD's: "linspace").
    public init(schedule: NoiseSchedule, steps: Int, predictionType: PredictionType = .epsilon,
                spacing: TimestepSpacing = .linspace, stepsOffset: Int = 0) throws {
        let timesteps = try spacing.dpmSolverTimesteps(steps: steps, trainSteps: schedule.trainStepCount, stepsOffset: stepsOffset)
        guard timesteps.allSatisfy({ $0 >= 0 && $0 < schedule.trainStepCount }) else {
            throw DiffusionError.invalidSampling("steps_offset \(stepsOffset) puts a timestep outside 0..<\(schedule.trainStepCount)")
        }
        self.schedule = schedule
        self.timesteps = timesteps
        self.predictionType = predictionType
        outputAlphaBars = timesteps.dropFirst().map { schedule.alphasCumprod[$0] } + [1]
    }

    public func outputAlphaBar(at index: Int) throws -> Double {
        try checkIndex(index)
        return outputAlphaBars[index]
    }

    public mutating func step(modelOutput: Tensor, index: Int, sample: Tensor) throws -> Tensor {
        let alphaBarS0 = try inputAlphaBar(at: index), alphaBarT = try outputAlphaBar(at: index)
        let x0 = try NoiseSchedule.predictions(modelOutput: modelOutput, sample: sample, alphaBar: alphaBarS0,
                                               predictionType: predictionType).x0
        let history = previous
        previous = (index, x0)
        // The last step goes to σ = 0, where x_t is the data prediction itself.
        if alphaBarT == 1 { return x0 }
        let alphaT = alphaBarT.squareRoot(), sigmaT = (1 - alphaBarT).squareRoot()
        let sigmaS0 = (1 - alphaBarS0).squareRoot()
        let h = lambda(alphaBarT) - lambda(alphaBarS0)
        let decay = Float(sigmaT / sigmaS0), gain = Float(-alphaT * expm1(-h))
        guard let history, history.index == index - 1, let alphaBarS1 = try? inputAlphaBar(at: index - 1) else {
            return try sample * decay + x0 * gain
        }
        let r = (lambda(alphaBarS0) - lambda(alphaBarS1)) / h
        let d1 = try (x0 - history.x0) * Float(1 / r)
        return try sample * decay + x0 * gain + d1 * (0.5 * gain)
    }

    /// λ = log(α/σ) = ½·log(ᾱ/(1−ᾱ)), the half log-SNR.
    private func lambda(_ alphaBar: Double) -> Double { 0.5 * log(alphaBar / (1 - alphaBar)) }
}
