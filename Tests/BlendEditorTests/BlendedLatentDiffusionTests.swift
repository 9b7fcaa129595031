import Foundation
import Testing
import BlendCheckpoint
import BlendDiffusion
import BlendTensor
@testable import BlendEditor

/// An analytic stand-in for the SD UNet: `tanh(x)·(0.5 + t/2000) + mean(context_n)`, the same
/// formula as scripts/make-sd-text-sampling-fixtures.py.
struct AnalyticDenoiser: LatentDenoiser {
    func predict(_ latents: Tensor, timestep: Int, context: Tensor) throws -> Tensor {
        let bias = try context.mean(axes: [1, 2], keepingDimensions: true).reshaped([context.dim(0), 1, 1, 1])
        return try latents.tanh() * (0.5 + Float(timestep) / 2000) + bias
    }
}

/// An analytic stand-in for the VAE with a 2× grid: channels = the 2×2-pooled RGB and their
/// mean, scaled by 0.18215; decoding repeats RGB + ½·channel 3 over 2×2 blocks.
struct AnalyticAutoencoder: LatentAutoencoder {
    let scale: Float = 0.18215
    var downsamplingFactor: Int { 2 }
    func encode(_ images: Tensor) throws -> Tensor {
        let pooled = try avgPool2d(images, kernel: 2)
        return try Tensor.concatenate([pooled, pooled.mean(axes: [1], keepingDimensions: true)], axis: 1) * scale
    }
    func decode(_ latents: Tensor) throws -> Tensor {
        let z = latents / scale
        return try upsampleNearest2x(z.sliced(0..<3, axis: 1) + z.sliced(3..<4, axis: 1) * 0.5)
    }
}

