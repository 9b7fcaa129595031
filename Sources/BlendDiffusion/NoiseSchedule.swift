import BlendTensor

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a latent-diffusion model's output means (diffusers' `prediction_type`). The weights
/// cannot tell: SD 1.x and 2.1-base predict ε, SD 2.x at 768 (2.0-v, 2.1) predicts v.
public enum PredictionType: String, Codable, Sendable, CaseIterable {
    /// The noise ε in `x_t = √ᾱ·x0 + √(1−ᾱ)·ε` (Ho et al. 2020).
    case epsilon
    /// The velocity `v = √ᾱ·ε − √(1−ᾱ)·x0` (Salimans & Ho 2022, "Progressive distillation", §4).
    case vPrediction = "v_prediction"
}

/// The discrete training process of a latent-diffusion model as diffusers' schedulers hold it:
/// betas over `trainStepCount` steps (timesteps 0 ..< 1000) and their cumulative products ᾱ.
/// Values are float64 (diffusers computes them in float32; the difference is below 1e-6
/// relative) and rounded to float32 when applied to tensors.
public struct NoiseSchedule: Equatable, Sendable {
    public let betas: [Double]
    /// ᾱ_t = ∏_{s ≤ t} (1 − β_s).
    public let alphasCumprod: [Double]

    public var trainStepCount: Int { betas.count }

    /// A schedule with these betas, each in (0, 1).
    public init(betas: [Double]) throws {
        guard !betas.isEmpty, betas.allSatisfy({ $0 > 0 && $0 < 1 }) else {
            throw DiffusionError.invalidSchedule("betas must be a non-empty list of numbers strictly between 0 and 1")
        }
        self.betas = betas
        var running = 1.0
        alphasCumprod = betas.map { running *= 1 - $0; return running }
    }

    /// Stable Diffusion's schedule, diffusers' `beta_schedule="scaled_linear"`: betas evenly
    /// spaced in √β from √`betaStart` to √`betaEnd`, then squared (LDM's "linear" schedule,
    /// CompVis `make_beta_schedule`). SD 1.x and 2.x train with 0.00085 → 0.012 over 1000 steps.
    public static func scaledLinear(betaStart: Double = 0.00085, betaEnd: Double = 0.012,
                                    trainSteps: Int = 1000) throws -> NoiseSchedule {
        guard trainSteps >= 2, betaStart > 0, betaEnd >= betaStart, betaEnd < 1 else {
            throw DiffusionError.invalidSchedule("scaled-linear betas need 0 < beta_start ≤ beta_end < 1 and at least 2 steps (got \(betaStart), \(betaEnd), \(trainSteps))")
        }
        let a = betaStart.squareRoot(), b = betaEnd.squareRoot()
        let step = (b - a) / Double(trainSteps - 1)
        return try NoiseSchedule(betas: (0..<trainSteps).map { i in
            let s = i == trainSteps - 1 ? b : a + Double(i) * step
            return s * s
        })
    }

    /// ᾱ at `timestep`; throws for a timestep outside the training process.
    public func alphaBar(at timestep: Int) throws -> Double {
        guard timestep >= 0 && timestep < trainStepCount else {
            throw DiffusionError.invalidTimestep(timestep, count: trainStepCount)
        }
        return alphasCumprod[timestep]
    }

    /// q(x_t | x_0) at `timestep`, diffusers' `add_noise`: `√ᾱ_t·x0 + √(1−ᾱ_t)·noise`.
    public func addNoise(_ x0: Tensor, noise: Tensor, timestep: Int) throws -> Tensor {
        try Self.addNoise(x0, noise: noise, alphaBar: alphaBar(at: timestep))
    }

    /// `√ᾱ·x0 + √(1−ᾱ)·noise` for any level ᾱ in [0, 1] (ᾱ = 1: `x0` itself).
    public static func addNoise(_ x0: Tensor, noise: Tensor, alphaBar: Double) throws -> Tensor {
        guard alphaBar >= 0 && alphaBar <= 1 else {
            throw DiffusionError.invalidSchedule("a noise level ᾱ must lie in [0, 1], got \(alphaBar)")
        }
        guard x0.shape == noise.shape else {
            throw TensorError.shapeMismatch(op: "addNoise", expected: "noise of shape \(x0.shape)", got: noise.shape)
        }
        if alphaBar == 1 { return x0 }
        return try x0 * Float(alphaBar.squareRoot()) + noise * Float((1 - alphaBar).squareRoot())
    }

    /// The clean-sample prediction x0 and noise prediction ε from a model output at level ᾱ
    /// (diffusers' DDIM `step`): ε-models give `x0 = (x − √(1−ᾱ)·ε)/√ᾱ`; v-models give
    /// `x0 = √ᾱ·x − √(1−ᾱ)·v`, `ε = √ᾱ·v + √(1−ᾱ)·x`.
    public static func predictions(modelOutput: Tensor, sample: Tensor, alphaBar: Double,
                                   predictionType: PredictionType) throws -> (x0: Tensor, eps: Tensor) {
        guard modelOutput.shape == sample.shape else {
            throw TensorError.shapeMismatch(op: "predictions", expected: "a model output of shape \(sample.shape)", got: modelOutput.shape)
        }
        let a = Float(alphaBar.squareRoot()), s = Float((1 - alphaBar).squareRoot())
        switch predictionType {
        case .epsilon:
            return (try (sample - modelOutput * s) / a, modelOutput)
        case .vPrediction:
            return (try sample * a - modelOutput * s, try modelOutput * a + sample * s)
        }
    }
}
