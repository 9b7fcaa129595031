import Foundation
import Testing
import BlendCheckpoint
import BlendTensor
@testable import BlendDiffusion

/// One step of the 100-step process against guided-diffusion's own functions
/// (scripts/make-diffusion-fixtures.py).
@Suite struct StepTests {
    let io: [String: Tensor]
    let d = try! GaussianDiffusion.spaced(respacing: "100")
    let t = 37

    init() throws {
        io = try CheckpointFile.load(url: diffusionFixtures.appendingPathComponent("step_t37.safetensors")).tensors()
    }

    func expectClose(_ a: Tensor, _ name: String, tolerance: Float = 1e-5, sourceLocation: SourceLocation = #_sourceLocation) {
        let b = io[name]!
        let scale = max(b.scalars.map { Swift.abs($0) }.max()!, 1e-6)
        let worst = zip(a.scalars, b.scalars).map { Swift.abs($0 - $1) }.max()! / scale
        #expect(worst < tolerance, "\(name): relative error \(worst)", sourceLocation: sourceLocation)
    }

    @Test func meanVarianceAndPrediction() throws {
        #expect(io["model_timestep"]!.scalars == [d.modelTimestep(t), d.modelTimestep(t)])
        let p = try d.pMeanVariance(modelOutput: io["model_output"]!, xt: io["x"]!, t: t)
        expectClose(p.mean, "mean")
        expectClose(p.logVariance, "log_variance")
        expectClose(p.predXStart, "pred_xstart")
        expectClose(try d.qSample(io["x"]!, t: t, noise: io["noise"]!), "q_sample")
    }

    @Test func guidedDDPMStep() throws {
        let p = try d.pMeanVariance(modelOutput: io["model_output"]!, xt: io["x"]!, t: t)
        let conditioned = try d.conditionMean(p, gradient: io["gradient"]!)
        expectClose(conditioned.mean, "condition_mean")
        expectClose(try d.ddpmStep(conditioned, t: t, noise: io["noise"]!), "ddpm_sample")
    }

    @Test func guidedDDIMStep() throws {
        let x = io["x"]!
        let p = try d.pMeanVariance(modelOutput: io["model_output"]!, xt: x, t: t)
        let scored = try d.conditionScore(p, gradient: io["gradient"]!, xt: x, t: t)
        expectClose(scored.predXStart, "condition_score_pred_xstart")
        expectClose(scored.mean, "condition_score_mean")
        expectClose(try d.ddimStep(scored, xt: x, t: t, eta: 0, noise: io["noise"]!), "ddim_sample_eta0")
        expectClose(try d.ddimStep(scored, xt: x, t: t, eta: 0.5, noise: io["noise"]!), "ddim_sample_eta05")
    }

    @Test func gradientFlowsFromPredictionToInput() throws {
        // x_in = x0_pred·fac + x_t·(1 − fac) is differentiable in x_t through the prediction.
        let x = io["x"]!.requiringGradient()
        let p = try d.pMeanVariance(modelOutput: io["model_output"]!, xt: x, t: t)
        let fac = Float(d.sqrtOneMinusAlphasCumprod[t])
        let xIn = try p.predXStart * fac + x * (1 - fac)
        let g = try gradients(of: xIn.sum(), withRespectTo: [x])[0]
        // ∂x_in/∂x_t = fac·√(1/ᾱ) + (1 − fac) with the model output held fixed.
        let expected = fac * Float(d.sqrtRecipAlphasCumprod[t]) + (1 - fac)
        #expect(g.scalars.allSatisfy { Swift.abs($0 - expected) < 1e-5 })
    }

    @Test func badTimestepsThrow() throws {
        #expect(throws: DiffusionError.self) { try d.qSample(io["x"]!, t: 100, noise: io["noise"]!) }
        #expect(throws: DiffusionError.self) { try d.pMeanVariance(modelOutput: io["model_output"]!, xt: io["x"]!, t: -1) }
        #expect(throws: TensorError.self) { try d.pMeanVariance(modelOutput: io["x"]!.sliced(0..<2, axis: 1), xt: io["x"]!, t: 3) }
    }
}
