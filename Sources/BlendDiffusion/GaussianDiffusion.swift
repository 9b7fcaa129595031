import BlendTensor

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The Gaussian diffusion process of guided-diffusion, possibly respaced, as a value.
///
/// Coefficient tables are float64, as guided-diffusion computes them with numpy; they
/// are rounded to float32 when applied to tensors (its `_extract_into_tensor`). All
/// tensor maths goes through differentiable engine ops, so gradients flow from any
/// result back to `x_t` (Blended Diffusion's guidance needs ∂loss/∂x_t).
public struct GaussianDiffusion: Sendable {
    public let betas: [Double]
    public let alphasCumprod: [Double]
    public let alphasCumprodPrev: [Double]
    public let sqrtAlphasCumprod: [Double]
    public let sqrtOneMinusAlphasCumprod: [Double]
    public let sqrtRecipAlphasCumprod: [Double]
    public let sqrtRecipm1AlphasCumprod: [Double]
    public let posteriorVariance: [Double]
    public let posteriorLogVarianceClipped: [Double]
    public let posteriorMeanCoef1: [Double]
    public let posteriorMeanCoef2: [Double]
    /// For each step of this (respaced) process, the step of the original process.
    public let timestepMap: [Int]
    public let originalStepCount: Int
    /// Whether the model sees timesteps rescaled to the 0...1000 range.
    public let rescaleTimesteps: Bool

    public var stepCount: Int { betas.count }

    /// A process with the given betas (the original process when `timestepMap` is nil).
    public init(betas: [Double], timestepMap: [Int]? = nil, originalStepCount: Int? = nil, rescaleTimesteps: Bool = true) {
        self.betas = betas
        let n = betas.count
        var cumprod: [Double] = []
        var running = 1.0
        for b in betas { running *= 1 - b; cumprod.append(running) }
        alphasCumprod = cumprod
        alphasCumprodPrev = [1.0] + cumprod.dropLast()
        sqrtAlphasCumprod = cumprod.map { $0.squareRoot() }
        sqrtOneMinusAlphasCumprod = cumprod.map { (1 - $0).squareRoot() }
        sqrtRecipAlphasCumprod = cumprod.map { (1 / $0).squareRoot() }
        sqrtRecipm1AlphasCumprod = cumprod.map { (1 / $0 - 1).squareRoot() }
        let prev = alphasCumprodPrev
        let variance = (0..<n).map { betas[$0] * (1 - prev[$0]) / (1 - cumprod[$0]) }
        posteriorVariance = variance
        // The posterior variance is 0 at t = 0; the reference clips its log by reusing t = 1.
        posteriorLogVarianceClipped = (0..<n).map { Foundation_log(variance[$0 == 0 && n > 1 ? 1 : $0]) }
        posteriorMeanCoef1 = (0..<n).map { betas[$0] * prev[$0].squareRoot() / (1 - cumprod[$0]) }
        posteriorMeanCoef2 = (0..<n).map { i -> Double in
            let alpha: Double = 1 - betas[i]
            return (1 - prev[i]) * alpha.squareRoot() / (1 - cumprod[i])
        }
        self.timestepMap = timestepMap ?? Array(0..<n)
        self.originalStepCount = originalStepCount ?? n
        self.rescaleTimesteps = rescaleTimesteps
    }

    /// guided-diffusion's `SpacedDiffusion`: the original schedule restricted to `spec`
    /// ("100", "ddim50", "10,20,30"), with betas recomputed from the kept ᾱ values.
    public static func spaced(schedule: BetaSchedule = .linear, steps: Int = 1000, respacing spec: String,
                              rescaleTimesteps: Bool = true) throws -> GaussianDiffusion {
        let base = GaussianDiffusion(betas: schedule.betas(steps: steps))
        let keep = Set(try spacedTimesteps(original: steps, spec: spec))
        var betas: [Double] = [], map: [Int] = []
        var last = 1.0
        for (i, ac) in base.alphasCumprod.enumerated() where keep.contains(i) {
            betas.append(1 - ac / last)
            last = ac
            map.append(i)
        }
        return GaussianDiffusion(betas: betas, timestepMap: map, originalStepCount: steps, rescaleTimesteps: rescaleTimesteps)
    }

    /// The timestep value the UNet is called with for step `t` of this process.
    public func modelTimestep(_ t: Int) -> Float {
        let original = Double(timestepMap[t])
        return Float(rescaleTimesteps ? original * (1000.0 / Double(originalStepCount)) : original)
    }

    func check(_ t: Int) throws {
        guard t >= 0 && t < stepCount else { throw DiffusionError.invalidTimestep(t, count: stepCount) }
    }

    /// q(x_t | x_0): `√ᾱ_t·x0 + √(1−ᾱ_t)·noise`.
    public func qSample(_ x0: Tensor, t: Int, noise: Tensor) throws -> Tensor {
        try check(t)
        return try x0 * Float(sqrtAlphasCumprod[t]) + noise * Float(sqrtOneMinusAlphasCumprod[t])
    }

