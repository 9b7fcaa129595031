import BlendTensor

// The checkpoint key layouts of Stable Diffusion's text encoders, in one place.
//
// transformers' CLIPTextModel (diffusers folders' text_encoder/, with prefix "text_model.";
// CompVis SD 1.x single files, with prefix "cond_stage_model.transformer.text_model."):
//   {p}embeddings.token_embedding.weight               [vocab, D]
//   {p}embeddings.position_embedding.weight            [77, D]
//   {p}embeddings.position_ids                         [1, 77] (older files; not needed)
//   {p}encoder.layers.{i}.layer_norm1 / layer_norm2    LayerNorm .weight/.bias
//   {p}encoder.layers.{i}.self_attn.{q,k,v,out}_proj   .weight [D, D] / .bias [D]
//   {p}encoder.layers.{i}.mlp.fc1                      .weight [I, D] / .bias [I]
//   {p}encoder.layers.{i}.mlp.fc2                      .weight [D, I] / .bias [D]
//   {p}final_layer_norm                                LayerNorm
//
// OpenCLIP's text tower (CompVis SD 2.x single files, prefix "cond_stage_model.model."):
//   {p}token_embedding.weight                          [vocab, D]
//   {p}positional_embedding                            [77, D]
//   {p}transformer.resblocks.{i}.ln_1 / ln_2           LayerNorm
//   {p}transformer.resblocks.{i}.attn.in_proj_weight   [3D, D] (q, k, v stacked) / in_proj_bias [3D]
//   {p}transformer.resblocks.{i}.attn.out_proj         .weight [D, D] / .bias [D]
//   {p}transformer.resblocks.{i}.mlp.c_fc / c_proj     as fc1 / fc2
//   {p}ln_final                                        LayerNorm
//   {p}text_projection [D, E], {p}logit_scale          not used for SD's context
// SD 2.x reads the penultimate layer: the last block, resblocks.{layers}, is present in the
// file but not run (diffusers' single-file conversion drops it, SD_2_TEXT_ENCODER_KEYS_TO_IGNORE).

/// Where a file keeps an SD text encoder's tensors, and under which names.
public enum SDTextEncoderKeyLayout: Equatable, Sendable {
    /// transformers' `CLIPTextModel` names, each key `prefix` + e.g. `embeddings.token_embedding.weight`.
    case transformers(prefix: String)
    /// OpenCLIP's names, each key `prefix` + e.g. `transformer.resblocks.0.attn.in_proj_weight`;
    /// the tower's last block is skipped (SD 2.x's penultimate layer).
    case openCLIP(prefix: String)

    /// A diffusers folder's `text_encoder/` weights.
    public static let diffusers = SDTextEncoderKeyLayout.transformers(prefix: "text_model.")
    /// A CompVis SD 1.x single file (`FrozenCLIPEmbedder`).
    public static let compVisSD1 = SDTextEncoderKeyLayout.transformers(prefix: "cond_stage_model.transformer.text_model.")
    /// A CompVis SD 2.x single file (`FrozenOpenCLIPEmbedder`).
    public static let compVisSD2 = SDTextEncoderKeyLayout.openCLIP(prefix: "cond_stage_model.model.")

    public var prefix: String {
        switch self {
        case let .transformers(prefix), let .openCLIP(prefix): return prefix
        }
    }

    /// Whether `key` belongs to this text encoder: pass exactly these tensors of a
    /// single-file checkpoint to ``SDTextEncoder/init(weights:config:layout:)``.
    public func owns(_ key: String) -> Bool { key.hasPrefix(prefix) }

    /// The layout of the text encoder among `keys`: a diffusers `text_encoder/` file or a
    /// CompVis single file (SD 1.x, also the oldest files without `text_model.`, or SD 2.x).
    /// Nil when none is recognised.
    public static func detect(keys: some Sequence<String>) -> SDTextEncoderKeyLayout? {
        let keys = Set(keys)
        let candidates: [SDTextEncoderKeyLayout] = [
            .diffusers, .compVisSD1, .transformers(prefix: "cond_stage_model.transformer."), .compVisSD2,
        ]
        return candidates.first { keys.contains($0.tokenEmbeddingKey) }
    }

