import Foundation
import Testing
import BlendCheckpoint
import BlendTensor
@testable import BlendDiffusion

/// Stable Diffusion's schedule, timesteps and solvers against diffusers' DDIMScheduler and
/// DPMSolverMultistepScheduler (scripts/make-sd-text-sampling-fixtures.py, SD 1.5's config).
@Suite struct SolverTests {
    let runs: [String: Tensor]
    let timesteps: [String: [Double]]

    init() throws {
        runs = try CheckpointFile.load(url: diffusionFixtures.appendingPathComponent("scheduler_runs.safetensors")).tensors()
        timesteps = try JSONDecoder().decode([String: [Double]].self,
                                             from: Data(contentsOf: diffusionFixtures.appendingPathComponent("scheduler_timesteps.json")))
    }

    func relativeError(_ a: Tensor, _ b: Tensor) -> Float {
        let scale = max(b.scalars.map { Swift.abs($0) }.max() ?? 0, 1e-12)
        return zip(a.scalars, b.scalars).map { Swift.abs($0 - $1) }.max()! / scale
    }

    @Test func scaledLinearScheduleMatchesDiffusers() throws {
        let schedule = try NoiseSchedule.scaledLinear()
        let reference = timesteps["alphas_cumprod"]!
        #expect(schedule.alphasCumprod.count == 1000)
        let worst = zip(schedule.alphasCumprod, reference).map { Swift.abs($0 - $1) / $1 }.max()!
        #expect(worst < 1e-5, "relative error of ᾱ: \(worst)")
        #expect(Swift.abs(schedule.betas[0] - 0.00085) < 1e-15 && Swift.abs(schedule.betas[999] - 0.012) < 1e-15)
    }

    @Test(arguments: TimestepSpacing.allCases)
    func timestepsMatchDiffusersForEverySpacing(spacing: TimestepSpacing) throws {
        for offset in [0, 1] {
            for steps in [1, 7, 25, 50, 333] {
                let ddim = try spacing.ddimTimesteps(steps: steps, stepsOffset: offset)
                #expect(ddim == timesteps["ddim/\(spacing.rawValue)/\(offset)/\(steps)"]!.map { Int($0) }, "ddim \(spacing) \(offset) \(steps)")
                let dpm = try spacing.dpmSolverTimesteps(steps: steps, stepsOffset: offset)
                #expect(dpm == timesteps["dpm/\(spacing.rawValue)/\(offset)/\(steps)"]!.map { Int($0) }, "dpm \(spacing) \(offset) \(steps)")
            }
        }
    }

    @Test func sdConfigDefaultsGiveDiffusersTimesteps() throws {
        let ddim = try LatentSolverKind.ddim.makeSolver(steps: 25, predictionType: .epsilon)
        let dpm = try LatentSolverKind.dpmSolverPlusPlus2M.makeSolver(steps: 25, predictionType: .epsilon)
        #expect(ddim.timesteps == timesteps["ddim/sd15/25"]!.map { Int($0) })
        #expect(dpm.timesteps == timesteps["dpm/sd15/25"]!.map { Int($0) })
        #expect(ddim.timesteps.first == 961 && ddim.timesteps.last == 1)
        #expect(dpm.timesteps.first == 999 && dpm.timesteps.last == 40)
    }

    /// Steps a solver through a recorded run and compares every intermediate sample.
    func replay(_ solver: any DiffusionSolver, key: String, start: Int) throws {
        var solver = solver
        var x = runs["\(key)/x"]!
        var worst: Float = 0
        for index in start..<solver.stepCount {
            x = try solver.step(modelOutput: runs["\(key)/output\(index)"]!, index: index, sample: x)
            worst = max(worst, relativeError(x, runs["\(key)/sample\(index)"]!))
        }
        #expect(worst < 1e-4, "\(key): relative error \(worst)")
    }

    @Test(arguments: PredictionType.allCases)
    func ddimMatchesDiffusersOverAWholeSchedule(prediction: PredictionType) throws {
        let solver = try DDIMSolver(schedule: NoiseSchedule.scaledLinear(), steps: 10, predictionType: prediction)
        try replay(solver, key: "ddim_\(prediction.rawValue)_10_0", start: 0)
        // Past timestep 0 DDIM lands on ᾱ_0 (set_alpha_to_one false), else on the previous timestep.
        #expect(try solver.outputAlphaBar(at: 9) == solver.schedule.alphasCumprod[0])
        #expect(try solver.outputAlphaBar(at: 0) == solver.schedule.alphasCumprod[solver.timesteps[1]])
    }

    @Test(arguments: PredictionType.allCases)
    func dpmSolverMatchesDiffusersOverAWholeSchedule(prediction: PredictionType) throws {
        let solver = try DPMSolverMultistep(schedule: NoiseSchedule.scaledLinear(), steps: 20, predictionType: prediction)
        try replay(solver, key: "dpm_\(prediction.rawValue)_20_0", start: 0)
        #expect(try solver.outputAlphaBar(at: 19) == 1)
    }

    @Test(arguments: PredictionType.allCases)
    func dpmSolverStartingMidScheduleMatchesImg2Img(prediction: PredictionType) throws {
        // diffusers' img2img: set_begin_index(2), the first step first order.
        let solver = try DPMSolverMultistep(schedule: NoiseSchedule.scaledLinear(), steps: 8, predictionType: prediction)
        #expect(try solver.startIndex(strength: 0.75) == 2)
        try replay(solver, key: "dpm_\(prediction.rawValue)_8_2", start: 2)
    }

