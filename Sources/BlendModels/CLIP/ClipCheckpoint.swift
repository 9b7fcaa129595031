import BlendTensor

// The checkpoint key layout of OpenAI CLIP (ViT models), in one place.
//
//   visual.conv1.weight                      patch embedding [width, 3, p, p] (no bias)
//   visual.class_embedding                   [width]
//   visual.positional_embedding              [grid² + 1, width]
//   visual.ln_pre / visual.ln_post           LayerNorm .weight/.bias
//   visual.transformer.resblocks.{i}.*       residual blocks (below)
//   visual.proj                              [width, embed_dim]
//   token_embedding.weight                   [vocab, width]
//   positional_embedding                     [context, width]
//   transformer.resblocks.{i}.*              text residual blocks
//   ln_final                                 LayerNorm
//   text_projection                          [width, embed_dim]
//   logit_scale                              scalar (unused for embeddings)
//   input_resolution, context_length, vocab_size   scalars in the TorchScript archives
// Residual block: ln_1, attn.in_proj_weight/in_proj_bias, attn.out_proj.weight/bias,
//                 ln_2, mlp.c_fc.weight/bias, mlp.c_proj.weight/bias

extension ClipConfig {
    /// Reads the configuration off the tensor shapes, as the reference's `build_model` does.
    public static func inferred(from weights: ModelWeights) throws -> ClipConfig {
        func shape(_ key: String) throws -> [Int] {
            guard let s = weights.shape(of: key) else {
                throw ModelError.unrecognisedCheckpoint(
                    "this is not an OpenAI CLIP ViT checkpoint: it has no '\(key)' (ResNet CLIP models are not supported)")
            }
            return s
        }
        func layerCount(_ prefix: String) -> Int {
            Set(weights.keys.compactMap { key -> Int? in
                guard key.hasPrefix(prefix) else { return nil }
                return Int(key.dropFirst(prefix.count).prefix { $0 != "." })
            }).count
        }
        let conv = try shape("visual.conv1.weight")
        let positions = try shape("visual.positional_embedding")[0]
        let grid = Int(Double(positions - 1).squareRoot().rounded())
        let width = try shape("ln_final.weight")[0]
        let config = ClipConfig(
            embedDim: try shape("text_projection")[1],
            imageResolution: conv[3] * grid,
            visionLayers: layerCount("visual.transformer.resblocks."),
            visionWidth: conv[0],
            visionPatchSize: conv[3],
            contextLength: try shape("positional_embedding")[0],
            vocabSize: try shape("token_embedding.weight")[0],
            transformerWidth: width,
            transformerHeads: width / 64,
            transformerLayers: layerCount("transformer.resblocks."))
        try config.validate()
        return config
    }
}

/// Both CLIP encoders, loaded from one checkpoint.
public struct ClipModel: Sendable {
    public let config: ClipConfig
    public let image: ClipImageEncoder
    public let text: ClipTextEncoder

    /// Assembles CLIP from checkpoint tensors with the official key names; the config is
    /// inferred from the shapes unless given.
    public init(weights: ModelWeights, config: ClipConfig? = nil) throws {
        let config = try config ?? ClipConfig.inferred(from: weights)
        try config.validate()
        self.config = config
        let w = config.visionWidth, e = config.embedDim, g = config.gridSize
        image = ClipImageEncoder(
            config: config,
            patchEmbedding: Conv2dLayer(weight: try weights.take("visual.conv1.weight", shape: [w, 3, config.visionPatchSize, config.visionPatchSize]),
                                        bias: nil, stride: config.visionPatchSize),
            classEmbedding: try weights.take("visual.class_embedding", shape: [w]),
            positionalEmbedding: try weights.take("visual.positional_embedding", shape: [g * g + 1, w]),
            lnPre: try Self.layerNorm(weights, "visual.ln_pre", w),
            transformer: try Self.transformer(weights, "visual.transformer", width: w, layers: config.visionLayers, heads: config.visionHeads),
            lnPost: try Self.layerNorm(weights, "visual.ln_post", w),
            projection: try weights.take("visual.proj", shape: [w, e]))
        let tw = config.transformerWidth
        text = ClipTextEncoder(
            config: config,
            tokenEmbedding: try weights.take("token_embedding.weight", shape: [config.vocabSize, tw]),
            positionalEmbedding: try weights.take("positional_embedding", shape: [config.contextLength, tw]),
            transformer: try Self.transformer(weights, "transformer", width: tw, layers: config.transformerLayers, heads: config.transformerHeads),
            lnFinal: try Self.layerNorm(weights, "ln_final", tw),
            projection: try weights.take("text_projection", shape: [tw, e]))
        // Present in the official files, not needed to embed.
        for key in ["logit_scale", "input_resolution", "context_length", "vocab_size"] where weights.contains(key) {
            _ = try weights.take(key)
        }
        try weights.finish()
    }

    private static func layerNorm(_ weights: ModelWeights, _ prefix: String, _ width: Int) throws -> LayerNormLayer {
        LayerNormLayer(weight: try weights.take("\(prefix).weight", shape: [width]),
                       bias: try weights.take("\(prefix).bias", shape: [width]))
    }

    private static func linear(_ weights: ModelWeights, _ prefix: String, in cin: Int, out cout: Int) throws -> LinearLayer {
        LinearLayer(weight: try weights.take("\(prefix).weight", shape: [cout, cin]),
                    bias: try weights.take("\(prefix).bias", shape: [cout]))
    }

    private static func transformer(_ weights: ModelWeights, _ prefix: String, width: Int, layers: Int, heads: Int) throws -> ClipTransformer {
        ClipTransformer(blocks: try (0..<layers).map { i in
            let p = "\(prefix).resblocks.\(i)"
            return ClipResidualBlock(
                ln1: try layerNorm(weights, "\(p).ln_1", width),
                inProjection: LinearLayer(weight: try weights.take("\(p).attn.in_proj_weight", shape: [3 * width, width]),
                                          bias: try weights.take("\(p).attn.in_proj_bias", shape: [3 * width])),
                outProjection: try linear(weights, "\(p).attn.out_proj", in: width, out: width),
                ln2: try layerNorm(weights, "\(p).ln_2", width),
                fc: try linear(weights, "\(p).mlp.c_fc", in: width, out: 4 * width),
                proj: try linear(weights, "\(p).mlp.c_proj", in: 4 * width, out: width),
                heads: heads)
        })
    }
}
