/// The hyper-parameters of an OpenAI CLIP model with a ViT image encoder, named as in
/// the reference `CLIP.__init__`. Every field can be read off the checkpoint's tensor
/// shapes (``ClipConfig/inferred(from:)``), as the reference's `build_model` does.
public struct ClipConfig: Codable, Equatable, Sendable {
    public var embedDim: Int
    public var imageResolution: Int
    public var visionLayers: Int
    public var visionWidth: Int
    public var visionPatchSize: Int
    public var contextLength: Int
    public var vocabSize: Int
    public var transformerWidth: Int
    public var transformerHeads: Int
    public var transformerLayers: Int

    enum CodingKeys: String, CodingKey {
        case embedDim = "embed_dim", imageResolution = "image_resolution", visionLayers = "vision_layers"
        case visionWidth = "vision_width", visionPatchSize = "vision_patch_size", contextLength = "context_length"
        case vocabSize = "vocab_size", transformerWidth = "transformer_width", transformerHeads = "transformer_heads"
        case transformerLayers = "transformer_layers"
    }

    public init(embedDim: Int, imageResolution: Int, visionLayers: Int, visionWidth: Int, visionPatchSize: Int,
                contextLength: Int = 77, vocabSize: Int = 49408, transformerWidth: Int, transformerHeads: Int,
                transformerLayers: Int) {
        self.embedDim = embedDim
        self.imageResolution = imageResolution
        self.visionLayers = visionLayers
        self.visionWidth = visionWidth
        self.visionPatchSize = visionPatchSize
        self.contextLength = contextLength
        self.vocabSize = vocabSize
        self.transformerWidth = transformerWidth
        self.transformerHeads = transformerHeads
        self.transformerLayers = transformerLayers
    }

    /// The reference uses 64-channel heads in the image transformer.
    public var visionHeads: Int { visionWidth / 64 }
    public var gridSize: Int { imageResolution / visionPatchSize }

    public func validate() throws {
        guard [embedDim, imageResolution, visionLayers, visionWidth, visionPatchSize, contextLength, vocabSize,
               transformerWidth, transformerHeads, transformerLayers].allSatisfy({ $0 > 0 }) else {
            throw ModelError.invalidConfig("every CLIP config field must be positive: \(self)")
        }
        guard [embedDim, imageResolution, visionLayers, visionWidth, visionPatchSize, contextLength, vocabSize,
               transformerWidth, transformerHeads, transformerLayers].allSatisfy({ $0 <= 1 << 20 }) else {
            throw ModelError.invalidConfig("a CLIP config field is over 1048576: \(self)")
        }
        guard imageResolution % visionPatchSize == 0 else {
            throw ModelError.invalidConfig("image_resolution \(imageResolution) is not a multiple of vision_patch_size \(visionPatchSize)")
        }
        guard visionWidth % 64 == 0, transformerWidth % transformerHeads == 0 else {
            throw ModelError.invalidConfig("vision_width must be a multiple of 64 and transformer_width of transformer_heads")
        }
    }

    /// The official OpenAI CLIP ViT models, by their download names.
    public static let presets: [String: ClipConfig] = [
        "ViT-B/32": ClipConfig(embedDim: 512, imageResolution: 224, visionLayers: 12, visionWidth: 768, visionPatchSize: 32,
                               transformerWidth: 512, transformerHeads: 8, transformerLayers: 12),
        "ViT-B/16": ClipConfig(embedDim: 512, imageResolution: 224, visionLayers: 12, visionWidth: 768, visionPatchSize: 16,
                               transformerWidth: 512, transformerHeads: 8, transformerLayers: 12),
        "ViT-L/14": ClipConfig(embedDim: 768, imageResolution: 224, visionLayers: 24, visionWidth: 1024, visionPatchSize: 14,
                               transformerWidth: 768, transformerHeads: 12, transformerLayers: 12),
    ]
}
