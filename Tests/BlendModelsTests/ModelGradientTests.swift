import Testing
import BlendTensor
import BlendTestSupport
@testable import BlendModels

/// Finite-difference checks of the models' input gradients (guidance needs them), on tiny
/// configurations with random weights; the parity tests compare the same gradients with
/// PyTorch's autograd.
@Suite struct ModelGradientTests {
    func randomWeights(_ name: String, seed: UInt64) -> ModelWeights {
        var counter = seed
        return ModelWeights(synthesizing: { key, shape in
            counter &+= 1
            let fanIn = shape.count > 1 ? shape.dropFirst().reduce(1, *) : 1
            let t = randn(shape, seed: counter, std: 1 / Float(fanIn).squareRoot())
            return key.contains("norm") || key.contains("ln_") || key.hasSuffix("layers.0.weight") || key == "out.0.weight" ? t + 1 : t
        }, modelName: name)
    }

    @Test func unetInputGradient() throws {
        let config = UNetConfig(imageSize: 16, modelChannels: 32, numResBlocks: 1, channelMult: [1, 1],
                                attentionResolutions: [8], numHeadChannels: 16)
        let unet = try UNetModel(config: config, weights: randomWeights("UNet", seed: 100))
        try checkGradients([randn([1, 3, 16, 16], seed: 101)], eps: 1e-2, tolerance: 2e-2, maxProbes: 16) {
            try unet($0[0], timesteps: [250])
        }
    }

    @Test func clipImageGradient() throws {
        let config = ClipConfig(embedDim: 16, imageResolution: 16, visionLayers: 1, visionWidth: 64, visionPatchSize: 8,
                                contextLength: 77, vocabSize: 100, transformerWidth: 64, transformerHeads: 1, transformerLayers: 1)
        let clip = try ClipModel(weights: randomWeights("CLIP", seed: 200), config: config)
        try checkGradients([randn([2, 3, 16, 16], seed: 201)], eps: 1e-2, tolerance: 2e-2, maxProbes: 24) {
            try clip.image(ClipImageEncoder.normalize($0[0]))
        }
    }

    @Test func lpipsGradient() throws {
        var weights = try lpipsFormulaTrunk()
        for (k, c) in [64, 128, 256, 512, 512].enumerated() { weights["lin\(k).model.1.weight"] = uniform([1, c, 1, 1], seed: UInt64(300 + k), in: 0..<0.1) }
        let lpips = try LPIPSModel(weights: ModelWeights(weights, modelName: "LPIPS"))
        let b = uniform([1, 3, 16, 16], seed: 302, in: -1..<1)
        try checkGradients([uniform([1, 3, 16, 16], seed: 301, in: -1..<1)], eps: 1e-2, tolerance: 3e-2, maxProbes: 8) {
            try lpips($0[0], b)
        }
    }
}
