import Foundation
import Testing
import BlendTensor
@testable import BlendModels

/// Outputs and input gradients against the reference implementations, from fixtures
/// written by scripts/make-{unet,clip,lpips}-fixtures.py and read through our own
/// checkpoint loader (torch.save zip, fp16 weights; legacy format for the LPIPS lin layers).
@Suite struct ParityTests {
    @Test(arguments: ["unet_tiny", "unet_variant"], parityThreadCounts)
    func unetMatchesGuidedDiffusion(name: String, threads: Int) throws { try EngineThreads.withCount(threads) {
        let config = try JSONDecoder().decode(UNetConfig.self, from: Data(contentsOf: modelFixtures.appendingPathComponent("\(name).json")))
        let model = try UNetModel(config: config, weights: ModelWeights(loadTensors("\(name).pt"), modelName: "UNet"))
        let io = try loadTensors("\(name)_io.safetensors")
        let x = io["x"]!.requiringGradient()
        let y = try model(x, timesteps: io["timesteps"]!.scalars, classes: io["classes"].map { $0.scalars.map { Int($0) } })
        #expect(relativeError(y, io["output"]!) < 1e-5)
        let g = try gradients(of: y, withRespectTo: [x], seed: io["r"]!)[0]
        #expect(relativeError(g, io["grad_x"]!) < 1e-5)
    } }

    @Test(arguments: parityThreadCounts)
    func clipMatchesOpenAICLIP(threads: Int) throws { try EngineThreads.withCount(threads) {
        let model = try ClipModel(weights: ModelWeights(loadTensors("clip_tiny.pt"), modelName: "CLIP"))
        #expect(model.config == ClipConfig(embedDim: 32, imageResolution: 32, visionLayers: 2, visionWidth: 64, visionPatchSize: 8,
                                           contextLength: 77, vocabSize: 500, transformerWidth: 64, transformerHeads: 1,
                                           transformerLayers: 2))
        let io = try loadTensors("clip_tiny_io.safetensors")
        let images = io["images"]!.requiringGradient()
        let e = try model.image(images)
        #expect(relativeError(e, io["image_embedding"]!) < 1e-5)
        let g = try gradients(of: e, withRespectTo: [images], seed: io["r"]!)[0]
        #expect(relativeError(g, io["grad_images"]!) < 1e-5)
        let tokens = io["tokens"]!.scalars.map { Int($0) }
        let t = try model.text([Array(tokens[0..<77]), Array(tokens[77..<154])])
        #expect(relativeError(t, io["text_embedding"]!) < 1e-5)
    } }

    @Test(arguments: parityThreadCounts)
    func lpipsMatchesTheLpipsPackage(threads: Int) throws { try EngineThreads.withCount(threads) {
        var weights = try lpipsFormulaTrunk()
        for (key, value) in try loadTensors("lpips_lin_legacy.pth") { weights[key] = value }
        let model = try LPIPSModel(weights: ModelWeights(weights, modelName: "LPIPS"))
        let io = try loadTensors("lpips_io.safetensors")
        let a = io["in0"]!.requiringGradient()
        let d = try model(a, io["in1"]!)
        #expect(relativeError(d, io["distance"]!) < 1e-5)
        let g = try gradients(of: d, withRespectTo: [a], seed: io["r"]!)[0]
        #expect(relativeError(g, io["grad_in0"]!) < 1e-4)
    } }

    @Test func modelErrorsForBadInputs() throws {
        let clip = try ClipModel(weights: ModelWeights(loadTensors("clip_tiny.pt"), modelName: "CLIP"))
        #expect(throws: ModelError.self) { try clip.image(Tensor.zeros([1, 3, 16, 16])) }
        #expect(throws: ModelError.self) { try clip.text([[1, 2, 3]]) }
        #expect(throws: ModelError.self) { try ClipImageEncoder.normalize(Tensor.zeros([1, 1, 4, 4])) }
        // A UNet file given as CLIP: not recognised, and the message says why.
        #expect(throws: ModelError.self) { try ClipModel(weights: ModelWeights(loadTensors("unet_tiny.pt"), modelName: "CLIP")) }
        // The lin layers alone lack the VGG trunk.
        #expect(throws: ModelError.missingWeight(key: "features.0.weight", model: "LPIPS")) {
            try LPIPSModel(weights: ModelWeights(loadTensors("lpips_lin_legacy.pth"), modelName: "LPIPS"))
        }
        var weights = try lpipsFormulaTrunk()
        for (key, value) in try loadTensors("lpips_lin_legacy.pth") { weights[key] = value }
        let lpips = try LPIPSModel(weights: ModelWeights(weights, modelName: "LPIPS"))
        #expect(throws: ModelError.self) { try lpips(Tensor.zeros([1, 3, 32, 32]), Tensor.zeros([1, 3, 32, 16])) }
        #expect(throws: ModelError.self) { try lpips(Tensor.zeros([1, 3, 8, 8]), Tensor.zeros([1, 3, 8, 8])) }
    }
}
