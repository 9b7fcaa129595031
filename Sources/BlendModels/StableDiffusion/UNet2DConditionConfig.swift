import Foundation

/// The hyper-parameters of Stable Diffusion's UNet, mirroring the `unet/config.json` that
/// diffusers writes for `UNet2DConditionModel` (JSON keys are diffusers' snake_case names;
/// absent keys take diffusers' defaults). Only the options SD 1.x and 2.x use are
/// implemented; `validate()` names any other value it meets.
///
/// Diffusers' `attention_head_dim` is, for historical reasons, the number of heads
/// (8 in SD 1.x: head dim 40/80/160; `[5, 10, 20, 20]` in SD 2.x: head dim 64), unless
/// `num_attention_heads` is given (diffusers/models/unets/unet_2d_condition.py).
public struct UNet2DConditionConfig: Codable, Equatable, Sendable {
    public var sampleSize: Int?
    public var inChannels: Int = 4
    public var outChannels: Int = 4
    public var centerInputSample: Bool = false
    public var flipSinToCos: Bool = true
    public var freqShift: Int = 0
    /// "CrossAttnDownBlock2D" (ResNets + spatial transformers) or "DownBlock2D" (ResNets only).
    public var downBlockTypes: [String] = ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]
    public var midBlockType: String? = "UNetMidBlock2DCrossAttn"
    /// "UpBlock2D" or "CrossAttnUpBlock2D".
    public var upBlockTypes: [String] = ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
    public var blockOutChannels: [Int] = [320, 640, 1280, 1280]
    public var layersPerBlock: PerBlockInt = .all(2)
    public var downsamplePadding: Int = 1
    public var midBlockScaleFactor: Double = 1
    public var actFn: String = "silu"
    public var normNumGroups: Int = 32
    public var normEps: Double = 1e-5
    public var crossAttentionDim: PerBlockInt = .all(1280)
    public var transformerLayersPerBlock: PerBlockInt = .all(1)
    /// Heads per block unless `numAttentionHeads` is set (see the type's comment).
    public var attentionHeadDim: PerBlockInt = .all(8)
    public var numAttentionHeads: PerBlockInt?
    /// Linear (SD 2.x) rather than 1×1 convolution (SD 1.x) projections into and out of the transformers.
    public var useLinearProjection: Bool = false
    /// Attention in float32 for half-precision runs; blend computes in float32 throughout.
    public var upcastAttention: Bool = false
    public var onlyCrossAttention: Bool = false
    public var dualCrossAttention: Bool = false
    public var classEmbedType: String?
    public var additionEmbedType: String?
    public var numClassEmbeds: Int?
    public var resnetTimeScaleShift: String = "default"
    public var timeEmbeddingType: String = "positional"
    public var timeCondProjDim: Int?
    public var encoderHidDim: Int?
    public var convInKernel: Int = 3
    public var convOutKernel: Int = 3
    public var attentionType: String = "default"

    enum CodingKeys: String, CodingKey {
        case sampleSize = "sample_size", inChannels = "in_channels", outChannels = "out_channels"
        case centerInputSample = "center_input_sample", flipSinToCos = "flip_sin_to_cos", freqShift = "freq_shift"
        case downBlockTypes = "down_block_types", midBlockType = "mid_block_type", upBlockTypes = "up_block_types"
        case blockOutChannels = "block_out_channels", layersPerBlock = "layers_per_block"
        case downsamplePadding = "downsample_padding", midBlockScaleFactor = "mid_block_scale_factor", actFn = "act_fn"
        case normNumGroups = "norm_num_groups", normEps = "norm_eps", crossAttentionDim = "cross_attention_dim"
        case transformerLayersPerBlock = "transformer_layers_per_block", attentionHeadDim = "attention_head_dim"
        case numAttentionHeads = "num_attention_heads", useLinearProjection = "use_linear_projection"
        case upcastAttention = "upcast_attention", onlyCrossAttention = "only_cross_attention"
        case dualCrossAttention = "dual_cross_attention", classEmbedType = "class_embed_type"
        case additionEmbedType = "addition_embed_type", numClassEmbeds = "num_class_embeds"
        case resnetTimeScaleShift = "resnet_time_scale_shift", timeEmbeddingType = "time_embedding_type"
        case timeCondProjDim = "time_cond_proj_dim", encoderHidDim = "encoder_hid_dim"
        case convInKernel = "conv_in_kernel", convOutKernel = "conv_out_kernel", attentionType = "attention_type"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var s = UNet2DConditionConfig()
        func read<T: Decodable>(_ key: CodingKeys, into value: inout T) throws {
            if let v = try c.decodeIfPresent(T.self, forKey: key) { value = v }
        }
        func readOptional<T: Decodable>(_ key: CodingKeys, into value: inout T?) throws {
            value = try c.decodeIfPresent(T.self, forKey: key) ?? value
        }
        try readOptional(.sampleSize, into: &s.sampleSize)
        try read(.inChannels, into: &s.inChannels)
        try read(.outChannels, into: &s.outChannels)
        try read(.centerInputSample, into: &s.centerInputSample)
        try read(.flipSinToCos, into: &s.flipSinToCos)
        try read(.freqShift, into: &s.freqShift)
        try read(.downBlockTypes, into: &s.downBlockTypes)
        try readOptional(.midBlockType, into: &s.midBlockType)
        try read(.upBlockTypes, into: &s.upBlockTypes)
        try read(.blockOutChannels, into: &s.blockOutChannels)
        try read(.layersPerBlock, into: &s.layersPerBlock)
        try read(.downsamplePadding, into: &s.downsamplePadding)
        try read(.midBlockScaleFactor, into: &s.midBlockScaleFactor)
        try read(.actFn, into: &s.actFn)
        try read(.normNumGroups, into: &s.normNumGroups)
        try read(.normEps, into: &s.normEps)
        try read(.crossAttentionDim, into: &s.crossAttentionDim)
        try read(.transformerLayersPerBlock, into: &s.transformerLayersPerBlock)
        try read(.attentionHeadDim, into: &s.attentionHeadDim)
        try readOptional(.numAttentionHeads, into: &s.numAttentionHeads)
        try read(.useLinearProjection, into: &s.useLinearProjection)
        try read(.upcastAttention, into: &s.upcastAttention)
        try read(.onlyCrossAttention, into: &s.onlyCrossAttention)
        try read(.dualCrossAttention, into: &s.dualCrossAttention)
        try readOptional(.classEmbedType, into: &s.classEmbedType)
        try readOptional(.additionEmbedType, into: &s.additionEmbedType)
        try readOptional(.numClassEmbeds, into: &s.numClassEmbeds)
        try read(.resnetTimeScaleShift, into: &s.resnetTimeScaleShift)
        try read(.timeEmbeddingType, into: &s.timeEmbeddingType)
        try readOptional(.timeCondProjDim, into: &s.timeCondProjDim)
        try readOptional(.encoderHidDim, into: &s.encoderHidDim)
        try read(.convInKernel, into: &s.convInKernel)
        try read(.convOutKernel, into: &s.convOutKernel)
        try read(.attentionType, into: &s.attentionType)
        self = s
    }

    /// Reads a diffusers `config.json`; a malformed file or an unsupported option is a
    /// `ModelError.invalidConfig` naming the key.
    public static func decode(json: Data) throws -> UNet2DConditionConfig {
        let config: UNet2DConditionConfig
        do {
            config = try JSONDecoder().decode(UNet2DConditionConfig.self, from: json)
        } catch let error as DecodingError {
            throw ModelError.invalidConfig("UNet config.json: \(describe(error))")
        }
        try config.validate()
        return config
    }

    // MARK: - Derived values

    public var levels: Int { blockOutChannels.count }
    /// ResNets per down block (the up blocks have one more).
    public var resnetsPerBlock: Int { layersPerBlock.values(count: levels)?.first ?? 0 }
    /// The timestep MLP's width: 4 × the first block's channels.
    public var timeEmbedDim: Int { blockOutChannels[0] * 4 }
    public func hasCrossAttention(downBlock i: Int) -> Bool { downBlockTypes[i] == "CrossAttnDownBlock2D" }
    public func hasCrossAttention(upBlock i: Int) -> Bool { upBlockTypes[i] == "CrossAttnUpBlock2D" }
    public var hasMidBlock: Bool { midBlockType != nil }
    /// The context width of down block `i`'s cross-attention (`[N, 77, D]`, D = 768 in 1.x, 1024 in 2.x).
    public func contextDim(downBlock i: Int) -> Int { crossAttentionDim.values(count: levels)![i] }
    public func contextDim(upBlock i: Int) -> Int { crossAttentionDim.values(count: levels)!.reversed()[i] }
    /// Attention heads of down block `i` (diffusers: `num_attention_heads or attention_head_dim`).
    public func heads(downBlock i: Int) -> Int { (numAttentionHeads ?? attentionHeadDim).values(count: levels)![i] }
    public func heads(upBlock i: Int) -> Int { (numAttentionHeads ?? attentionHeadDim).values(count: levels)!.reversed()[i] }
    public func transformerLayers(downBlock i: Int) -> Int { transformerLayersPerBlock.values(count: levels)![i] }
    public func transformerLayers(upBlock i: Int) -> Int { transformerLayersPerBlock.values(count: levels)!.reversed()[i] }

    /// Checks that the config describes a network blend builds; the message names the key.
    public func validate() throws {
        func fail(_ message: String) -> ModelError { .invalidConfig("UNet2DConditionModel: \(message)") }
        if inChannels == 9 {
            throw ModelError.unrecognisedCheckpoint(
                "this is a Stable Diffusion inpainting UNet (9 input channels: latent, mask, masked-image latent), "
                    + "which blend does not support yet; use a text-to-image SD 1.x or 2.x checkpoint")
        }
        guard inChannels > 0, outChannels > 0, !blockOutChannels.isEmpty, blockOutChannels.allSatisfy({ $0 > 0 }) else {
            throw fail("in_channels, out_channels and block_out_channels must be positive")
        }
        guard downBlockTypes.count == levels, upBlockTypes.count == levels else {
            throw fail("down_block_types and up_block_types need one entry per block_out_channels entry (\(levels))")
        }
        for type in downBlockTypes where !["CrossAttnDownBlock2D", "DownBlock2D"].contains(type) {
            throw fail("down block type \(type) is not supported (CrossAttnDownBlock2D, DownBlock2D)")
        }
        for type in upBlockTypes where !["CrossAttnUpBlock2D", "UpBlock2D"].contains(type) {
            throw fail("up block type \(type) is not supported (CrossAttnUpBlock2D, UpBlock2D)")
        }
        if let midBlockType, midBlockType != "UNetMidBlock2DCrossAttn" {
            throw fail("mid_block_type \(midBlockType) is not supported (UNetMidBlock2DCrossAttn)")
        }
        guard let layers = layersPerBlock.values(count: levels), let first = layers.first, first > 0,
              layers.allSatisfy({ $0 == first }) else {
            throw fail("layers_per_block must be one positive number for every block")
        }
        for (name, value) in [("cross_attention_dim", crossAttentionDim), ("transformer_layers_per_block", transformerLayersPerBlock),
                              ("attention_head_dim", numAttentionHeads ?? attentionHeadDim)] {
            guard let values = value.values(count: levels), values.allSatisfy({ $0 > 0 }) else {
                throw fail("\(name) must be a positive number or a list of \(levels)")
            }
        }
        guard normNumGroups > 0, blockOutChannels.allSatisfy({ $0 % normNumGroups == 0 }) else {
            throw fail("block_out_channels \(blockOutChannels) must be multiples of norm_num_groups \(normNumGroups)")
        }
        for i in 0..<levels where hasCrossAttention(downBlock: i) && blockOutChannels[i] % heads(downBlock: i) != 0 {
            throw fail("\(blockOutChannels[i]) channels of block \(i) do not split into \(heads(downBlock: i)) heads")
        }
        for i in 0..<levels where hasCrossAttention(upBlock: i) && blockOutChannels.reversed()[i] % heads(upBlock: i) != 0 {
            throw fail("\(blockOutChannels.reversed()[i]) channels of up block \(i) do not split into \(heads(upBlock: i)) heads")
        }
        let unsupported: [(String, Bool)] = [
            ("act_fn \(actFn) (only silu)", actFn != "silu"),
            ("only_cross_attention", onlyCrossAttention), ("dual_cross_attention", dualCrossAttention),
            ("class_embed_type \(classEmbedType ?? "")", classEmbedType != nil),
            ("addition_embed_type \(additionEmbedType ?? "") (SDXL)", additionEmbedType != nil),
            ("num_class_embeds", numClassEmbeds != nil),
            ("resnet_time_scale_shift \(resnetTimeScaleShift)", resnetTimeScaleShift != "default"),
            ("time_embedding_type \(timeEmbeddingType)", timeEmbeddingType != "positional"),
            ("time_cond_proj_dim", timeCondProjDim != nil), ("encoder_hid_dim", encoderHidDim != nil),
            ("conv_in_kernel/conv_out_kernel other than 3", convInKernel != 3 || convOutKernel != 3),
            ("attention_type \(attentionType)", attentionType != "default"),
            ("downsample_padding \(downsamplePadding)", downsamplePadding < 0),
        ]
        if let (what, _) = unsupported.first(where: { $0.1 }) {
            throw fail("\(what) is not supported; blend runs the Stable Diffusion 1.x/2.x UNet")
        }
    }
}