    /// x0 from the predicted noise: `√(1/ᾱ_t)·x_t − √(1/ᾱ_t − 1)·ε`.
    public func predictXStart(fromEps eps: Tensor, xt: Tensor, t: Int) throws -> Tensor {
        try xt * Float(sqrtRecipAlphasCumprod[t]) - eps * Float(sqrtRecipm1AlphasCumprod[t])
    }

    /// ε from a predicted x0 (the inverse of ``predictXStart(fromEps:xt:t:)``).
    public func predictEps(fromXStart x0: Tensor, xt: Tensor, t: Int) throws -> Tensor {
        try (xt * Float(sqrtRecipAlphasCumprod[t]) - x0) / Float(sqrtRecipm1AlphasCumprod[t])
    }

    /// Mean of the posterior q(x_{t−1} | x_t, x_0).
    public func posteriorMean(xStart: Tensor, xt: Tensor, t: Int) throws -> Tensor {
        try xStart * Float(posteriorMeanCoef1[t]) + xt * Float(posteriorMeanCoef2[t])
    }

    /// p(x_{t−1} | x_t) from the model output (guided-diffusion's `p_mean_variance`
    /// with `clip_denoised=False`). With 2C output channels (learned sigma), the second
    /// half interpolates the log variance between the posterior's and β_t; with C
    /// channels the variance is the fixed small one (the posterior variance).
    public func pMeanVariance(modelOutput: Tensor, xt: Tensor, t: Int) throws -> Prediction {
        try check(t)
        let c = xt.dim(1)
        let eps: Tensor
        var logVariance: Tensor
        if modelOutput.dim(1) == 2 * c {
            let parts = try modelOutput.chunked(2, axis: 1)
            eps = parts[0]
            let frac = (parts[1] + 1) * 0.5
            let minLog = Float(posteriorLogVarianceClipped[t]), maxLog = Float(Foundation_log(betas[t]))
            logVariance = try frac * maxLog + (1 - frac) * minLog
        } else {
            guard modelOutput.shape == xt.shape else {
                throw TensorError.shapeMismatch(op: "pMeanVariance", expected: "model output with \(c) or \(2 * c) channels", got: modelOutput.shape)
            }
            eps = modelOutput
            logVariance = try Tensor(shape: xt.shape, repeating: Float(posteriorLogVarianceClipped[t]))
        }
        logVariance = logVariance.detached()   // the guidance gradient does not flow through the variance
        let xStart = try predictXStart(fromEps: eps, xt: xt, t: t)
        return Prediction(mean: try posteriorMean(xStart: xStart, xt: xt, t: t),
                          logVariance: logVariance, predXStart: xStart)
    }

    /// The model's prediction at one step.
    public struct Prediction: Sendable {
        public var mean: Tensor
        public var logVariance: Tensor
        public var predXStart: Tensor
        public var variance: Tensor { logVariance.exp() }

        public init(mean: Tensor, logVariance: Tensor, predXStart: Tensor) {
            self.mean = mean
            self.logVariance = logVariance
            self.predXStart = predXStart
        }
    }

    /// DDPM guidance (Sohl-Dickstein et al.; `condition_mean`): shift the mean by
    /// variance · gradient, where `gradient` is ∇_{x_t} log p(y | x_t).
    public func conditionMean(_ p: Prediction, gradient: Tensor) throws -> Prediction {
        var out = p
        out.mean = try p.mean + p.variance * gradient
        return out
    }

    /// DDIM guidance (Song et al.; `condition_score`): shift the predicted noise by
    /// −√(1−ᾱ_t) · gradient and recompute x0 and the mean.
    public func conditionScore(_ p: Prediction, gradient: Tensor, xt: Tensor, t: Int) throws -> Prediction {
        let eps = try predictEps(fromXStart: p.predXStart, xt: xt, t: t) - gradient * Float(sqrtOneMinusAlphasCumprod[t])
        var out = p
        out.predXStart = try predictXStart(fromEps: eps, xt: xt, t: t)
        out.mean = try posteriorMean(xStart: out.predXStart, xt: xt, t: t)
        return out
    }

    /// One ancestral DDPM step: mean + exp(½·log σ²)·noise (no noise at t = 0).
    public func ddpmStep(_ p: Prediction, t: Int, noise: Tensor) throws -> Tensor {
        t == 0 ? p.mean : try p.mean + (p.logVariance * 0.5).exp() * noise
    }

    /// One DDIM step (Song et al., eq. 12; guided-diffusion's `ddim_sample`) with stochasticity
    /// `eta` (0: deterministic): ε from the (guided, clipped) x0 of `p`, then ``DDIMUpdate``.
    public func ddimStep(_ p: Prediction, xt: Tensor, t: Int, eta: Float = 0, noise: Tensor) throws -> Tensor {
        let eps = try predictEps(fromXStart: p.predXStart, xt: xt, t: t)
        let alphaBarPrev = alphasCumprodPrev[t]
        let sigma = DDIMUpdate.sigma(alphaBar: alphasCumprod[t], alphaBarPrev: alphaBarPrev, eta: Double(eta))
        return try DDIMUpdate.step(predXStart: p.predXStart, eps: eps, alphaBarPrev: alphaBarPrev, sigma: sigma, noise: t == 0 ? nil : noise)
    }
}

@inline(__always) func Foundation_log(_ x: Double) -> Double { log(x) }
