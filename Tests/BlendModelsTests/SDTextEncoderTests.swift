import Foundation
import Testing
import BlendTensor
@testable import BlendModels

/// Stable Diffusion's text encoders against transformers' CLIPTextModel (SD 1.x) and an
/// OpenCLIP text tower read at its penultimate layer (SD 2.x), in the CompVis single-file and
/// the diffusers folder layouts (scripts/make-sd-text-sampling-fixtures.py, tiny random weights).
@Suite struct SDTextEncoderTests {
    let io: [String: Tensor]

    init() throws { io = try loadTensors("sd/text_io.safetensors") }

    func tokens(_ name: String) -> [[Int]] {
        let ids = io[name]!.scalars.map { Int($0) }
        return stride(from: 0, to: ids.count, by: 77).map { Array(ids[$0..<$0 + 77]) }
    }

    func folder(_ name: String) throws -> (config: SDTextEncoderConfig, weights: ModelWeights) {
        let dir = "sd/\(name)/text_encoder"
        let config = try JSONDecoder().decode(SDTextEncoderConfig.self,
                                              from: Data(contentsOf: modelFixtures.appendingPathComponent("\(dir)/config.json")))
        return (config, ModelWeights(try loadTensors("\(dir)/model.safetensors"), modelName: "SD text encoder"))
    }

