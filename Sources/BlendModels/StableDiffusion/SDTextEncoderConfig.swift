/// The hyper-parameters of Stable Diffusion's text encoder, a CLIP text transformer, named as
/// transformers' `CLIPTextConfig` names them (the `text_encoder/config.json` of a diffusers
/// folder decodes into it; keys it lacks take `CLIPTextConfig`'s defaults, as transformers
/// omits default values when it saves a config).
///
/// - SD 1.x: OpenAI CLIP ViT-L/14's text tower, all 12 layers, QuickGELU (``sd1``).
/// - SD 2.x: OpenCLIP ViT-H/14's text tower up to its penultimate layer — 23 of its 24 layers —
///   with erf GELU (``sd2``). diffusers stores it that way (a 23-layer `CLIPTextModel`; its
///   single-file conversion drops `resblocks.23`), and the CompVis files' `FrozenOpenCLIPEmbedder`
///   stops one block early (`layer="penultimate"`); both then apply the final LayerNorm.
public struct SDTextEncoderConfig: Codable, Equatable, Sendable {
    public var vocabSize: Int
    /// The transformer width D: the text context the UNet cross-attends to is `[N, 77, D]`.
    public var hiddenSize: Int
    public var intermediateSize: Int
    /// Blocks that run. For SD 2.x this is one less than the OpenCLIP tower has.
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var maxPositionEmbeddings: Int
    public var hiddenAct: ClipActivation
    public var layerNormEps: Double

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case maxPositionEmbeddings = "max_position_embeddings", hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps"
    }

    public init(vocabSize: Int = 49408, hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int, numAttentionHeads: Int,
                maxPositionEmbeddings: Int = 77, hiddenAct: ClipActivation, layerNormEps: Double = 1e-5) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.hiddenAct = hiddenAct
        self.layerNormEps = layerNormEps
    }

    /// Decodes a `CLIPTextConfig` JSON; a missing key takes transformers' default
    /// (`CLIPTextConfig.__init__`: 49408, 512, 2048, 12, 8, 77, "quick_gelu", 1e-5).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? 49408
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? 512
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? 2048
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? 12
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? 8
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? 77
        let act = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? ClipActivation.quickGELU.rawValue
        guard let activation = ClipActivation(rawValue: act) else {
            throw ModelError.invalidConfig("hidden_act '\(act)' is not supported by the SD text encoder: use \"quick_gelu\" (SD 1.x) or \"gelu\" (SD 2.x)")
        }
        hiddenAct = activation
        layerNormEps = try c.decodeIfPresent(Double.self, forKey: .layerNormEps) ?? 1e-5
    }

    /// SD 1.x: OpenAI CLIP ViT-L/14's text tower.
    public static let sd1 = SDTextEncoderConfig(hiddenSize: 768, intermediateSize: 3072, numHiddenLayers: 12,
                                                numAttentionHeads: 12, hiddenAct: .quickGELU)
    /// SD 2.x: OpenCLIP ViT-H/14's text tower to its penultimate layer.
    public static let sd2 = SDTextEncoderConfig(hiddenSize: 1024, intermediateSize: 4096, numHiddenLayers: 23,
                                                numAttentionHeads: 16, hiddenAct: .gelu)

    public func validate() throws {
        guard [vocabSize, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads, maxPositionEmbeddings]
            .allSatisfy({ $0 > 0 }) else {
            throw ModelError.invalidConfig("every SD text encoder config field must be positive: \(self)")
        }
        guard hiddenSize % numAttentionHeads == 0 else {
            throw ModelError.invalidConfig("hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(numAttentionHeads)")
        }
        guard layerNormEps > 0, layerNormEps.isFinite else {
            throw ModelError.invalidConfig("layer_norm_eps must be a positive number, got \(layerNormEps)")
        }
    }
}