    var tokenEmbeddingKey: String {
        switch self {
        case let .transformers(p): return p + "embeddings.token_embedding.weight"
        case let .openCLIP(p): return p + "token_embedding.weight"
        }
    }

    var positionEmbeddingKey: String {
        switch self {
        case let .transformers(p): return p + "embeddings.position_embedding.weight"
        case let .openCLIP(p): return p + "positional_embedding"
        }
    }

    var finalLayerNormPrefix: String {
        switch self {
        case let .transformers(p): return p + "final_layer_norm"
        case let .openCLIP(p): return p + "ln_final"
        }
    }

    /// The prefix of block `i`'s keys.
    func blockPrefix(_ i: Int) -> String {
        switch self {
        case let .transformers(p): return "\(p)encoder.layers.\(i)."
        case let .openCLIP(p): return "\(p)transformer.resblocks.\(i)."
        }
    }

    /// The number of blocks stored in `weights`.
    func storedBlockCount(_ weights: ModelWeights) -> Int {
        let head: String
        switch self {
        case let .transformers(p): head = p + "encoder.layers."
        case let .openCLIP(p): head = p + "transformer.resblocks."
        }
        return Set(weights.keys.compactMap { key -> Int? in
            guard key.hasPrefix(head) else { return nil }
            return Int(key.dropFirst(head.count).prefix { $0 != "." })
        }).count
    }

    /// Blocks stored but not run: OpenCLIP's last (SD 2.x reads the penultimate layer).
    var skippedFinalBlocks: Int {
        if case .openCLIP = self { return 1 }
        return 0
    }
}

extension SDTextEncoderConfig {
    /// Reads the configuration off the tensor shapes. Heads are 64 wide (ViT-L/14 and ViT-H/14).
    /// The activation is not in the tensors: OpenCLIP files use GELU; a transformers-layout file
    /// uses QuickGELU unless it is 1024 wide (SD 2.x's OpenCLIP ViT-H as diffusers saves it) —
    /// prefer a diffusers folder's `text_encoder/config.json` where there is one.
    public static func inferred(from weights: ModelWeights, layout: SDTextEncoderKeyLayout) throws -> SDTextEncoderConfig {
        guard let token = weights.shape(of: layout.tokenEmbeddingKey), token.count == 2 else {
            throw ModelError.unrecognisedCheckpoint(
                "this is not a Stable Diffusion text encoder in the expected layout: it has no '\(layout.tokenEmbeddingKey)'")
        }
        guard let positions = weights.shape(of: layout.positionEmbeddingKey), positions.count == 2 else {
            throw ModelError.missingWeight(key: layout.positionEmbeddingKey, model: weights.modelName)
        }
        let fcKey = layout.blockPrefix(0) + (layout.skippedFinalBlocks > 0 ? "mlp.c_fc.weight" : "mlp.fc1.weight")
        guard let fc = weights.shape(of: fcKey), fc.count == 2 else {
            throw ModelError.missingWeight(key: fcKey, model: weights.modelName)
        }
        let width = token[1]
        let layers = layout.storedBlockCount(weights) - layout.skippedFinalBlocks
        let activation: ClipActivation
        if case .openCLIP = layout { activation = .gelu } else { activation = width == 1024 ? .gelu : .quickGELU }
        let config = SDTextEncoderConfig(vocabSize: token[0], hiddenSize: width, intermediateSize: fc[0],
                                         numHiddenLayers: layers, numAttentionHeads: max(width / 64, 1),
                                         maxPositionEmbeddings: positions[0], hiddenAct: activation)
        try config.validate()
        return config
    }
}

