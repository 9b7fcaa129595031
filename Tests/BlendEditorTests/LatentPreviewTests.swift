import Testing
import BlendDiffusion
import BlendTensor
@testable import BlendEditor

/// The latent edit's live preview: a least-squares colour map from latents to RGB, fitted to
/// the source, applied to each step's x0 estimate.
@Suite struct LatentPreviewTests {
    static func randn(_ shape: [Int], seed: UInt64, std: Float = 1) throws -> Tensor {
        var rng = SplitMix64(seed: seed)
        return try Tensor.randomNormal(shape, std: std, using: &rng)
    }

    /// `grid` `[N, 3, h, w]` with every cell repeated over an f×f block.
    static func blocks(_ grid: Tensor, factor f: Int) throws -> Tensor {
        let n = grid.dim(0), h = grid.dim(2), w = grid.dim(3)
        let values = grid.scalars
        return try Tensor(shape: [n, 3, f * h, f * w]) { out in
            for plane in 0..<n * 3 {
                for y in 0..<f * h {
                    for x in 0..<f * w { out[(plane * f * h + y) * f * w + x] = values[(plane * h + y / f) * w + x / f] }
                }
            }
        }
    }

    static func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).map { Swift.abs($0 - $1) }.max() ?? .infinity
    }

    /// Images made from latents by a known affine map (constant over each f×f block) give that
    /// map back, for one and for several images, and with a factor other than 8.
    @Test(arguments: [(1, 8, 4), (2, 3, 4), (1, 2, 6)])
    func theFitRecoversAKnownAffineMap(batch: Int, factor: Int, channels: Int) throws {
        let latent = try Self.randn([batch, channels, 6, 5], seed: 7)
        let weights = try Self.randn([3 * channels], seed: 8, std: 0.3).scalars
        let bias: [Float] = [0.1, -0.2, 0.05]
        let known = try LatentPreview(channels: channels, weights: weights, bias: bias, factor: factor)
        let image = try Self.blocks(known.colors(latent), factor: factor)
        let fitted = try LatentPreview.fit(latent: latent, image: image, factor: factor)
        #expect(fitted.channels == channels && fitted.factor == factor)
        #expect(Self.maxDifference(fitted.weights, weights) < 1e-4, "\(fitted.weights) vs \(weights)")
        #expect(Self.maxDifference(fitted.bias, bias) < 1e-4, "\(fitted.bias) vs \(bias)")
        // Applied to the latent, it gives the images back (they lie inside [-1, 1] nowhere
        // near everywhere, so compare the unclamped colours).
        #expect(try Self.maxDifference(fitted.colors(latent).scalars, known.colors(latent).scalars) < 1e-4)
    }

    /// A least-squares fit, not an interpolation: with noise added to the images the fitted map
    /// is no worse on them than the true one (it minimises the squared error).
    @Test func theFitMinimisesTheSquaredError() throws {
        let latent = try Self.randn([1, 4, 8, 8], seed: 1)
        let known = try LatentPreview(channels: 4, weights: Self.randn([12], seed: 2, std: 0.2).scalars, bias: [0, 0.1, -0.1], factor: 2)
        let grid = try known.colors(latent) + Self.randn([1, 3, 8, 8], seed: 3, std: 0.1)
        let fitted = try LatentPreview.fit(latent: latent, image: Self.blocks(grid, factor: 2), factor: 2)
        func error(_ map: LatentPreview) throws -> Float {
            let d = try map.colors(latent) - grid
            return try (d * d).sum().scalar
        }
        #expect(try error(fitted) <= error(known))
        #expect(try error(fitted) > 0)
    }

    /// The preview is `[N, 3, f·h, f·w]`, clamped to [-1, 1], and bilinear between cell centres.
    @Test func thePreviewHasTheImageSizeAndRange() throws {
        let map = try LatentPreview(channels: 4, weights: [2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0], bias: [0, 0, 0], factor: 4)
        let latent = try Self.randn([2, 4, 3, 5], seed: 4)
        let image = try map.image(latent)
        #expect(image.shape == [2, 3, 12, 20])
        #expect(image.scalars.allSatisfy { $0 >= -1 && $0 <= 1 })
        let colours = try map.colors(latent).clamped(min: -1, max: 1).scalars
        // Half-pixel centres: the corner pixel is the corner cell's value.
        #expect(Swift.abs(image.scalars[0] - colours[0]) < 1e-6)
        // Non-finite latents (a diverged sample) show as 0, not NaN.
        let diverged = try Tensor(shape: [1, 4, 1, 1], scalars: [.nan, 0, 0, 0])
        #expect(try map.colors(diverged).scalars == [0, 0, 0])
    }

    /// A flat photo (every latent cell the same) is fitted without dividing by zero: the map
    /// gives the photo's colour.
    @Test func aFlatPhotoGivesItsColour() throws {
        let latent = try Tensor(shape: [1, 4, 4, 4], repeating: 0.3)
        let image = try Tensor.concatenate([Tensor(shape: [1, 1, 8, 8], repeating: 0.5), Tensor(shape: [1, 1, 8, 8], repeating: -0.25),
                                            Tensor(shape: [1, 1, 8, 8], repeating: 0)], axis: 1)
        let map = try LatentPreview.fit(latent: latent, image: image, factor: 2)
        #expect(map.weights.allSatisfy(\.isFinite) && map.bias.allSatisfy(\.isFinite))
        #expect(Self.maxDifference(try map.colors(latent).scalars, [Float](repeating: 0.5, count: 16) + [Float](repeating: -0.25, count: 16)
                                   + [Float](repeating: 0, count: 16)) < 1e-5)
    }

    @Test func badShapesThrow() throws {
        let latent = try Self.randn([1, 4, 4, 4], seed: 5)
        let image = try Self.randn([1, 3, 8, 8], seed: 6)
        func refused(_ body: () throws -> Any) -> Bool {
            do { _ = try body(); return false } catch EditError.badInput { return true } catch { return false }
        }
        #expect(refused { try LatentPreview.fit(latent: latent, image: image, factor: 4) })     // 16×16 expected
        #expect(refused { try LatentPreview.fit(latent: latent, image: image, factor: 0) })
        #expect(refused { try LatentPreview.fit(latent: latent.reshaped([4, 4, 4]), image: image, factor: 2) })
        #expect(refused { try LatentPreview.fit(latent: latent, image: image.sliced(0..<2, axis: 1), factor: 2) })
        #expect(refused { try LatentPreview.fit(latent: Tensor.concatenate([latent, latent], axis: 0), image: image, factor: 2) })
        let nan = try Tensor(shape: [1, 4, 4, 4], repeating: .nan)
        #expect(refused { try LatentPreview.fit(latent: nan, image: image, factor: 2) })
        let map = try LatentPreview.fit(latent: latent, image: image, factor: 2)
        #expect(refused { try map.colors(Self.randn([1, 3, 4, 4], seed: 1)) })
        #expect(refused { try map.image(Self.randn([4, 4, 4], seed: 1)) })
        #expect(refused { try LatentPreview(channels: 4, weights: [1, 2, 3], bias: [0, 0, 0], factor: 8) })
        #expect(refused { try LatentPreview(channels: 4, weights: [Float](repeating: 0, count: 12), bias: [0, 0], factor: 8) })
        #expect(refused { try LatentPreview(channels: 1, weights: [.infinity, 0, 0], bias: [0, 0, 0], factor: 8) })
    }

    /// Through the editor: every step's preview is the image's size, the map fitted to the
    /// analytic autoencoder's source gives the source's block means back (its latent is linear in
    /// them, with a fourth channel that is their mean: a singular fit the ridge handles), and the
    /// x0 estimate is the one the solver steps on (DPM-Solver++'s last step lands on it).
    @Test func everyStepHasAPreviewOfTheImageSize() throws {
        let image = try Self.randn([1, 3, 16, 12], seed: 9, std: 0.4).clamped(min: -1, max: 1)
        let mask = try Tensor(shape: [1, 1, 16, 12]) { m in for i in m.indices { m[i] = (i / 12) >= 4 && (i / 12) < 12 ? 1 : 0 } }
        var settings = LatentEditSettings()
        settings.samples = 2
        settings.batchSize = 2
        let editor = try BlendedLatentDiffusionEditor(
            denoiser: AnalyticDenoiser(), autoencoder: AnalyticAutoencoder(),
            solver: LatentSolverKind.dpmSolverPlusPlus2M.makeSolver(steps: 5, predictionType: .epsilon), settings: settings)
        let context = try Self.randn([1, 3, 8], seed: 10), unconditional = try Self.randn([1, 3, 8], seed: 11)
        var seen: [EditProgress] = []
        _ = try editor.edit(image: image, mask: mask, context: context, unconditionalContext: unconditional, progress: { seen.append($0) })
        #expect(seen.count == 3)
        for p in seen {
            #expect(try p.predictedImage().shape == [2, 3, 16, 12])
            #expect(p.prediction.shape == p.sample.shape)
        }
        let source = try AnalyticAutoencoder().encode(image)
        let means = try adaptiveAvgPool2d(image, outputSize: (height: 8, width: 6))
        #expect(try Self.maxDifference(#require(seen[0].preview).colors(source).scalars, means.scalars) < 1e-4)
        // The last step goes to σ = 0: inside the mask the latent is the x0 estimate itself.
        let last = try #require(seen.last)
        let latentMask = try LatentMasks.downsample(mask, height: 8, width: 6)
        #expect(try Self.maxDifference((last.sample * latentMask).scalars, (last.prediction * latentMask).scalars) < 1e-6)
    }
}
