import Testing
import BlendDiffusion
import BlendModels
import BlendTensor
@testable import BlendEditor

/// Small random models: the editor's bookkeeping does not depend on trained weights.
func tinyModels(seed: UInt64 = 1) throws -> EditorModels {
    func random(_ name: String) -> ModelWeights {
        var rng = NoiseSource(seed: seed)
        return ModelWeights(synthesizing: { key, shape in
            let fanIn = shape.count > 1 ? shape.dropFirst().reduce(1, *) : 1
            let isScale = key.hasSuffix("norm.weight") || key.contains("ln_") && key.hasSuffix(".weight")
                || key.hasSuffix("in_layers.0.weight") || key.hasSuffix("out_layers.0.weight") || key.hasSuffix("out.0.weight")
            let t = try Tensor.randomNormal(shape, std: 1 / Float(fanIn).squareRoot(), using: &rng)
            return isScale ? t + 1 : t
        }, modelName: name)
    }
    let unet = try UNetModel(config: UNetConfig(imageSize: 16, modelChannels: 32, numResBlocks: 1, channelMult: [1, 1],
                                                attentionResolutions: [8], numHeadChannels: 16), weights: random("UNet"))
    let clip = try ClipModel(weights: random("CLIP"), config: ClipConfig(
        embedDim: 16, imageResolution: 16, visionLayers: 1, visionWidth: 64, visionPatchSize: 8,
        contextLength: 77, vocabSize: 100, transformerWidth: 64, transformerHeads: 1, transformerLayers: 1))
    return EditorModels(unet: unet, clip: clip)
}

func fastSettings(_ prompt: String = "a red ball") -> EditSettings {
    var s = EditSettings(prompt: prompt)
    s.pixel.timestepRespacing = "10"
    s.pixel.skipTimesteps = 6
    s.batchSize = 2
    s.samples = 4
    s.pixel.augmentations = 3
    s.seed = 7
    return s
}

func sourceAndMask() throws -> (Tensor, Tensor) {
    var rng = NoiseSource(seed: 99)
    let image = try rng.gaussian([1, 3, 16, 16]).clamped(min: -1, max: 1)
    let mask = try Tensor(shape: [1, 1, 16, 16]) { m in
        for y in 0..<16 { for x in 0..<16 { m[y * 16 + x] = (4..<11).contains(x) && (3..<12).contains(y) ? 1 : 0 } }
    }
    return (image, mask)
}

let promptTokens = [98] + [5, 17, 42] + [99] + Array(repeating: 0, count: 72)