/// Blended Latent Diffusion's loop against a re-implementation of the reference loop's
/// arithmetic with diffusers' own schedulers and recorded noise, and its invariants.
@Suite struct BlendedLatentDiffusionTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    let io: [String: Tensor]

    init() throws {
        io = try CheckpointFile.load(url: Self.fixtures.appendingPathComponent("bld_loops.safetensors")).tensors()
    }

    func relativeError(_ a: Tensor, _ b: Tensor) -> Float {
        let scale = max(b.scalars.map { Swift.abs($0) }.max() ?? 0, 1e-12)
        return zip(a.scalars, b.scalars).map { Swift.abs($0 - $1) }.max()! / scale
    }

    /// The recorded noise of configuration `name`.
    func recordedNoise(_ name: String) -> LatentNoise {
        let io = self.io
        return LatentNoise { purpose, sample, _ in
            switch purpose {
            case .initial: return try io["\(name)/noise_initial"]!.sliced(sample..<sample + 1, axis: 0)
            case let .background(step): return try io["\(name)/noise_background\(step)"]!.sliced(sample..<sample + 1, axis: 0)
            }
        }
    }

    static func configuration(_ name: String) throws -> (any DiffusionSolver, LatentEditSettings) {
        let schedule = try NoiseSchedule.scaledLinear()
        var s = LatentEditSettings()
        s.samples = 2
        s.batchSize = 2
        switch name {
        case "dpm_eps":
            return (try DPMSolverMultistep(schedule: schedule, steps: 12), s)
        case "dpm_v_shrink":
            s.maskDilations = 2
            return (try DPMSolverMultistep(schedule: schedule, steps: 10, predictionType: .vPrediction), s)
        case "ddim_eps":
            s.start = .strength(0.8)
            return (try DDIMSolver(schedule: schedule, steps: 10), s)
        default:   // "official": text_editing_SD2.py's DDIM, pure-noise start, 25 % skipped, blend at t
            s.start = .skipFraction(0.25)
            s.initialLatent = .noise
            s.blendLevel = .next
            return (try DDIMSolver(schedule: schedule, steps: 10, stepsOffset: 0), s)
        }
    }

    @Test(arguments: ["dpm_eps", "dpm_v_shrink", "ddim_eps", "official"])
    func loopMatchesTheReferenceArithmetic(name: String) throws {
        let (solver, settings) = try Self.configuration(name)
        let editor = try BlendedLatentDiffusionEditor(denoiser: AnalyticDenoiser(), autoencoder: AnalyticAutoencoder(),
                                                      solver: solver, settings: settings)
        #expect(editor.startIndex == Int(io["\(name)/start"]!.scalars[0]))
        let h = 8, w = 8
        let masks = try LatentMasks.progressive(LatentMasks.downsample(io["mask"]!, height: h, width: w),
                                                dilations: settings.maskDilations)
        #expect(try Tensor.concatenate(masks, axis: 0).scalars == io["\(name)/masks"]!.scalars)
        let samples = try editor.edit(image: io["image"]!, mask: io["mask"]!, context: io["context"]!,
                                      unconditionalContext: io["uncond"]!, noise: recordedNoise(name))
        #expect(samples.map(\.index) == [0, 1])
        let latents = try Tensor.concatenate(samples.map { $0.latent! }, axis: 0)
        let images = try Tensor.concatenate(samples.map(\.image), axis: 0)
        #expect(relativeError(latents, io["\(name)/latents"]!) < 1e-4, "\(name) latents: \(relativeError(latents, io["\(name)/latents"]!))")
        #expect(relativeError(images, io["\(name)/images"]!) < 1e-4)
    }

    @Test(arguments: ["dpm_eps", "dpm_v_shrink", "ddim_eps", "official"])
    func outsideTheMaskTheLatentIsTheSourceNoisedToTheBlendLevel(name: String) throws {
        let (solver, settings) = try Self.configuration(name)
        let editor = try BlendedLatentDiffusionEditor(denoiser: AnalyticDenoiser(), autoencoder: AnalyticAutoencoder(),
                                                      solver: solver, settings: settings)
        let source = try AnalyticAutoencoder().encode(io["image"]!)
        let masks = try LatentMasks.progressive(LatentMasks.downsample(io["mask"]!, height: 8, width: 8),
                                                dilations: settings.maskDilations)
        var checked = 0, outside = 0
        _ = try editor.edit(image: io["image"]!, mask: io["mask"]!, context: io["context"]!,
                            unconditionalContext: io["uncond"]!, noise: recordedNoise(name)) { p in
            let index = editor.startIndex + p.step - 1
            let level = settings.blendLevel == .same ? try solver.outputAlphaBar(at: index) : try solver.inputAlphaBar(at: index)
            let mask = masks[LatentMasks.progressiveIndex(step: p.step - 1, steps: p.steps, count: masks.count)].scalars
            for i in 0..<2 {
                let noise = try io["\(name)/noise_background\(index)"]!.sliced(i..<i + 1, axis: 0)
                let expected = try NoiseSchedule.addNoise(source, noise: noise, alphaBar: level).scalars
                let got = try p.sample.sliced(i..<i + 1, axis: 0).scalars
                for (j, value) in got.enumerated() where mask[j % 64] == 0 {
                    #expect(value == expected[j])
                    outside += 1
                }
            }
            checked += 1
        }
        #expect(checked == solver.stepCount - editor.startIndex && outside > 0)
    }

    @Test func eachSampleDependsOnlyOnTheSeedAndItsIndex() throws {
        let schedule = try NoiseSchedule.scaledLinear()
        func run(samples: Int, batch: Int) throws -> [EditedSample] {
            var s = LatentEditSettings()
            s.samples = samples
            s.batchSize = batch
            s.seed = 5
            let editor = try BlendedLatentDiffusionEditor(denoiser: AnalyticDenoiser(), autoencoder: AnalyticAutoencoder(),
                                                          solver: DPMSolverMultistep(schedule: schedule, steps: 8), settings: s)
            return try editor.edit(image: io["image"]!, mask: io["mask"]!, context: io["context"]!, unconditionalContext: io["uncond"]!)
        }
        let three = try run(samples: 3, batch: 2), one = try run(samples: 1, batch: 1), threeSingly = try run(samples: 3, batch: 1)
        #expect(three[0].latent!.scalars == one[0].latent!.scalars)
        for i in 0..<3 { #expect(three[i].latent!.scalars == threeSingly[i].latent!.scalars) }
        #expect(three[0].latent!.scalars != three[1].latent!.scalars)
    }

    @Test func guidanceScaleOneRunsTheConditionalModelAlone() throws {
        let schedule = try NoiseSchedule.scaledLinear()
        func run(_ scale: Float) throws -> Tensor {
            var s = LatentEditSettings()
            s.guidanceScale = scale
            let editor = try BlendedLatentDiffusionEditor(denoiser: AnalyticDenoiser(), autoencoder: AnalyticAutoencoder(),
                                                          solver: DPMSolverMultistep(schedule: schedule, steps: 6), settings: s)
            return try editor.edit(image: io["image"]!, mask: io["mask"]!, context: io["context"]!,
                                   unconditionalContext: io["uncond"]!)[0].latent!
        }
        // u + 1.0001·(c − u) is within 1e-4·|c − u| of c: the conditional path uses c, not u.
        #expect(relativeError(try run(1), try run(1.0001)) < 1e-3)
        #expect(relativeError(try run(1), try run(7.5)) > 1e-2)
    }

    @Test func latentMasksFollowPillowAndScipy() throws {
        #expect(try LatentMasks.downsample(io["odd_mask"]!, height: 5, width: 4).scalars == io["odd_mask_down"]!.scalars)
        var dot = [Float](repeating: 0, count: 25)
        dot[0] = 1
        let dilated = try LatentMasks.dilate(Tensor(shape: [1, 1, 5, 5], scalars: dot), size: 3).scalars
        #expect(dilated == [1, 1, 0, 0, 0, 1, 1, 0, 0, 0] + Array(repeating: 0, count: 15))
        let masks = try LatentMasks.progressive(Tensor(shape: [1, 1, 5, 5], scalars: dot), dilations: 2)
        #expect(masks.map { $0.scalars.reduce(0, +) } == [9, 4, 1])   // 5×5, 3×3 and the dot, clipped at the corner
        // LDM's schedule: 10 steps over 3 masks change at steps 4 and 8.
        #expect((0..<10).map { LatentMasks.progressiveIndex(step: $0, steps: 10, count: 3) } == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
        #expect(throws: EditError.self) { try LatentMasks.dilate(Tensor.zeros([1, 1, 3, 3]), size: 2) }
        #expect(throws: EditError.self) { try LatentMasks.downsample(Tensor.zeros([1, 3, 3]), height: 2, width: 2) }
    }

    @Test func badInputsAndSettingsThrow() throws {
        let schedule = try NoiseSchedule.scaledLinear()
        let solver = try DPMSolverMultistep(schedule: schedule, steps: 8)
        func editor(_ change: (inout LatentEditSettings) -> Void) throws -> BlendedLatentDiffusionEditor {
            var s = LatentEditSettings()
            change(&s)
            return try BlendedLatentDiffusionEditor(denoiser: AnalyticDenoiser(), autoencoder: AnalyticAutoencoder(), solver: solver, settings: s)
        }
        #expect(throws: EditError.self) { try editor { $0.start = .strength(0) } }
        #expect(throws: EditError.self) { try editor { $0.start = .strength(0.1) } }     // int(0.8) = 0 steps
        #expect(throws: EditError.self) { try editor { $0.start = .skipFraction(1) } }
        #expect(throws: EditError.self) { try editor { $0.guidanceScale = .nan } }
        #expect(throws: EditError.self) { try editor { $0.samples = 0 } }
        #expect(throws: EditError.self) { try editor { $0.batchSize = 0 } }
        #expect(throws: EditError.self) { try editor { $0.maskDilations = -1 } }
        let e = try editor { _ in }
        let image = io["image"]!, mask = io["mask"]!, c = io["context"]!, u = io["uncond"]!
        #expect(throws: EditError.self) { try e.edit(image: Tensor.zeros([1, 3, 15, 16]), mask: mask, context: c, unconditionalContext: u) }
        #expect(throws: EditError.self) { try e.edit(image: image, mask: Tensor.zeros([1, 1, 8, 8]), context: c, unconditionalContext: u) }
        #expect(throws: EditError.self) { try e.edit(image: image, mask: mask, context: c, unconditionalContext: Tensor.zeros([1, 5, 7])) }
        #expect(throws: EditError.self) { try e.edit(image: image, mask: Tensor.zeros([1, 1, 16, 16]), context: c, unconditionalContext: u) }
        let wrongNoise = LatentNoise { _, _, _ in try Tensor.zeros([1, 4, 4, 4]) }
        #expect(throws: EditError.self) { try e.edit(image: image, mask: mask, context: c, unconditionalContext: u, noise: wrongNoise) }
    }
}
