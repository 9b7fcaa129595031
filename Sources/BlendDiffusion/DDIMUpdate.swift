import BlendTensor

/// The DDIM update (Song, Meng & Ermon 2021, eq. 12), the one formula both DDIM samplers use:
/// guided-diffusion's (``GaussianDiffusion/ddimStep(_:xt:t:eta:noise:)``, `ddim_sample`: its
/// respaced timesteps, x0 clipped and guided before the step) and diffusers' `DDIMScheduler`
/// (``DDIMSolver``: SD's "leading" timesteps, x0 and ε from the model output by prediction type).
/// What differs between them is where x0, ε and ᾱ come from, not the step.
public enum DDIMUpdate {
    /// σ_t = η·√((1−ᾱ_prev)/(1−ᾱ_t))·√(1−ᾱ_t/ᾱ_prev) (eq. 16); 0 for η = 0, deterministic DDIM.
    public static func sigma(alphaBar: Double, alphaBarPrev: Double, eta: Double) -> Double {
        eta * ((1 - alphaBarPrev) / (1 - alphaBar)).squareRoot() * (1 - alphaBar / alphaBarPrev).squareRoot()
    }

    /// x_prev = √ᾱ_prev·x0 + √(1−ᾱ_prev−σ²)·ε, plus σ·`noise` when noise is given (the
    /// samplers give none at the last step, or with σ = 0).
    /// - Parameters: `predXStart`, `eps`, `noise`: `[N, C, H, W]` alike; `alphaBarPrev` in (0, 1].
    public static func step(predXStart: Tensor, eps: Tensor, alphaBarPrev: Double, sigma: Double = 0,
                            noise: Tensor? = nil) throws -> Tensor {
        let mean = try predXStart * Float(alphaBarPrev.squareRoot()) + eps * Float((1 - alphaBarPrev - sigma * sigma).squareRoot())
        guard let noise else { return mean }
        return try mean + noise * Float(sigma)
    }
}
