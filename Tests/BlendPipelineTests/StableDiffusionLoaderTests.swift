import Foundation
import Testing
import BlendCheckpoint
import BlendDiffusion
import BlendEditor
import BlendModels
import BlendPipelineTestSupport
import BlendTensor
import BlendTestSupport
@testable import BlendPipeline

@Suite struct StableDiffusionLoaderTests {
    let tiny = sharedTinySD

    func relativeError(_ a: Tensor, _ b: Tensor) -> Float {
        let scale = max(b.scalars.map { Swift.abs($0) }.max() ?? 0, 1e-12)
        return zip(a.scalars, b.scalars).map { Swift.abs($0 - $1) }.max()! / scale
    }

    @Test(arguments: ["sd1", "sd2"])
    func bothLayoutsLoadTheSameModel(variant: String) throws {
        let folder = try tiny.load(variant, .diffusers), single = try tiny.load(variant, .compVis)
        #expect(folder.info.layout == .diffusers && single.info.layout == .compVis)
        #expect(folder.padding == (variant == "sd1" ? .endOfText : .zero) && single.padding == folder.padding)
        let context = try folder.context(for: "a red ball", tokenizer: TinyStableDiffusion.tokenizer)
        let width = variant == "sd1" ? 16 : 24
        #expect(context.shape == [1, 77, width])
        #expect(relativeError(try single.context(for: "a red ball", tokenizer: TinyStableDiffusion.tokenizer), context) < 1e-5)
        let x = randn([2, 4, 8, 8], seed: 3)
        let both = try Tensor.concatenate([context, context], axis: 0)
        let eps = try folder.denoiser.predict(x, timestep: 500, context: both)
        #expect(eps.shape == [2, 4, 8, 8])
        #expect(relativeError(try single.denoiser.predict(x, timestep: 500, context: both), eps) < 1e-4)
        let image = randn([1, 3, 16, 16], seed: 4).clamped(min: -1, max: 1)
        let z = try folder.autoencoder.encode(image)
        #expect(z.shape == [1, 4, 8, 8] && folder.autoencoder.downsamplingFactor == 2)
        #expect(relativeError(try single.autoencoder.encode(image), z) < 1e-4)
        // The adapters: 0.18215 · the posterior mean, and the decoder of z / 0.18215.
        #expect(relativeError(z, try folder.vae.encode(image).mean * 0.18215) < 1e-6)
        #expect(relativeError(try folder.autoencoder.decode(z), try folder.vae.decode(z * (1 / 0.18215))) < 1e-6)
    }

    @Test func predictionTypeComesFromTheSchedulerConfigTheFileNameOrTheOption() throws {
        #expect(try tiny.load("sd1", .diffusers).predictionType == .epsilon)
        #expect(try tiny.load("sd2", .diffusers).predictionType == .vPrediction)      // SD 2.1's scheduler_config.json
        #expect(try tiny.load("sd2", .compVis).predictionType == .epsilon)
        #expect(try tiny.load("sd2", .compVis, predictionType: .vPrediction).predictionType == .vPrediction)
        #expect(try tiny.load("sd2", .diffusers, predictionType: .epsilon).predictionType == .epsilon)
        #expect(StableDiffusionLoader.defaultPredictionType(fileName: "v2-1_768-ema-pruned.safetensors", version: .v2) == .vPrediction)
        #expect(StableDiffusionLoader.defaultPredictionType(fileName: "v2-1_512-ema-pruned.safetensors", version: .v2) == .epsilon)
        #expect(StableDiffusionLoader.defaultPredictionType(fileName: "v1-5-pruned-emaonly.safetensors", version: .v1) == .epsilon)
        #expect(try tiny.load("sd1", .compVis).schedule == NoiseSchedule.scaledLinear())
    }

