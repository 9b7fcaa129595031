/// The networks of a Stable Diffusion checkpoint.
public enum StableDiffusionComponent: String, Sendable, CaseIterable, CustomStringConvertible {
    case unet
    case vae
    case textEncoder = "text_encoder"

    /// The prefix of the component's tensors in a CompVis single file (the VAE's may also be
    /// `vae.`, or none in a stand-alone VAE file).
    public var compVisPrefix: String {
        switch self {
        case .unet: return "model.diffusion_model."
        case .vae: return "first_stage_model."
        case .textEncoder: return "cond_stage_model."
        }
    }

    public var description: String {
        switch self {
        case .unet: return "UNet"
        case .vae: return "VAE"
        case .textEncoder: return "text encoder"
        }
    }
}

/// What the tensors of a Stable Diffusion file (or folder) reveal.
public struct StableDiffusionInfo: Equatable, Sendable, CustomStringConvertible {
    public enum Version: String, Sendable {
        /// SD 1.x: CLIP ViT-L/14 text context (768 wide), 8 heads.
        case v1 = "1.x"
        /// SD 2.x: OpenCLIP ViT-H/14 text context (1024 wide), head dim 64.
        case v2 = "2.x"
        /// SDXL: two text encoders and a size embedding; not supported.
        case xl = "XL"
    }

    public enum Layout: String, Sendable {
        /// Original CompVis/Stability names (`model.diffusion_model.*`, ...), one file.
        case compVis = "CompVis single-file layout"
        /// diffusers names (`down_blocks.*`, ...): a pipeline folder or one component's file.
        case diffusers = "diffusers layout"
    }

    /// nil when the UNet is absent or its context width is neither 768 nor 1024.
    public var version: Version?
    public var layout: Layout
    /// The networks present.
    public var components: [StableDiffusionComponent]
    /// The UNet's input channels: 4, or 9 for inpainting models (latent, mask, masked-image latent).
    public var unetInChannels: Int?
    /// The UNet's first-level channels (320 in SD 1.x and 2.x).
    public var unetBaseChannels: Int?
    /// The width of the text context the UNet attends to.
    public var crossAttentionDim: Int?
    /// Tensors under `model_ema.` (the EMA copy a non-pruned training checkpoint carries).
    public var emaTensorCount: Int = 0

    public var isInpainting: Bool { unetInChannels == 9 }

    public var description: String {
        var text = "Stable Diffusion"
        if let version { text += " \(version.rawValue)" }
        if isInpainting { text += " inpainting (not supported yet)" }
        if version == .xl { text += " (not supported)" }
        text += ", \(layout.rawValue): " + components.map(\.description).joined(separator: ", ")
        var details: [String] = []
        if let unetBaseChannels { details.append("UNet \(unetBaseChannels) base channels") }
        if let unetInChannels { details.append("\(unetInChannels) input channels") }
        if let crossAttentionDim { details.append("context \(crossAttentionDim)") }
        if emaTensorCount > 0 { details.append("\(emaTensorCount) EMA tensors (ignored)") }
        if !details.isEmpty { text += " (" + details.joined(separator: ", ") + ")" }
        return text
    }
}

extension ArchitectureRecognizer {
    /// Stable Diffusion from tensor names and shapes: a CompVis single file (UNet, VAE and/or
    /// text encoder under their prefixes; a training checkpoint once `Checkpoint.modelWeights()`
    /// has removed its `state_dict` wrapper), a stand-alone CompVis VAE, or one component file
    /// of a diffusers folder.
    static func stableDiffusion(_ shapes: [String: [Int]]) -> StableDiffusionInfo? {
        let u = StableDiffusionComponent.unet.compVisPrefix
        if let convIn = shapes[u + "input_blocks.0.0.weight"], convIn.count == 4 {
            var info = StableDiffusionInfo(version: nil, layout: .compVis, components: [.unet],
                                           unetInChannels: convIn[1], unetBaseChannels: convIn[0])
            info.crossAttentionDim = shapes.first { $0.key.hasPrefix(u) && $0.key.hasSuffix(".attn2.to_k.weight") }?.value.last
            if shapes.keys.contains(where: { $0.hasPrefix(u + "label_emb.") || $0.hasPrefix("conditioner.") }) {
                info.version = .xl
            } else {
                info.version = info.crossAttentionDim == 768 ? .v1 : info.crossAttentionDim == 1024 ? .v2 : nil
            }
            if AutoencoderPrefixes.compVis.contains(where: { shapes[$0 + "encoder.conv_in.weight"] != nil && !$0.isEmpty }) {
                info.components.append(.vae)
            }
            if shapes.keys.contains(where: { $0.hasPrefix(StableDiffusionComponent.textEncoder.compVisPrefix) }) {
                info.components.append(.textEncoder)
            }
            info.emaTensorCount = shapes.keys.filter { $0.hasPrefix("model_ema.") && $0 != "model_ema.decay" && $0 != "model_ema.num_updates" }.count
            return info
        }
        if let vaePrefix = AutoencoderPrefixes.compVis.first(where: { shapes[$0 + "encoder.conv_in.weight"] != nil }),
           shapes[vaePrefix + "decoder.conv_in.weight"] != nil, shapes[vaePrefix + "encoder.down.0.block.0.conv1.weight"] != nil {
            return StableDiffusionInfo(version: nil, layout: .compVis, components: [.vae])
        }
        if let convIn = shapes["conv_in.weight"], convIn.count == 4, shapes["time_embedding.linear_1.weight"] != nil,
           shapes.keys.contains(where: { $0.hasPrefix("down_blocks.") }) {
            var info = StableDiffusionInfo(version: nil, layout: .diffusers, components: [.unet],
                                           unetInChannels: convIn[1], unetBaseChannels: convIn[0])
            info.crossAttentionDim = shapes.first { $0.key.hasSuffix(".attn2.to_k.weight") }?.value.last
            info.version = shapes["add_embedding.linear_1.weight"] != nil ? .xl
                : info.crossAttentionDim == 768 ? .v1 : info.crossAttentionDim == 1024 ? .v2 : nil
            return info
        }
        if shapes["encoder.conv_in.weight"] != nil, shapes["decoder.conv_in.weight"] != nil,
           shapes.keys.contains(where: { $0.hasPrefix("encoder.down_blocks.") }) {
            return StableDiffusionInfo(version: nil, layout: .diffusers, components: [.vae])
        }
        return nil
    }
}

/// Where CompVis-layout files keep the VAE (SD files, some merges, stand-alone VAE files).
enum AutoencoderPrefixes {
    static let compVis = ["first_stage_model.", "vae.", ""]
}
