/// What `blend models inspect` can say about a file beyond its tensors: which of
/// the networks Blended Diffusion uses it holds, with the configuration its key
/// names and shapes imply. Recognition looks at names and shapes only.
public enum RecognizedArchitecture: Equatable, Sendable, CustomStringConvertible {
    case guidedDiffusionUNet(GuidedDiffusionUNetConfig)
    case clip(CLIPConfig)
    /// LPIPS's learned per-channel weights (`lin0.model.1.weight`, ...) for a backbone.
    case lpipsLinearLayers(backbone: String)
    /// A torchvision VGG (`features.N.weight`): depth 11/13/16/19.
    case torchvisionVGG(depth: Int, batchNorm: Bool, hasClassifier: Bool)
    /// Stable Diffusion: a CompVis single file, a stand-alone VAE, or a diffusers component file.
    case stableDiffusion(StableDiffusionInfo)

    public var description: String {
        switch self {
        case let .stableDiffusion(info): return info.description
        case let .guidedDiffusionUNet(config): return config.description
        case let .clip(config): return config.description
        case let .lpipsLinearLayers(backbone): return "LPIPS linear layers for the \(backbone) backbone"
        case let .torchvisionVGG(depth, batchNorm, hasClassifier):
            return "torchvision VGG\(depth)\(batchNorm ? "_bn" : "")\(hasClassifier ? "" : " (features only)")"
        }
    }
}

/// The `create_model` arguments of an OpenAI guided-diffusion UNet that its weights reveal.
public struct GuidedDiffusionUNetConfig: Equatable, Sendable, CustomStringConvertible {
    public var modelChannels: Int
    public var inChannels: Int
    public var outChannels: Int
    /// True when the model predicts variances too (out channels = 2 × in channels).
    public var learnSigma: Bool
    public var numResBlocks: Int?
    public var channelMult: [Double]?
    /// Downsampling factors of the levels with attention (image size / attention resolution).
    public var attentionDownsampleFactors: [Int]
    /// Number of classes of a class-conditional model; nil for an unconditional one.
    public var numClasses: Int?
    /// The image size guided-diffusion's defaults pair with this channel multiplier, if any.
    public var imageSize: Int?

    public var description: String {
        var parts = ["guided-diffusion UNet", "model channels \(modelChannels)"]
        if let channelMult { parts.append("channel mult (\(channelMult.map { $0 == $0.rounded() ? String(Int($0)) : String($0) }.joined(separator: ", ")))") }
        if let numResBlocks { parts.append("\(numResBlocks) res blocks per level") }
        if let imageSize {
            parts.append("\(imageSize)x\(imageSize)")
            if !attentionDownsampleFactors.isEmpty {
                parts.append("attention at \(attentionDownsampleFactors.map { String(imageSize / $0) }.joined(separator: ","))")
            }
        }
        parts.append("learn_sigma \(learnSigma)")
        parts.append(numClasses.map { "class-conditional (\($0) classes)" } ?? "unconditional")
        return parts.joined(separator: ", ")
    }
}

/// An OpenAI CLIP model's hyper-parameters, as `clip.model.build_model` infers them.
public struct CLIPConfig: Equatable, Sendable, CustomStringConvertible {
    /// "ViT-B/32", "ViT-B/16", "ViT-L/14", "ViT-L/14@336px"; nil for other sizes.
    public var name: String?
    public var embedDim: Int
    public var imageResolution: Int
    public var visionLayers: Int
    public var visionWidth: Int
    public var patchSize: Int
    public var contextLength: Int
    public var vocabSize: Int
    public var textWidth: Int
    public var textLayers: Int

    public var description: String {
        "OpenAI CLIP \(name ?? "ViT (unknown size)"): image \(imageResolution)px, patch \(patchSize), "
            + "vision \(visionLayers) layers x \(visionWidth), text \(textLayers) layers x \(textWidth), embedding \(embedDim)"
    }
}

public enum ArchitectureRecognizer {
    /// The architecture `entries` (a checkpoint's tensor directory) belongs to, or nil.
    public static func recognize(_ entries: [CheckpointEntry]) -> RecognizedArchitecture? {
        let shapes = Dictionary(entries.map { ($0.name, $0.shape) }, uniquingKeysWith: { first, _ in first })
        if let sd = stableDiffusion(shapes) { return .stableDiffusion(sd) }
        if let unet = guidedDiffusion(shapes) { return .guidedDiffusionUNet(unet) }
        if let clip = clip(shapes) { return .clip(clip) }
        if let backbone = lpips(shapes) { return .lpipsLinearLayers(backbone: backbone) }
        return vgg(shapes)
    }

    // MARK: - guided-diffusion

