import Testing
import BlendCheckpoint
import BlendDiffusion
import BlendModels
import BlendTensor
@testable import BlendEditor

/// Blended Latent Diffusion's background reconstruction (latent optimisation with Adam).
@Suite struct BackgroundReconstructionTests {
    static func randn(_ shape: [Int], seed: UInt64, std: Float = 1) throws -> Tensor {
        var rng = SplitMix64(seed: seed)
        return try Tensor.randomNormal(shape, std: std, using: &rng)
    }

    /// A mask `[1, 1, 16, 16]` with a 8×8 square set in the middle.
    static func squareMask() throws -> Tensor {
        try Tensor(shape: [1, 1, 16, 16]) { m in
            for i in m.indices { m[i] = (4..<12).contains(i / 16) && (4..<12).contains(i % 16) ? 1 : 0 }
        }
    }

    /// A tiny random-weight AutoencoderKL (two levels of 8 and 16 channels, a 2× latent grid).
    static func tinyVAE() throws -> StableDiffusionAutoencoder {
        var config = AutoencoderKLConfig()
        config.downBlockTypes = ["DownEncoderBlock2D", "DownEncoderBlock2D"]
        config.upBlockTypes = ["UpDecoderBlock2D", "UpDecoderBlock2D"]
        config.blockOutChannels = [8, 16]
        config.normNumGroups = 4
        var rng = SplitMix64(seed: 11)
        let weights = ModelWeights(synthesizing: { key, shape in
            let fanIn = shape.count > 1 ? shape.dropFirst().reduce(1, *) : 1
            let t = try Tensor.randomNormal(shape, std: 1 / Float(fanIn).squareRoot(), using: &rng)
            // Norm scales near 1 so the signal survives the stack.
            return key.contains("norm") && key.hasSuffix("weight") ? t * 0.1 + 1 : t
        }, modelName: "VAE")
        return StableDiffusionAutoencoder(vae: try AutoencoderKL(config: config, weights: weights, layout: .diffusers))
    }

    /// The loss (with both terms) and the reconstruction's distance to the source outside the
    /// mask go down on a real (tiny) VAE decoder; the result is the decoding of the latent.
    @Test func lossDecreasesOnATinyVAE() throws {
        let vae = try Self.tinyVAE()
        let source = try Self.randn([1, 3, 16, 16], seed: 1, std: 0.5).clamped(min: -1, max: 1)
        let mask = try Self.squareMask()
        let latent = try Self.randn([1, 4, 8, 8], seed: 2)
        let edited = try vae.decode(latent)
        var seen: [Float] = []
        let result = try BackgroundReconstruction(steps: 12)
            .reconstruct(latent: latent, edited: edited, source: source, mask: mask, decode: vae.decode) { _, loss in
                seen.append(loss)
            }
        #expect(result.losses.count == 13)
        #expect(Array(result.losses.prefix(12)) == seen)
        #expect(result.losses.last! < 0.9 * result.losses.first!, "\(result.losses)")
        func outsideError(_ image: Tensor) throws -> Float {
            let d = try (image - source) * (1 - mask)
            return try (d * d).sum().scalar
        }
        #expect(try outsideError(result.image) < outsideError(edited))
        #expect(try result.image.scalars == vae.decode(result.latent).scalars)
    }

    /// dL/dD formed in closed form and pulled back through the decoder equals central
    /// differences of L(z) (the analytic 2× autoencoder, double-checked per element).
    @Test func gradientMatchesFiniteDifferences() throws {
        let ae = AnalyticAutoencoder()
        let rec = BackgroundReconstruction(steps: 1)
        let source = try Self.randn([1, 3, 16, 16], seed: 3, std: 0.5)
        let edited = try Self.randn([1, 3, 16, 16], seed: 4, std: 0.5)
        let mask = try Self.squareMask() * 0.8 + 0.1   // soft values weigh both terms
        let z = try Self.randn([1, 4, 8, 8], seed: 5, std: 0.2)
        let leaf = z.requiringGradient()
        let decoded = try ae.decode(leaf)
        let seed = try rec.lossAndGradient(decoded: decoded, edited: edited, source: source, mask: mask).1
        let g = try gradients(of: decoded, withRespectTo: [leaf], seed: seed)[0]
        let h: Float = 1e-2
        var rng = SplitMix64(seed: 6)
        for _ in 0..<12 {
            let i = Int(rng.next() % UInt64(z.count))
            func loss(_ delta: Float) throws -> Float {
                var values = z.scalars
                values[i] += delta
                let zi = try Tensor(shape: z.shape, scalars: values)
                return try rec.lossAndGradient(decoded: ae.decode(zi), edited: edited, source: source, mask: mask).0
            }
            let numeric = try (loss(h) - loss(-h)) / (2 * h)
            let analytic = g.scalars[i]
            #expect(abs(numeric - analytic) <= 1e-3 * max(1, abs(numeric)), "element \(i): \(numeric) vs \(analytic)")
        }
    }