    /// A 16×16 image whose left 10 columns are to change.
    static func imageAndMask() throws -> (Tensor, Tensor) {
        let image = randn([1, 3, 16, 16], seed: 21).clamped(min: -1, max: 1)
        let mask = try Tensor(shape: [1, 1, 16, 16], scalars: (0..<256).map { $0 % 16 < 10 ? 1 : 0 })
        return (image, mask)
    }

    func edit(_ models: StableDiffusionModels, solver kind: LatentSolverKind = .dpmSolverPlusPlus2M, seed: UInt64,
              progress: (EditProgress, any DiffusionSolver, Int) throws -> Void = { _, _, _ in }) throws -> [EditedSample] {
        var settings = LatentEditSettings()
        settings.samples = 2
        settings.batchSize = 2
        settings.seed = seed
        let solver = try models.makeSolver(kind, steps: 6)
        let editor = try BlendedLatentDiffusionEditor(denoiser: models.denoiser, autoencoder: models.autoencoder,
                                                      solver: solver, settings: settings)
        let (image, mask) = try Self.imageAndMask()
        let tokenizer = TinyStableDiffusion.tokenizer
        return try editor.edit(image: image, mask: mask, context: models.context(for: "a red ball", tokenizer: tokenizer),
                               unconditionalContext: models.context(for: "", tokenizer: tokenizer)) {
            try progress($0, solver, editor.startIndex)
        }
    }

    /// The whole latent edit on real (tiny) SD networks, with classifier-free guidance: after
    /// every step the latent outside the mask is the source latent noised to the level the
    /// step reached with the seed's blending noise, the last one the source itself.
    @Test(arguments: ["sd1", "sd2"], StableDiffusionKeyLayout.allCases)
    func latentEditKeepsTheBackground(variant: String, layout: StableDiffusionKeyLayout) throws {
        let models = try tiny.load(variant, layout)
        let (image, _) = try Self.imageAndMask()
        let source = try models.autoencoder.encode(image)
        var steps = 0, outside = 0
        let samples = try edit(models, seed: 9) { p, solver, start in
            let index = start + p.step - 1
            for i in 0..<2 {
                var noise = NoiseSource(seed: 9, stream: 4, iteration: i, timestep: index)
                let expected = try NoiseSchedule.addNoise(source, noise: noise.gaussian([1, 4, 8, 8]),
                                                          alphaBar: solver.outputAlphaBar(at: index)).scalars
                for (j, value) in try p.sample.sliced(i..<i + 1, axis: 0).scalars.enumerated() where j % 8 >= 5 {
                    #expect(value == expected[j])
                    outside += 1
                }
            }
            steps += 1
        }
        #expect(steps == 4 && outside == 4 * 2 * 4 * 8 * 3)   // int(6 · 0.75) steps; 3 latent columns outside
        #expect(samples.map(\.index) == [0, 1])
        for sample in samples {
            let latent = sample.latent!.scalars, z0 = source.scalars
            #expect((0..<latent.count).filter { $0 % 8 >= 5 }.allSatisfy { latent[$0] == z0[$0] })
            #expect((0..<latent.count).contains { $0 % 8 < 5 && latent[$0] != z0[$0] })
            #expect(sample.image.shape == [1, 3, 16, 16] && sample.image.scalars.allSatisfy(\.isFinite))
        }
    }

    @Test(arguments: StableDiffusionKeyLayout.allCases)
    func latentEditIsDeterministicForASeed(layout: StableDiffusionKeyLayout) throws {
        let models = try tiny.load("sd1", layout)
        let a = try edit(models, solver: .ddim, seed: 5), b = try edit(models, solver: .ddim, seed: 5)
        let c = try edit(models, solver: .ddim, seed: 6)
        for i in 0..<2 {
            #expect(a[i].latent!.scalars == b[i].latent!.scalars && a[i].image.scalars == b[i].image.scalars)
            #expect(a[i].latent!.scalars != c[i].latent!.scalars)
        }
        #expect(a[0].latent!.scalars != a[1].latent!.scalars)
        // The other layout of the same weights gives the same edit.
        let other = try edit(tiny.load("sd1", layout == .diffusers ? .compVis : .diffusers), solver: .ddim, seed: 5)
        #expect(relativeError(other[0].latent!, a[0].latent!) < 1e-3)
    }

