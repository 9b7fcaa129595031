import Foundation
import Testing
import BlendCheckpoint
import BlendDiffusion
import BlendModels
import BlendTensor
@testable import BlendEditor

/// One guided step against the reference editor's formulas (scripts/make-editor-fixtures.py),
/// on the tiny UNet and CLIP of the model parity fixtures.
@Suite struct GuidedStepTests {
    static let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent()

    static func load(_ url: URL) throws -> [String: Tensor] {
        try CheckpointFile.load(url: url).tensors()
    }

    let io: [String: Tensor]
    let models: EditorModels

    init() throws {
        let fixtures = Self.here.deletingLastPathComponent().appendingPathComponent("BlendModelsTests/Fixtures")
        let config = try JSONDecoder().decode(UNetConfig.self, from: Data(contentsOf: fixtures.appendingPathComponent("unet_tiny.json")))
        let unet = try UNetModel(config: config, weights: ModelWeights(Self.load(fixtures.appendingPathComponent("unet_tiny.pt")), modelName: "UNet"))
        let clip = try ClipModel(weights: ModelWeights(Self.load(fixtures.appendingPathComponent("clip_tiny.pt")), modelName: "CLIP"))
        models = EditorModels(unet: unet, clip: clip)
        io = try Self.load(Self.here.appendingPathComponent("Fixtures/guided_step.safetensors"))
    }

    func expectClose(_ a: Tensor, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let b = io[name]!
        let scale = max(b.scalars.map { Swift.abs($0) }.max()!, 1e-6)
        let worst = zip(a.scalars, b.scalars).map { Swift.abs($0 - $1) }.max()! / scale
        #expect(worst < 1e-4, "\(name): relative error \(worst)", sourceLocation: sourceLocation)
    }

    @Test(arguments: [false, true], [1, 2, 3, 16])
    func guidedStepMatchesTheReference(ddim: Bool, threads: Int) throws { try EngineThreads.withCount(threads) {
        var settings = EditSettings(prompt: "a prompt")
        settings.pixel.ddim = ddim
        settings.pixel.augmentations = 1
        let editor = try BlendedDiffusionEditor(models: models, settings: settings)
        let tokens = io["tokens"]!.scalars.map { Int($0) }
        let text = try editor.promptEmbedding(tokens: tokens)
        let t = Int(io["timestep"]!.scalars[0])
        let (x, source, mask) = (io["x"]!, io["source"]!, io["mask"]!)
        var rng = NoiseSource(seed: 0)
        let guided = try editor.guidedPrediction(x, t: t, batch: 1, source: source, mask: mask, text: text,
                                                 augment: ClipAugmentations(outputSize: 32, count: 1), rng: &rng)
        let d = editor.diffusion
        let name = ddim ? "ddim" : "ddpm"
        let sample = ddim
            ? try d.ddimStep(guided.prediction, xt: x, t: t, eta: 0, noise: io["step_noise"]!)
            : try d.ddpmStep(guided.prediction, t: t, noise: io["step_noise"]!)
        expectClose(sample, "\(name)_sample")
        expectClose(guided.prediction.predXStart, "\(name)_pred_xstart")
        let background = try d.qSample(source, t: t, noise: io["background_noise"]!)
        expectClose(try blendBackground(sample: sample, background: background, mask: mask), "\(name)_blended")
        // The guidance moved the sample: the unguided step differs.
        let plain = try d.pMeanVariance(modelOutput: models.unet(x, timesteps: [d.modelTimestep(t)]), xt: x, t: t)
        let unguided = ddim ? try d.ddimStep(plain, xt: x, t: t, noise: io["step_noise"]!)
            : try d.ddpmStep(plain, t: t, noise: io["step_noise"]!)
        #expect(unguided.scalars != sample.scalars)
    } }
}

/// The augmentation geometry against kornia's own warps for fixed parameters
/// (scripts/make-editor-fixtures.py, kornia 0.9 `warp_affine`/`warp_perspective`).
@Suite struct AugmentationGeometryTests {
    @Test func affineAndPerspectiveWarpsMatchKornia() throws {
        let io = try GuidedStepTests.load(GuidedStepTests.here.appendingPathComponent("Fixtures/augmentations.safetensors"))
        let augment = ClipAugmentations(outputSize: 16, count: 2)
        let p = io["params"]!.scalars
        let affine = try Tensor(shape: [1, 2, 3], scalars: augment.affineMatrix(degrees: p[0], tx: p[1], ty: p[2]))
        let warped = try warpAffine(io["image"]!, matrices: affine, padding: .border)
        let f = io["fractions"]!.scalars
        let fractions = (0..<4).map { (f[2 * $0], f[2 * $0 + 1]) }
        let homography = try Tensor(shape: [1, 3, 3], scalars: augment.perspectiveHomography(fractions: fractions))
        let perspective = try warpPerspective(io["image"]!, homographies: homography, padding: .zeros)
        for (got, name) in [(warped, "affine"), (perspective, "perspective")] {
            let worst = zip(got.scalars, io[name]!.scalars).map { Swift.abs($0 - $1) }.max()!
            #expect(worst < 1e-4, "\(name): max abs difference \(worst)")
        }
    }
}