extension SDTextEncoder {
    /// Assembles the text encoder from checkpoint tensors in `layout` (the config is inferred
    /// from the shapes unless given). `weights` must hold this encoder's tensors only (see
    /// ``SDTextEncoderKeyLayout/owns(_:)``): loading is strict, and a missing, unused or
    /// mis-shaped tensor throws a `ModelError` naming it. transformers' separate q/k/v
    /// projections are stacked into OpenCLIP's packed form, which computes the same.
    public init(weights: ModelWeights, config: SDTextEncoderConfig? = nil, layout: SDTextEncoderKeyLayout) throws {
        let config = try config ?? SDTextEncoderConfig.inferred(from: weights, layout: layout)
        try config.validate()
        let d = config.hiddenSize, inner = config.intermediateSize, eps = Float(config.layerNormEps)
        func layerNorm(_ prefix: String) throws -> LayerNormLayer {
            LayerNormLayer(weight: try weights.take("\(prefix).weight", shape: [d]),
                           bias: try weights.take("\(prefix).bias", shape: [d]), eps: eps)
        }
        func linear(_ prefix: String, in cin: Int, out cout: Int) throws -> LinearLayer {
            LinearLayer(weight: try weights.take("\(prefix).weight", shape: [cout, cin]),
                        bias: try weights.take("\(prefix).bias", shape: [cout]))
        }
        func block(_ i: Int) throws -> ClipResidualBlock {
            let p = layout.blockPrefix(i)
            switch layout {
            case .transformers:
                let q = try linear(p + "self_attn.q_proj", in: d, out: d)
                let k = try linear(p + "self_attn.k_proj", in: d, out: d)
                let v = try linear(p + "self_attn.v_proj", in: d, out: d)
                return ClipResidualBlock(
                    ln1: try layerNorm(p + "layer_norm1"),
                    inProjection: LinearLayer(weight: try Tensor.concatenate([q.weight, k.weight, v.weight], axis: 0),
                                              bias: try Tensor.concatenate([q.bias!, k.bias!, v.bias!], axis: 0)),
                    outProjection: try linear(p + "self_attn.out_proj", in: d, out: d),
                    ln2: try layerNorm(p + "layer_norm2"),
                    fc: try linear(p + "mlp.fc1", in: d, out: inner),
                    proj: try linear(p + "mlp.fc2", in: inner, out: d),
                    heads: config.numAttentionHeads, activation: config.hiddenAct)
            case .openCLIP:
                return ClipResidualBlock(
                    ln1: try layerNorm(p + "ln_1"),
                    inProjection: LinearLayer(weight: try weights.take(p + "attn.in_proj_weight", shape: [3 * d, d]),
                                              bias: try weights.take(p + "attn.in_proj_bias", shape: [3 * d])),
                    outProjection: try linear(p + "attn.out_proj", in: d, out: d),
                    ln2: try layerNorm(p + "ln_2"),
                    fc: try linear(p + "mlp.c_fc", in: d, out: inner),
                    proj: try linear(p + "mlp.c_proj", in: inner, out: d),
                    heads: config.numAttentionHeads, activation: config.hiddenAct)
            }
        }
        self.init(
            config: config,
            tokenEmbedding: try weights.take(layout.tokenEmbeddingKey, shape: [config.vocabSize, d]),
            positionEmbedding: try weights.take(layout.positionEmbeddingKey, shape: [config.maxPositionEmbeddings, d]),
            transformer: ClipTransformer(blocks: try (0..<config.numHiddenLayers).map(block)),
            finalLayerNorm: try layerNorm(layout.finalLayerNormPrefix))
        // Stored but not needed for SD's context: the tower's skipped last block and projection
        // (OpenCLIP), the position-id buffer (older transformers files).
        var unused: [String] = []
        switch layout {
        case let .transformers(p):
            unused = [p + "embeddings.position_ids"]
        case let .openCLIP(p):
            unused = [p + "text_projection", p + "logit_scale"]
            let last = layout.blockPrefix(config.numHiddenLayers)
            unused += weights.keys.filter { $0.hasPrefix(last) }
        }
        for key in unused where weights.contains(key) { _ = try weights.take(key) }
        try weights.finish()
    }
}