    static func guidedDiffusion(_ shapes: [String: [Int]]) -> GuidedDiffusionUNetConfig? {
        guard let first = shapes["input_blocks.0.0.weight"], first.count == 4,
              let last = shapes["out.2.weight"], last.count == 4 else { return nil }
        // The first convolution has channel_mult[0] x model_channels outputs (half of it
        // for the 512 model); the timestep MLP's input is model_channels itself.
        let channels = shapes["time_embed.0.weight"].flatMap { $0.count == 2 ? $0[1] : nil } ?? first[0]
        let inChannels = first[1], outChannels = last[0]
        var config = GuidedDiffusionUNetConfig(
            modelChannels: channels, inChannels: inChannels, outChannels: outChannels,
            learnSigma: outChannels == 2 * inChannels, numResBlocks: nil, channelMult: nil,
            attentionDownsampleFactors: [], numClasses: shapes["label_emb.weight"]?.first, imageSize: nil)

        // Every level but the deepest ends its output blocks with an upsampler: a `conv`
        // (Upsample) or a second ResBlock (resblock_updown). That gives the level count,
        // and with it the res blocks per level: output blocks = levels x (res blocks + 1).
        let outputBlocks = blockCount("output_blocks", shapes)
        var upsamplers = 0
        for block in 0..<outputBlocks {
            let layers = (0..<4).filter { layer in shapes.keys.contains { $0.hasPrefix("output_blocks.\(block).\(layer).") } }
            let resBlocks = layers.filter { shapes["output_blocks.\(block).\($0).in_layers.0.weight"] != nil }
            if shapes.keys.contains(where: { $0.hasPrefix("output_blocks.\(block).") && $0.hasSuffix(".conv.weight") }) || resBlocks.count > 1 {
                upsamplers += 1
            }
        }
        let levels = upsamplers + 1
        guard outputBlocks > 0, outputBlocks % levels == 0 else { return config }
        let resBlocks = outputBlocks / levels - 1
        guard resBlocks >= 1 else { return config }
        config.numResBlocks = resBlocks

        var mult: [Double] = []
        var attention: [Int] = []
        for level in 0..<levels {
            let block = 1 + level * (resBlocks + 1)
            guard let out = shapes["input_blocks.\(block).0.out_layers.3.weight"]?.first else { return config }
            mult.append(Double(out) / Double(channels))
            if shapes.keys.contains(where: { $0.hasPrefix("input_blocks.\(block).1.") }) { attention.append(1 << level) }
        }
        config.channelMult = mult
        config.attentionDownsampleFactors = attention
        // guided-diffusion's script_util defaults per image size.
        let defaults: [([Double], Int)] = [([0.5, 1, 1, 2, 2, 4, 4], 512), ([1, 1, 2, 2, 4, 4], 256), ([1, 1, 2, 3, 4], 128), ([1, 2, 3, 4], 64)]
        config.imageSize = defaults.first { $0.0 == mult }?.1
        return config
    }

    /// How many `prefix.N.` blocks there are (N counted from 0 without gaps).
    private static func blockCount(_ prefix: String, _ shapes: [String: [Int]]) -> Int {
        var indices = Set<Int>()
        for key in shapes.keys where key.hasPrefix(prefix + ".") {
            if let n = Int(key.dropFirst(prefix.count + 1).prefix { $0 != "." }) { indices.insert(n) }
        }
        var count = 0
        while indices.contains(count) { count += 1 }
        return count
    }

    // MARK: - CLIP

    static func clip(_ shapes: [String: [Int]]) -> CLIPConfig? {
        guard let conv = shapes["visual.conv1.weight"], conv.count == 4,
              let positions = shapes["visual.positional_embedding"], positions.count == 2,
              let tokens = shapes["token_embedding.weight"], tokens.count == 2,
              let textPositions = shapes["positional_embedding"], textPositions.count == 2,
              let projection = shapes["text_projection"], projection.count == 2 else { return nil }
        let width = conv[0], patch = conv[2]
        let grid = Int(Double(positions[0] - 1).squareRoot().rounded())
        let resolution = grid * patch
        var config = CLIPConfig(
            name: nil, embedDim: projection[1], imageResolution: resolution,
            visionLayers: blockCount("visual.transformer.resblocks", shapes), visionWidth: width, patchSize: patch,
            contextLength: textPositions[0], vocabSize: tokens[0], textWidth: tokens[1],
            textLayers: blockCount("transformer.resblocks", shapes))
        let known: [(String, Int, Int, Int, Int)] = [
            ("ViT-B/32", 768, 32, 12, 224), ("ViT-B/16", 768, 16, 12, 224),
            ("ViT-L/14", 1024, 14, 24, 224), ("ViT-L/14@336px", 1024, 14, 24, 336),
        ]
        config.name = known.first { $0.1 == width && $0.2 == patch && $0.3 == config.visionLayers && $0.4 == resolution }?.0
        return config
    }

    // MARK: - LPIPS and VGG

    static func lpips(_ shapes: [String: [Int]]) -> String? {
        var channels: [Int] = []
        while let shape = shapes["lin\(channels.count).model.1.weight"], shape.count == 4 { channels.append(shape[1]) }
        switch channels {
        case [64, 128, 256, 512, 512]: return "vgg"
        case [64, 192, 384, 256, 256]: return "alex"
        case [64, 128, 256, 384, 384, 512, 512]: return "squeeze"
        case []: return nil
        default: return "unknown (\(channels.count) layers)"
        }
    }

    static func vgg(_ shapes: [String: [Int]]) -> RecognizedArchitecture? {
        let features = shapes.filter { $0.key.hasPrefix("features.") && $0.key.hasSuffix(".weight") }
        let convolutions = features.values.filter { $0.count == 4 }.count
        guard convolutions > 0, shapes["features.0.weight"]?.count == 4 else { return nil }
        let depths = [8: 11, 10: 13, 13: 16, 16: 19]
        guard let depth = depths[convolutions] else { return nil }
        let batchNorm = features.values.contains { $0.count == 1 }
        return .torchvisionVGG(depth: depth, batchNorm: batchNorm, hasClassifier: shapes["classifier.6.weight"] != nil)
    }
}
