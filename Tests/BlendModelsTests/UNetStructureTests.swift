import Foundation
import Testing
import BlendTensor
@testable import BlendModels

/// Weights that are all zeros, for assembling models whose values do not matter.
func zeroWeights(_ name: String) -> ModelWeights {
    ModelWeights(synthesizing: { _, shape in try Tensor.zeros(shape) }, modelName: name)
}

@Suite struct UNetStructureTests {
    @Test func fullSizeADM256HasTheOfficialParameterCount() throws {
        let weights = zeroWeights("UNet")
        _ = try UNetModel(config: UNetConfig.presets["256x256_diffusion_uncond"]!, weights: weights)
        #expect(weights.parameterCount == 552_814_086)
    }

    @Test func configDecodesGuidedDiffusionFlagNames() throws {
        let json = """
        {"image_size": 64, "num_channels": 192, "num_res_blocks": 3, "channel_mult": [1, 2, 3, 4],
         "attention_resolutions": [32, 16, 8], "num_head_channels": 64, "num_classes": 1000,
         "use_new_attention_order": true}
        """
        let config = try JSONDecoder().decode(UNetConfig.self, from: Data(json.utf8))
        #expect(config == UNetConfig.presets["64x64_diffusion"])
        #expect(config.outChannels == 6)
        #expect(config.attentionDownsampleFactors == [2, 4, 8])
    }

    @Test func everyPresetAssembles() throws {
        for (name, config) in UNetConfig.presets where config.imageSize <= 128 {
            let weights = zeroWeights("UNet")
            _ = try UNetModel(config: config, weights: weights)
            #expect(weights.parameterCount > 0, "\(name)")
        }
    }

    /// Fuzzing (config-json): a channel multiplier too large for an integer trapped in
    /// `validate()`; a zero num_head_channels would divide by zero. Both are config errors now.
    @Test func absurdConfigValuesAreErrorsNotTraps() throws {
        let found = #"{"image_size": 16, "num_channels": 32, "num_res_blocks": 1, "channel_mult": [1000000000000000000000000000000000000000000000000000000000000000], "attention_resolutions": [8], "num_head_channels": 16}"#
        let config = try JSONDecoder().decode(UNetConfig.self, from: Data(found.utf8))
        #expect(throws: ModelError.self) { try config.validate() }
        var tiny = try JSONDecoder().decode(UNetConfig.self, from: Data(found.replacingOccurrences(of: "1000000000000000000000000000000000000000000000000000000000000000", with: "1").utf8))
        try tiny.validate()
        let changes: [(inout UNetConfig) -> Void] = [
            { $0.numHeadChannels = 0 }, { $0.numHeads = 0 }, { $0.channelMult = [-1] }, { $0.channelMult = [.infinity] },
            { $0.modelChannels = Int.max }, { $0.imageSize = Int.max }, { $0.numClasses = 0 }, { $0.numResBlocks = 1 << 40 },
        ]
        for change in changes {
            var bad = tiny
            change(&bad)
            #expect(throws: ModelError.self) { try bad.validate() }
        }
        tiny.numClasses = 1000
        try tiny.validate()
    }

    @Test func invalidConfigsAreRejected() throws {
        var config = UNetConfig.presets["256x256_diffusion_uncond"]!
        config.channelMult = [0.1, 1]   // 25 channels: not a multiple of GroupNorm's 32 groups
        #expect(throws: ModelError.self) { try config.validate() }
        config = UNetConfig.presets["256x256_diffusion_uncond"]!
        config.attentionResolutions = [48]
        #expect(throws: ModelError.self) { try config.validate() }
    }

    @Test func mismatchedCheckpointsGiveClearErrors() throws {
        let config = UNetConfig(imageSize: 16, modelChannels: 32, numResBlocks: 1, channelMult: [1, 1],
                                attentionResolutions: [8], numHeadChannels: 16)
        // Collect the real key set, then break it three ways.
        let probe = zeroWeights("UNet")
        _ = try UNetModel(config: config, weights: probe)
        var tensors: [String: Tensor] = [:]
        for key in probe.keys { tensors[key] = try probe.take(key) }

        var missing = tensors
        missing["out.2.weight"] = nil
        #expect(throws: ModelError.missingWeight(key: "out.2.weight", model: "UNet")) {
            try UNetModel(config: config, weights: ModelWeights(missing, modelName: "UNet"))
        }
        var extra = tensors
        extra["label_emb.weight"] = try Tensor.zeros([10, 128])
        #expect(throws: ModelError.unexpectedWeights(keys: ["label_emb.weight"], model: "UNet")) {
            try UNetModel(config: config, weights: ModelWeights(extra, modelName: "UNet"))
        }
        var wrong = tensors
        wrong["input_blocks.0.0.weight"] = try Tensor.zeros([64, 3, 3, 3])
        #expect(throws: ModelError.weightShape(key: "input_blocks.0.0.weight", expected: [32, 3, 3, 3], got: [64, 3, 3, 3])) {
            try UNetModel(config: config, weights: ModelWeights(wrong, modelName: "UNet"))
        }
        let message = ModelError.missingWeight(key: "out.2.weight", model: "UNet").description
        #expect(message.contains("out.2.weight") && message.contains("config"))
    }

    @Test func badInputsThrow() throws {
        let config = UNetConfig(imageSize: 16, modelChannels: 32, numResBlocks: 1, channelMult: [1, 1],
                                attentionResolutions: [8], numHeadChannels: 16)
        let model = try UNetModel(config: config, weights: zeroWeights("UNet"))
        #expect(throws: ModelError.self) { try model(Tensor.zeros([1, 4, 16, 16]), timesteps: [1]) }
        #expect(throws: ModelError.self) { try model(Tensor.zeros([1, 3, 15, 16]), timesteps: [1]) }
        #expect(throws: ModelError.self) { try model(Tensor.zeros([2, 3, 16, 16]), timesteps: [1]) }
        #expect(throws: ModelError.self) { try model(Tensor.zeros([1, 3, 16, 16]), timesteps: [1], classes: [3]) }
        #expect(try model(Tensor.zeros([1, 3, 16, 16]), timesteps: [1]).shape == [1, 6, 16, 16])
    }
}