extension UNet2DConditionConfig {
    /// SD 1.4 / 1.5 (`unet/config.json` of runwayml/stable-diffusion-v1-5): 8 heads, 1×1 conv
    /// projections, CLIP ViT-L/14 context (768).
    public static let stableDiffusion1: UNet2DConditionConfig = {
        var c = UNet2DConditionConfig()
        c.sampleSize = 64
        c.crossAttentionDim = .all(768)
        c.attentionHeadDim = .all(8)
        return c
    }()

    /// SD 2.0 / 2.1 (base and 768-v): head dim 64 (heads 5, 10, 20, 20), linear projections,
    /// OpenCLIP ViT-H/14 context (1024). `sample_size` is 64 for the 512 models, 96 for 768.
    public static let stableDiffusion2: UNet2DConditionConfig = {
        var c = UNet2DConditionConfig()
        c.sampleSize = 64
        c.crossAttentionDim = .all(1024)
        c.attentionHeadDim = .perBlock([5, 10, 20, 20])
        c.useLinearProjection = true
        return c
    }()
}

/// One line for a JSON decoding failure: the key path and what was wrong.
func describe(_ error: DecodingError) -> String {
    func path(_ context: DecodingError.Context) -> String {
        let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
        return keys.isEmpty ? "the file" : "'\(keys.joined(separator: "."))'"
    }
    switch error {
    case let .typeMismatch(_, context), let .valueNotFound(_, context):
        return "\(path(context)) has the wrong type (\(context.debugDescription))"
    case let .keyNotFound(key, context):
        return "missing key '\(key.stringValue)' in \(path(context))"
    case let .dataCorrupted(context):
        return "\(path(context)) is not valid JSON (\(context.debugDescription))"
    @unknown default:
        return "\(error)"
    }
}
