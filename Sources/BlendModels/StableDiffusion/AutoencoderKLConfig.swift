import Foundation

/// The hyper-parameters of Stable Diffusion's VAE, mirroring the `vae/config.json` that
/// diffusers writes for `AutoencoderKL` (snake_case keys; absent keys take diffusers'
/// defaults, diffusers/models/autoencoders/autoencoder_kl.py). SD 1.x and 2.x share
/// `stableDiffusion`: 4 levels of 128/256/512/512 channels, 2 ResNets per encoder level
/// (3 per decoder level), 4 latent channels, one 8× downsampling, scaling factor 0.18215.
public struct AutoencoderKLConfig: Codable, Equatable, Sendable {
    public var inChannels: Int = 3
    public var outChannels: Int = 3
    public var downBlockTypes: [String] = ["DownEncoderBlock2D"]
    public var upBlockTypes: [String] = ["UpDecoderBlock2D"]
    public var blockOutChannels: [Int] = [64]
    public var layersPerBlock: Int = 1
    public var actFn: String = "silu"
    public var latentChannels: Int = 4
    public var normNumGroups: Int = 32
    public var sampleSize: Int?
    /// Latents the UNet sees are `scalingFactor ×` the VAE's (Rombach et al. 2022, §4.3.2 and appendix G).
    public var scalingFactor: Double = 0.18215
    public var shiftFactor: Double?
    public var useQuantConv: Bool = true
    public var usePostQuantConv: Bool = true
    public var midBlockAddAttention: Bool = true

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels", outChannels = "out_channels", downBlockTypes = "down_block_types"
        case upBlockTypes = "up_block_types", blockOutChannels = "block_out_channels", layersPerBlock = "layers_per_block"
        case actFn = "act_fn", latentChannels = "latent_channels", normNumGroups = "norm_num_groups"
        case sampleSize = "sample_size", scalingFactor = "scaling_factor", shiftFactor = "shift_factor"
        case useQuantConv = "use_quant_conv", usePostQuantConv = "use_post_quant_conv"
        case midBlockAddAttention = "mid_block_add_attention"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var s = AutoencoderKLConfig()
        func read<T: Decodable>(_ key: CodingKeys, into value: inout T) throws {
            if let v = try c.decodeIfPresent(T.self, forKey: key) { value = v }
        }
        try read(.inChannels, into: &s.inChannels)
        try read(.outChannels, into: &s.outChannels)
        try read(.downBlockTypes, into: &s.downBlockTypes)
        try read(.upBlockTypes, into: &s.upBlockTypes)
        try read(.blockOutChannels, into: &s.blockOutChannels)
        try read(.layersPerBlock, into: &s.layersPerBlock)
        try read(.actFn, into: &s.actFn)
        try read(.latentChannels, into: &s.latentChannels)
        try read(.normNumGroups, into: &s.normNumGroups)
        s.sampleSize = try c.decodeIfPresent(Int.self, forKey: .sampleSize)
        try read(.scalingFactor, into: &s.scalingFactor)
        s.shiftFactor = try c.decodeIfPresent(Double.self, forKey: .shiftFactor)
        try read(.useQuantConv, into: &s.useQuantConv)
        try read(.usePostQuantConv, into: &s.usePostQuantConv)
        try read(.midBlockAddAttention, into: &s.midBlockAddAttention)
        self = s
    }

    /// Reads a diffusers `config.json`; a malformed file or an unsupported option is a
    /// `ModelError.invalidConfig` naming the key.
    public static func decode(json: Data) throws -> AutoencoderKLConfig {
        let config: AutoencoderKLConfig
        do {
            config = try JSONDecoder().decode(AutoencoderKLConfig.self, from: json)
        } catch let error as DecodingError {
            throw ModelError.invalidConfig("VAE config.json: \(describe(error))")
        }
        try config.validate()
        return config
    }

    public var levels: Int { blockOutChannels.count }
    /// The spatial downsampling factor between images and latents (8 for SD).
    public var downsamplingFactor: Int { 1 << (levels - 1) }

    public func validate() throws {
        func fail(_ message: String) -> ModelError { .invalidConfig("AutoencoderKL: \(message)") }
        guard inChannels > 0, outChannels > 0, latentChannels > 0, layersPerBlock > 0, !blockOutChannels.isEmpty else {
            throw fail("in_channels, out_channels, latent_channels, layers_per_block and block_out_channels must be positive")
        }
        guard downBlockTypes.count == levels, downBlockTypes.allSatisfy({ $0 == "DownEncoderBlock2D" }),
              upBlockTypes.count == levels, upBlockTypes.allSatisfy({ $0 == "UpDecoderBlock2D" }) else {
            throw fail("only DownEncoderBlock2D/UpDecoderBlock2D blocks, one per block_out_channels entry (\(levels)), are supported")
        }
        guard normNumGroups > 0, blockOutChannels.allSatisfy({ $0 > 0 && $0 % normNumGroups == 0 }) else {
            throw fail("block_out_channels \(blockOutChannels) must be positive multiples of norm_num_groups \(normNumGroups)")
        }
        guard actFn == "silu" else { throw fail("act_fn \(actFn) is not supported (only silu)") }
        guard shiftFactor == nil || shiftFactor == 0 else { throw fail("shift_factor is not supported (SD 3 / Flux VAEs)") }
        guard scalingFactor > 0 else { throw fail("scaling_factor must be positive") }
    }
}

extension AutoencoderKLConfig {
    /// The VAE of SD 1.x and 2.x (`vae/config.json` of runwayml/stable-diffusion-v1-5).
    public static let stableDiffusion: AutoencoderKLConfig = {
        var c = AutoencoderKLConfig()
        c.downBlockTypes = Array(repeating: "DownEncoderBlock2D", count: 4)
        c.upBlockTypes = Array(repeating: "UpDecoderBlock2D", count: 4)
        c.blockOutChannels = [128, 256, 512, 512]
        c.layersPerBlock = 2
        c.sampleSize = 512
        return c
    }()
}