    /// Adam's first step moves every element with a non-zero gradient by the learning rate
    /// against the gradient's sign (m̂/√v̂ = g/|g|), as torch.optim.Adam does.
    @Test func firstStepIsAdams() throws {
        let ae = AnalyticAutoencoder()
        let source = try Self.randn([1, 3, 16, 16], seed: 7, std: 0.5)
        let mask = try Self.squareMask()
        let z = try Self.randn([1, 4, 8, 8], seed: 8, std: 0.2)
        let edited = try ae.decode(z)
        var rec = BackgroundReconstruction(steps: 1)
        rec.learningRate = 0.05
        let leaf = z.requiringGradient()
        let decoded = try ae.decode(leaf)
        let seed = try rec.lossAndGradient(decoded: decoded, edited: edited, source: source, mask: mask).1
        let g = try gradients(of: decoded, withRespectTo: [leaf], seed: seed)[0].scalars
        let moved = try rec.reconstruct(latent: z, edited: edited, source: source, mask: mask, decode: ae.decode).latent.scalars
        for i in g.indices where abs(g[i]) > 1e-4 {
            let expected = z.scalars[i] - 0.05 * (g[i] > 0 ? 1 : -1)
            #expect(abs(moved[i] - expected) < 1e-5, "element \(i)")
        }
    }

    /// Zero steps change nothing; the editor's option reconstructs every sample.
    @Test func zeroStepsAndTheEditorsOption() throws {
        let ae = AnalyticAutoencoder()
        let z = try Self.randn([1, 4, 8, 8], seed: 9, std: 0.2)
        let image = try ae.decode(z)
        let none = try BackgroundReconstruction(steps: 0)
            .reconstruct(latent: z, edited: image, source: image, mask: Self.squareMask(), decode: ae.decode)
        #expect(none.losses.isEmpty)
        #expect(none.latent.scalars == z.scalars)

        var settings = LatentEditSettings()
        settings.backgroundReconstructionSteps = 5
        settings.samples = 2
        let solver = try DDIMSolver(schedule: NoiseSchedule.scaledLinear(), steps: 4)
        let editor = try BlendedLatentDiffusionEditor(denoiser: AnalyticDenoiser(), autoencoder: ae, solver: solver, settings: settings)
        let source = try Self.randn([1, 3, 16, 16], seed: 10, std: 0.5).clamped(min: -1, max: 1)
        let context = try Self.randn([1, 4, 6], seed: 12)
        let samples = try editor.edit(image: source, mask: Self.squareMask(), context: context,
                                      unconditionalContext: context * 0)
        #expect(samples.count == 2)
        var plain = settings
        plain.backgroundReconstructionSteps = 0
        let unreconstructed = try BlendedLatentDiffusionEditor(denoiser: AnalyticDenoiser(), autoencoder: ae, solver: solver, settings: plain)
            .edit(image: source, mask: Self.squareMask(), context: context, unconditionalContext: context * 0)
        #expect(unreconstructed[0].reconstructionLosses.isEmpty)
        #expect(unreconstructed[0].latent!.scalars != samples[0].latent!.scalars)
        for sample in samples {
            #expect(sample.reconstructionLosses.count == 6)
            #expect(sample.reconstructionLosses.allSatisfy { $0.isFinite })
            #expect(try sample.image.scalars == ae.decode(sample.latent!).scalars)
        }
    }

    @Test func badInputsAndSettingsThrow() throws {
        let ae = AnalyticAutoencoder()
        let z = try Self.randn([1, 4, 8, 8], seed: 13)
        let image = try ae.decode(z)
        let mask = try Self.squareMask()
        #expect(throws: EditError.self) { try BackgroundReconstruction(steps: -1).validate() }
        var badRate = BackgroundReconstruction(steps: 2)
        badRate.learningRate = .nan
        #expect(throws: EditError.self) { try badRate.validate() }
        let rec = BackgroundReconstruction(steps: 2)
        #expect(throws: EditError.self) {
            try rec.reconstruct(latent: z, edited: image, source: image, mask: Tensor.zeros([1, 1, 8, 8]), decode: ae.decode)
        }
        #expect(throws: EditError.self) {
            try rec.reconstruct(latent: Tensor.concatenate([z, z], axis: 0), edited: image, source: image, mask: mask, decode: ae.decode)
        }
        #expect(throws: EditError.self) {
            try rec.reconstruct(latent: z, edited: image, source: Tensor.zeros([1, 3, 8, 8]), mask: mask, decode: ae.decode)
        }
        var settings = LatentEditSettings()
        settings.backgroundReconstructionSteps = -3
        #expect(throws: EditError.self) { try settings.validate() }
    }
}