    @Test func sd1SingleFileMatchesTransformers() throws {
        let tensors = try loadTensors("sd/text_sd1_compvis.safetensors")
        #expect(SDTextEncoderKeyLayout.detect(keys: tensors.keys) == .compVisSD1)
        let encoder = try SDTextEncoder(weights: ModelWeights(tensors, modelName: "SD text encoder"), layout: .compVisSD1)
        #expect(encoder.config == SDTextEncoderConfig(vocabSize: 600, hiddenSize: 32, intermediateSize: 37, numHiddenLayers: 3,
                                                      numAttentionHeads: 1, hiddenAct: .quickGELU))
        // The tiny model has 2 heads of 16, which the shapes cannot tell: give the config.
        let twoHeads = try SDTextEncoder(weights: ModelWeights(tensors, modelName: "SD text encoder"),
                                         config: SDTextEncoderConfig(vocabSize: 600, hiddenSize: 32, intermediateSize: 37,
                                                                     numHiddenLayers: 3, numAttentionHeads: 2, hiddenAct: .quickGELU),
                                         layout: .compVisSD1)
        let hidden = try twoHeads(tokens("sd1_tokens"))
        #expect(hidden.shape == [3, 77, 32])
        #expect(relativeError(hidden, io["sd1_hidden"]!) < 1e-5)
    }

    @Test func oldestSD1NamesWithoutTextModelLoad() throws {
        // transformers before 4.x saved CLIPTextModel without the "text_model." level.
        let renamed = Dictionary(uniqueKeysWithValues: try loadTensors("sd/text_sd1_compvis.safetensors").map { key, value in
            (key.replacingOccurrences(of: "transformer.text_model.", with: "transformer."), value)
        })
        let layout = try #require(SDTextEncoderKeyLayout.detect(keys: renamed.keys))
        #expect(layout == .transformers(prefix: "cond_stage_model.transformer."))
        var config = try SDTextEncoderConfig.inferred(from: ModelWeights(renamed, modelName: "SD text encoder"), layout: layout)
        config.numAttentionHeads = 2
        let encoder = try SDTextEncoder(weights: ModelWeights(renamed, modelName: "SD text encoder"), config: config, layout: layout)
        #expect(relativeError(try encoder(tokens("sd1_tokens")), io["sd1_hidden"]!) < 1e-5)
    }

    @Test func sd1DiffusersFolderMatchesTransformers() throws {
        let (config, weights) = try folder("text_sd1_diffusers")
        #expect(config.hiddenAct == .quickGELU && config.numAttentionHeads == 2 && config.numHiddenLayers == 3)
        #expect(SDTextEncoderKeyLayout.detect(keys: weights.keys) == .diffusers)
        let encoder = try SDTextEncoder(weights: weights, config: config, layout: .diffusers)
        for threads in parityThreadCounts {
            let hidden = try EngineThreads.withCount(threads) { try encoder(tokens("sd1_tokens")) }
            #expect(relativeError(hidden, io["sd1_hidden"]!) < 1e-5, "\(threads) threads")
        }
    }

    @Test func sd2SingleFileMatchesOpenCLIPPenultimateLayer() throws {
        let tensors = try loadTensors("sd/text_sd2_compvis.safetensors")
        #expect(SDTextEncoderKeyLayout.detect(keys: tensors.keys) == .compVisSD2)
        let inferred = try SDTextEncoderConfig.inferred(from: ModelWeights(tensors, modelName: "SD text encoder"), layout: .compVisSD2)
        // Four blocks stored, three run (the penultimate layer); GELU.
        #expect(inferred == SDTextEncoderConfig(vocabSize: 600, hiddenSize: 32, intermediateSize: 128, numHiddenLayers: 3,
                                                numAttentionHeads: 1, hiddenAct: .gelu))
        var config = inferred
        config.numAttentionHeads = 2
        let encoder = try SDTextEncoder(weights: ModelWeights(tensors, modelName: "SD text encoder"), config: config, layout: .compVisSD2)
        #expect(relativeError(try encoder(tokens("sd2_tokens")), io["sd2_hidden"]!) < 1e-5)
        // QuickGELU in place of GELU is measurably wrong: the activation matters.
        config.hiddenAct = .quickGELU
        let wrong = try SDTextEncoder(weights: ModelWeights(tensors, modelName: "SD text encoder"), config: config, layout: .compVisSD2)
        #expect(relativeError(try wrong(tokens("sd2_tokens")), io["sd2_hidden"]!) > 1e-3)
    }

    @Test func sd2DiffusersFolderMatchesOpenCLIPPenultimateLayer() throws {
        let (config, weights) = try folder("text_sd2_diffusers")
        #expect(config.hiddenAct == .gelu && config.numHiddenLayers == 3 && config.intermediateSize == 128)
        #expect(SDPromptPadding.usual(for: config) == .zero)
        let encoder = try SDTextEncoder(weights: weights, config: config, layout: .diffusers)
        let hidden = try encoder(tokens("sd2_tokens"))
        #expect(relativeError(hidden, io["sd2_hidden"]!) < 1e-5)
        for threads in parityThreadCounts {
            let other = try EngineThreads.withCount(threads) { try encoder(tokens("sd2_tokens")) }
            #expect(relativeError(other, io["sd2_hidden"]!) < 1e-5, "\(threads) threads")
        }
        // Shorter sequences use the first positions (transformers' position_ids[:, :L]).
        let short = try encoder([Array(tokens("sd2_tokens")[0].prefix(10))])
        #expect(short.shape == [1, 10, 32])
    }

    @Test func configDecodingFillsTransformersDefaults() throws {
        let config = try JSONDecoder().decode(SDTextEncoderConfig.self, from: Data(#"{"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12}"#.utf8))
        #expect(config == SDTextEncoderConfig.sd1)
        #expect(SDPromptPadding.usual(for: .sd1) == .endOfText)
        #expect(throws: ModelError.self) {
            try JSONDecoder().decode(SDTextEncoderConfig.self, from: Data(#"{"hidden_act": "relu"}"#.utf8))
        }
        var bad = SDTextEncoderConfig.sd2
        bad.numAttentionHeads = 7
        #expect(throws: ModelError.self) { try bad.validate() }
    }

    @Test func promptTokensArePaddedAsEachFamilyPads() throws {
        let tokenizer = try ClipTokenizer(merges: [])
        let eot = tokenizer.endOfTextToken
        let sd1 = try SDTextEncoder.tokens(for: "a cat", tokenizer: tokenizer, padding: .endOfText)
        let sd2 = try SDTextEncoder.tokens(for: "a cat", tokenizer: tokenizer, padding: .zero)
        let body = [tokenizer.startOfTextToken] + tokenizer.encode("a cat") + [eot]
        #expect(sd1 == body + Array(repeating: eot, count: 77 - body.count))
        #expect(sd2 == body + Array(repeating: 0, count: 77 - body.count))
        // Long prompts are cut to 75 tokens, as diffusers' pipelines truncate.
        let long = try SDTextEncoder.tokens(for: String(repeating: "word ", count: 100), tokenizer: tokenizer, padding: .zero)
        #expect(long.count == 77 && long.last == eot && long.first == tokenizer.startOfTextToken)
        // The empty prompt: start, end, padding.
        #expect(try SDTextEncoder.tokens(for: "", tokenizer: tokenizer, padding: .endOfText)
            == [tokenizer.startOfTextToken] + Array(repeating: eot, count: 76))
    }

    @Test func errorsNameTheProblem() throws {
        let tensors = try loadTensors("sd/text_sd1_compvis.safetensors")
        let encoder = try SDTextEncoder(weights: ModelWeights(tensors, modelName: "SD text encoder"), layout: .compVisSD1)
        #expect(throws: ModelError.self) { try encoder([]) }
        #expect(throws: ModelError.self) { try encoder([[1, 2], [1]]) }
        #expect(throws: ModelError.self) { try encoder([Array(repeating: 1, count: 78)]) }
        #expect(throws: ModelError.self) { try encoder([[1, 600]]) }
        #expect(throws: ModelError.self) { try encoder([[-1, 2]]) }
        // The wrong layout for the file: no OpenCLIP names.
        #expect(throws: ModelError.self) {
            try SDTextEncoder(weights: ModelWeights(tensors, modelName: "SD text encoder"), layout: .compVisSD2)
        }
        // A config with more layers than the file: the missing block is named.
        var deeper = encoder.config
        deeper.numHiddenLayers = 4
        #expect(throws: ModelError.missingWeight(key: "cond_stage_model.transformer.text_model.encoder.layers.3.self_attn.q_proj.weight",
                                                 model: "SD text encoder")) {
            try SDTextEncoder(weights: ModelWeights(tensors, modelName: "SD text encoder"), config: deeper, layout: .compVisSD1)
        }
        // Fewer layers than the file: the unused block is reported.
        var shallower = encoder.config
        shallower.numHiddenLayers = 2
        #expect(throws: ModelError.self) {
            try SDTextEncoder(weights: ModelWeights(tensors, modelName: "SD text encoder"), config: shallower, layout: .compVisSD1)
        }
        // Tensors of another component in the same dictionary are reported, not ignored.
        var mixed = tensors
        mixed["model.diffusion_model.out.2.bias"] = try Tensor.zeros([4])
        #expect(throws: ModelError.unexpectedWeights(keys: ["model.diffusion_model.out.2.bias"], model: "SD text encoder")) {
            try SDTextEncoder(weights: ModelWeights(mixed, modelName: "SD text encoder"), layout: .compVisSD1)
        }
        #expect(SDTextEncoderKeyLayout.compVisSD1.owns("cond_stage_model.transformer.text_model.final_layer_norm.bias"))
        #expect(!SDTextEncoderKeyLayout.compVisSD1.owns("model.diffusion_model.out.2.bias"))
        #expect(SDTextEncoderKeyLayout.detect(keys: ["model.diffusion_model.out.2.bias"]) == nil)
    }
}