    @Test func secondOrderUpdateIsUsedAndMatters() throws {
        // Replaying the 20-step run with the history dropped before each step (all first
        // order) must not match: the multistep correction is really there.
        var solver = try DPMSolverMultistep(schedule: NoiseSchedule.scaledLinear(), steps: 20)
        let key = "dpm_epsilon_20_0"
        var x = runs["\(key)/x"]!
        for index in 0..<5 {
            solver.previous = nil
            x = try solver.step(modelOutput: runs["\(key)/output\(index)"]!, index: index, sample: x)
        }
        #expect(relativeError(x, runs["\(key)/sample4"]!) > 1e-3)
    }

    @Test func addNoiseAndGuidanceMatchDiffusers() throws {
        let schedule = try NoiseSchedule.scaledLinear()
        let noised = try schedule.addNoise(runs["add_noise/x0"]!, noise: runs["add_noise/noise"]!, timestep: 500)
        #expect(relativeError(noised, runs["add_noise/t500"]!) < 1e-5)
        let guided = try classifierFreeGuidance(unconditional: runs["cfg/uncond"]!, conditional: runs["cfg/cond"]!, scale: 7.5)
        #expect(relativeError(guided, runs["cfg/guided"]!) < 1e-5)
        // ᾱ = 1 is the clean sample itself.
        let x0 = runs["add_noise/x0"]!
        #expect(try NoiseSchedule.addNoise(x0, noise: runs["add_noise/noise"]!, alphaBar: 1).scalars == x0.scalars)
    }

    @Test func solverKindsAreNamedAsTheCommandLineNamesThem() throws {
        #expect(LatentSolverKind(rawValue: "dpm++2m") == .dpmSolverPlusPlus2M)
        #expect(LatentSolverKind(rawValue: "ddim") == .ddim)
        #expect(PredictionType(rawValue: "v_prediction") == .vPrediction)
        let v = try LatentSolverKind.ddim.makeSolver(steps: 5, predictionType: .vPrediction)
        #expect(v.predictionType == .vPrediction && v is DDIMSolver)
        // DDIM steps back by T/steps whatever the spacing, as diffusers does.
        let trailing = try DDIMSolver(schedule: v.schedule, steps: 4, spacing: .trailing)
        #expect(trailing.timesteps == [999, 749, 499, 249])
        #expect(try trailing.outputAlphaBar(at: 2) == trailing.schedule.alphasCumprod[249])
        #expect(try trailing.outputAlphaBar(at: 3) == trailing.finalAlphaCumprod)
    }

    @Test func strengthPicksTheImg2ImgStart() throws {
        let solver = try LatentSolverKind.ddim.makeSolver(steps: 50, predictionType: .epsilon)
        #expect(try solver.startIndex(strength: 0.75) == 13)   // int(37.5) = 37 steps run
        #expect(try solver.startIndex(strength: 1) == 0)
        #expect(try solver.startIndex(strength: 0.02) == 49)
        #expect(throws: DiffusionError.self) { try solver.startIndex(strength: 0.01) }   // int(0.5) = 0 steps
        #expect(throws: DiffusionError.self) { try solver.startIndex(strength: 0) }
        #expect(throws: DiffusionError.self) { try solver.startIndex(strength: 1.5) }
        #expect(throws: DiffusionError.self) { try solver.startIndex(strength: .nan) }
    }

    @Test func badSettingsThrow() throws {
        let schedule = try NoiseSchedule.scaledLinear()
        #expect(throws: DiffusionError.self) { try NoiseSchedule(betas: []) }
        #expect(throws: DiffusionError.self) { try NoiseSchedule(betas: [0.1, 1.0]) }
        #expect(throws: DiffusionError.self) { try NoiseSchedule.scaledLinear(betaStart: 0.02, betaEnd: 0.01) }
        #expect(throws: DiffusionError.self) { try schedule.alphaBar(at: 1000) }
        #expect(throws: DiffusionError.self) { try DDIMSolver(schedule: schedule, steps: 0) }
        #expect(throws: DiffusionError.self) { try DDIMSolver(schedule: schedule, steps: 1001) }
        #expect(throws: DiffusionError.self) { try DDIMSolver(schedule: schedule, steps: 1000, stepsOffset: 1) }
        #expect(throws: DiffusionError.self) { try DPMSolverMultistep(schedule: schedule, steps: 10, spacing: .leading, stepsOffset: 991) }
        var dpm = try DPMSolverMultistep(schedule: schedule, steps: 4)
        let x = try Tensor.zeros([1, 4, 2, 2])
        #expect(throws: DiffusionError.self) { try dpm.step(modelOutput: x, index: 4, sample: x) }
        #expect(throws: TensorError.self) { try dpm.step(modelOutput: Tensor.zeros([1, 4, 2, 3]), index: 0, sample: x) }
        #expect(throws: DiffusionError.self) { try NoiseSchedule.addNoise(x, noise: x, alphaBar: 1.5) }
        #expect(throws: TensorError.self) { try NoiseSchedule.addNoise(x, noise: Tensor.zeros([1, 4, 2, 3]), alphaBar: 0.5) }
    }
}