    @Test func partsThatDoNotFitSayWhatIsWrong() throws {
        let scratch = tiny.directory.appendingPathComponent("bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        // SD 1.x's UNet (16-wide context) with SD 2.x's 24-wide text encoder.
        let mixed = scratch.appendingPathComponent("mixed.safetensors").path
        try TinyStableDiffusion.merge([TinyStableDiffusion.unetVAE.appendingPathComponent("unet_vae_sd1.ckpt").path,
                                       TinyStableDiffusion.parts.appendingPathComponent("text_sd2_compvis.safetensors").path], into: mixed)
        // The tiny configs: SD 1.x's UNet and VAE, SD 2.x's text encoder.
        let configs = scratch.appendingPathComponent("configs").path
        try FileManager.default.copyItem(atPath: tiny.folder("sd1"), toPath: configs)
        try FileManager.default.removeItem(atPath: configs + "/text_encoder/config.json")
        try FileManager.default.copyItem(atPath: tiny.folder("sd2") + "/text_encoder/config.json", toPath: configs + "/text_encoder/config.json")
        #expect(throws: StableDiffusionLoadingError.mismatchedContext(path: mixed, unet: 16, textEncoder: 24)) {
            try StableDiffusionLoader.load(path: mixed, options: StableDiffusionLoadOptions(configFolder: configs))
        }
        // A single file whose shapes SD's usual settings do not fit (the tiny models' 8 groups
        // per norm), without --sd-config: the error says to pass one.
        do {
            _ = try StableDiffusionLoader.load(path: tiny.singleFile("sd1"))
            Issue.record("expected an error")
        } catch let ModelError.invalidConfig(detail) {
            #expect(detail.contains("norm_num_groups") && detail.contains("read off the shapes") && detail.contains("pass --sd-config"), "\(detail)")
        }
        _ = try StableDiffusionLoader.load(path: tiny.singleFile("sd1"), options: StableDiffusionLoadOptions(configFolder: tiny.folder("sd1")))
        // A UNet and VAE alone.
        let unetVAE = TinyStableDiffusion.unetVAE.appendingPathComponent("unet_vae_sd1_diffusers").path
        #expect(throws: StableDiffusionFileError.missingComponent(path: unetVAE, component: "text encoder")) {
            try StableDiffusionLoader.load(path: unetVAE)
        }
        // A scheduler config of another schedule.
        let folder = scratch.appendingPathComponent("linear").path
        try FileManager.default.copyItem(atPath: tiny.folder("sd1"), toPath: folder)
        let config = URL(fileURLWithPath: folder).appendingPathComponent("scheduler/scheduler_config.json")
        try Data(#"{"beta_schedule": "linear", "prediction_type": "epsilon"}"#.utf8).write(to: config)
        #expect(throws: StableDiffusionLoadingError.self) { try StableDiffusionLoader.load(path: folder) }
        try Data(#"{"beta_schedule": "scaled_linear", "prediction_type": "sample"}"#.utf8).write(to: config)
        #expect(throws: StableDiffusionLoadingError.self) { try StableDiffusionLoader.load(path: folder) }
        // ... which the prediction type, given, stands in for (as the message says).
        do {
            _ = try StableDiffusionLoader.load(path: folder)
        } catch let error as StableDiffusionLoadingError {
            #expect(error.description.contains("give it (--prediction-type epsilon|v; predictionType in the web API)"), "\(error)")
        }
        #expect(try StableDiffusionLoader.load(path: folder, options: StableDiffusionLoadOptions(predictionType: .vPrediction)).predictionType
                == .vPrediction)
        try Data("not json".utf8).write(to: config)
        #expect(throws: DiffusersFolderError.self) { try StableDiffusionLoader.load(path: folder) }
    }
}