@Suite struct EditorTests {
    @Test func backgroundIsSourceBitForBitAndSeedsReproduce() throws {
        let editor = try BlendedDiffusionEditor(models: tinyModels(), settings: fastSettings())
        let (image, mask) = try sourceAndMask()
        let text = try editor.promptEmbedding(tokens: promptTokens)
        let first = try editor.edit(image: image, mask: mask, promptEmbedding: text)
        #expect(first.count == 4)
        let src = image.scalars, m = mask.scalars
        for sample in first {
            let px = sample.image.scalars
            for c in 0..<3 { for i in 0..<256 where m[i] == 0 { #expect(px[c * 256 + i] == src[c * 256 + i]) } }
            // Inside the mask something changed.
            #expect((0..<256).contains { m[$0] == 1 && px[$0] != src[$0] })
        }
        #expect(first.map { $0.distance! } == first.map { $0.distance! }.sorted())
        let again = try editor.edit(image: image, mask: mask, promptEmbedding: text)
        #expect(zip(first, again).allSatisfy { $0.image.scalars == $1.image.scalars && $0.distance == $1.distance })
        var other = fastSettings()
        other.seed = 8
        let different = try BlendedDiffusionEditor(models: tinyModels(), settings: other)
            .edit(image: image, mask: mask, promptEmbedding: text)
        #expect(different[0].image.scalars != first[0].image.scalars)
    }

    @Test func everyStepsBackgroundIsTheNoisedSource() throws {
        let settings = fastSettings()
        let editor = try BlendedDiffusionEditor(models: tinyModels(), settings: settings)
        let (image, mask) = try sourceAndMask()
        let text = try editor.promptEmbedding(tokens: promptTokens)
        var checked = 0
        _ = try editor.edit(image: image, mask: mask, promptEmbedding: text) { p in
            let m = mask.scalars
            for (b, index) in p.sampleIndices.enumerated() {
                var noise = NoiseSource.background(seed: settings.seed, sample: index, timestep: p.timestep)
                let expected = try editor.diffusion.qSample(image, t: p.timestep, noise: noise.gaussian(image.shape)).scalars
                let got = try p.sample.sliced(b..<b + 1, axis: 0).scalars
                for c in 0..<3 { for i in 0..<256 where m[i] == 0 { #expect(got[c * 256 + i] == expected[c * 256 + i]) } }
            }
            checked += 1
        }
        #expect(checked == settings.iterations * (10 - settings.pixel.skipTimesteps))
    }

    @Test func aSampleCountNotAMultipleOfTheBatchMakesASmallerLastBatch() throws {
        var settings = fastSettings()
        settings.samples = 3
        let (image, mask) = try sourceAndMask()
        let editor = try BlendedDiffusionEditor(models: tinyModels(), settings: settings)
        var batches: [Int: Int] = [:]
        let results = try editor.edit(image: image, mask: mask, promptEmbedding: editor.promptEmbedding(tokens: promptTokens)) { p in
            batches[p.iteration] = p.sample.dim(0)
        }
        #expect(results.count == 3)
        #expect(batches == [0: 2, 1: 1])
        #expect(Set(results.map { "\($0.iteration)-\($0.batchIndex)" }) == ["0-0", "0-1", "1-0"])
    }

    @Test func sampleIDependsOnlyOnTheSeedAndI() throws {
        // The batch size is only a speed knob, and making a subset of the samples (a
        // resumed run) gives exactly those samples of the full run.
        var settings = fastSettings()
        settings.samples = 3
        settings.batchSize = 3
        let (image, mask) = try sourceAndMask()
        let together = try BlendedDiffusionEditor(models: tinyModels(), settings: settings)
        let text = try together.promptEmbedding(tokens: promptTokens)
        var finishedOrder: [Int] = []
        let all = try together.edit(image: image, mask: mask, promptEmbedding: text, finished: { finishedOrder.append($0.index) })
        #expect(finishedOrder == [0, 1, 2])
        settings.batchSize = 1
        let oneByOne = try BlendedDiffusionEditor(models: tinyModels(), settings: settings)
        let single = try oneByOne.edit(image: image, mask: mask, promptEmbedding: text)
        let subset = try oneByOne.edit(image: image, mask: mask, promptEmbedding: text, sampleIndices: [2])
        func byIndex(_ samples: [EditedSample]) -> [Int: [Float]] {
            Dictionary(uniqueKeysWithValues: samples.map { ($0.index, $0.image.scalars) })
        }
        #expect(byIndex(all) == byIndex(single))
        #expect(subset.count == 1 && subset[0].image.scalars == byIndex(all)[2])
        #expect(byIndex(all)[0] != byIndex(all)[1])
        #expect(throws: EditError.self) { try oneByOne.edit(image: image, mask: mask, promptEmbedding: text, sampleIndices: [-1]) }
    }

    @Test func ddimAndBaselineRun() throws {
        var settings = fastSettings()
        settings.pixel.ddim = true
        settings.samples = 2
        let (image, mask) = try sourceAndMask()
        let ddim = try BlendedDiffusionEditor(models: tinyModels(), settings: settings)
        let text = try ddim.promptEmbedding(tokens: promptTokens)
        #expect(try ddim.edit(image: image, mask: mask, promptEmbedding: text).count == 2)
        settings.method = .localClip
        settings.pixel.lpipsSimLambda = 0
        let baseline = try BlendedDiffusionEditor(models: tinyModels(), settings: settings)
        let results = try baseline.edit(image: image, mask: mask, promptEmbedding: text)
        // No blending: the background is free to change.
        #expect(results[0].image.scalars != image.scalars)
    }

    @Test func classConditionalModelsGetRandomClasses() throws {
        var rng = NoiseSource(seed: 5)
        let weights = ModelWeights(synthesizing: { _, shape in
            try Tensor.randomNormal(shape, std: 0.05, using: &rng)
        }, modelName: "UNet")
        let unet = try UNetModel(config: UNetConfig(imageSize: 16, modelChannels: 32, numResBlocks: 1, channelMult: [1, 1],
                                                    attentionResolutions: [8], numHeadChannels: 16, numClasses: 10),
                                 weights: weights)
        var models = try tinyModels()
        models.unet = unet
        var settings = fastSettings()
        settings.samples = 1
        let editor = try BlendedDiffusionEditor(models: models, settings: settings)
        let (image, mask) = try sourceAndMask()
        #expect(try editor.edit(image: image, mask: mask, promptEmbedding: editor.promptEmbedding(tokens: promptTokens)).count == 1)
    }

    @Test func invertedMaskEditsTheBackground() throws {
        var settings = fastSettings()
        settings.invertMask = true
        settings.samples = 1
        let (image, mask) = try sourceAndMask()
        let editor = try BlendedDiffusionEditor(models: tinyModels(), settings: settings)
        let sample = try editor.edit(image: image, mask: mask, promptEmbedding: editor.promptEmbedding(tokens: promptTokens))[0]
        let px = sample.image.scalars, src = image.scalars, m = mask.scalars
        for i in 0..<256 where m[i] == 1 { #expect(px[i] == src[i]) }
    }

    @Test func badInputsAreClearErrors() throws {
        let models = try tinyModels()
        let (image, mask) = try sourceAndMask()
        let editor = try BlendedDiffusionEditor(models: models, settings: fastSettings())
        let text = try editor.promptEmbedding(tokens: promptTokens)
        #expect(throws: EditError.self) { try editor.edit(image: image, mask: Tensor.zeros([1, 1, 16, 16]), promptEmbedding: text) }
        #expect(throws: EditError.self) { try editor.edit(image: Tensor.zeros([1, 3, 8, 8]), mask: mask, promptEmbedding: text) }
        #expect(throws: EditError.self) { try editor.edit(image: image, mask: Tensor.zeros([1, 1, 8, 8]), promptEmbedding: text) }
        var bad = fastSettings()
        bad.pixel.skipTimesteps = 10
        #expect(throws: EditError.self) { try BlendedDiffusionEditor(models: models, settings: bad) }
        bad = fastSettings()
        bad.batchSize = 0
        #expect(throws: EditError.self) { try BlendedDiffusionEditor(models: models, settings: bad) }
        bad = fastSettings()
        bad.samples = 0
        #expect(throws: EditError.self) { try BlendedDiffusionEditor(models: models, settings: bad) }
        bad = fastSettings()
        bad.method = .localClip
        #expect(throws: EditError.self) { try BlendedDiffusionEditor(models: models, settings: bad) }
        bad = fastSettings()
        bad.pixel.timestepRespacing = "ddimx"
        #expect(throws: EditError.self) { try BlendedDiffusionEditor(models: models, settings: bad) }
        let full = try Tensor.ones([1, 1, 16, 16])
        var inverted = fastSettings()
        inverted.invertMask = true
        let invertedEditor = try BlendedDiffusionEditor(models: models, settings: inverted)
        #expect(throws: EditError.self) { try invertedEditor.edit(image: image, mask: full, promptEmbedding: text) }
    }
}

@Suite struct GuidanceTests {
    @Test func sphericalDistanceValuesAndGradient() throws {
        let x = try Tensor(shape: [2, 2], scalars: [1, 0, 0, 3])
        let y = try Tensor(shape: [1, 2], scalars: [2, 0])
        // Same direction: 0. Orthogonal: chord √2, 2·asin(√2/2)² = 2·(π/4)².
        let d = try GuidanceLosses.sphericalDistance(x, y)
        #expect(Swift.abs(d.scalars[0]) < 1e-6)
        #expect(Swift.abs(d.scalars[1] - 2 * (Float.pi / 4) * (Float.pi / 4)) < 1e-5)
        let range = try GuidanceLosses.rangeLoss(Tensor(shape: [1, 1, 1, 4], scalars: [-1.5, 0, 0.5, 2]))
        #expect(Swift.abs(range.scalars[0] - (0.25 + 1) / 4) < 1e-6)
    }

    @Test func augmentationsKeepThePlainViewsAndWarpTheRest() throws {
        var rng = NoiseSource(seed: 3)
        let images = try rng.gaussian([2, 3, 20, 20])
        let augment = ClipAugmentations(outputSize: 16, count: 4)
        var r1 = NoiseSource(seed: 5)
        let views = try augment(images, using: &r1)
        #expect(views.shape == [8, 3, 16, 16])
        let plain = try adaptiveAvgPool2d(images, outputSize: (height: 16, width: 16))
        #expect(try views.sliced(0..<2, axis: 0).scalars == plain.scalars)
        var r2 = NoiseSource(seed: 5)
        #expect(try augment(images, using: &r2).scalars == views.scalars)
    }

    @Test func homographyMapsCornersExactly() throws {
        let p: [(Float, Float)] = [(1, 2), (14, 1), (13, 15), (2, 13)]
        let q: [(Float, Float)] = [(0, 0), (15, 0), (15, 15), (0, 15)]
        let h = try homography(from: p, to: q)
        for (a, b) in zip(p, q) {
            let w = h[6] * a.0 + h[7] * a.1 + h[8]
            #expect(Swift.abs((h[0] * a.0 + h[1] * a.1 + h[2]) / w - b.0) < 1e-4)
            #expect(Swift.abs((h[3] * a.0 + h[4] * a.1 + h[5]) / w - b.1) < 1e-4)
        }
    }
}
