/// The hyper-parameters of a guided-diffusion UNet ("ADM"), mirroring the flags of
/// guided-diffusion's `create_model` (JSON keys are the same snake_case names).
public struct UNetConfig: Codable, Equatable, Sendable {
    public var imageSize: Int
    public var inChannels: Int = 3
    /// `num_channels`: the base channel count.
    public var modelChannels: Int
    public var numResBlocks: Int
    /// Channel multiplier per resolution level; may hold 0.5 (the 512x512 model).
    public var channelMult: [Double]
    /// Resolutions (in pixels, e.g. 32, 16, 8) at which attention blocks are used.
    public var attentionResolutions: [Int]
    public var numHeads: Int = 4
    /// Channels per attention head; when set (not -1) it overrides `numHeads`.
    public var numHeadChannels: Int = -1
    public var numHeadsUpsample: Int = -1
    public var learnSigma: Bool = true
    /// Number of classes for a class-conditional model (1000 for ImageNet), nil otherwise.
    public var numClasses: Int?
    public var useScaleShiftNorm: Bool = true
    public var resblockUpdown: Bool = true
    public var useNewAttentionOrder: Bool = false
    /// Downsample/Upsample with a convolution when `resblockUpdown` is false.
    public var convResample: Bool = true

    enum CodingKeys: String, CodingKey {
        case imageSize = "image_size", inChannels = "in_channels", modelChannels = "num_channels"
        case numResBlocks = "num_res_blocks", channelMult = "channel_mult"
        case attentionResolutions = "attention_resolutions", numHeads = "num_heads"
        case numHeadChannels = "num_head_channels", numHeadsUpsample = "num_heads_upsample"
        case learnSigma = "learn_sigma", numClasses = "num_classes", useScaleShiftNorm = "use_scale_shift_norm"
        case resblockUpdown = "resblock_updown", useNewAttentionOrder = "use_new_attention_order"
        case convResample = "conv_resample"
    }

    public init(imageSize: Int, inChannels: Int = 3, modelChannels: Int, numResBlocks: Int, channelMult: [Double],
                attentionResolutions: [Int], numHeads: Int = 4, numHeadChannels: Int = -1, numHeadsUpsample: Int = -1,
                learnSigma: Bool = true, numClasses: Int? = nil, useScaleShiftNorm: Bool = true,
                resblockUpdown: Bool = true, useNewAttentionOrder: Bool = false, convResample: Bool = true) {
        self.imageSize = imageSize
        self.inChannels = inChannels
        self.modelChannels = modelChannels
        self.numResBlocks = numResBlocks
        self.channelMult = channelMult
        self.attentionResolutions = attentionResolutions
        self.numHeads = numHeads
        self.numHeadChannels = numHeadChannels
        self.numHeadsUpsample = numHeadsUpsample
        self.learnSigma = learnSigma
        self.numClasses = numClasses
        self.useScaleShiftNorm = useScaleShiftNorm
        self.resblockUpdown = resblockUpdown
        self.useNewAttentionOrder = useNewAttentionOrder
        self.convResample = convResample
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        imageSize = try c.decode(Int.self, forKey: .imageSize)
        inChannels = try c.decodeIfPresent(Int.self, forKey: .inChannels) ?? 3
        modelChannels = try c.decode(Int.self, forKey: .modelChannels)
        numResBlocks = try c.decode(Int.self, forKey: .numResBlocks)
        channelMult = try c.decode([Double].self, forKey: .channelMult)
        attentionResolutions = try c.decode([Int].self, forKey: .attentionResolutions)
        numHeads = try c.decodeIfPresent(Int.self, forKey: .numHeads) ?? 4
        numHeadChannels = try c.decodeIfPresent(Int.self, forKey: .numHeadChannels) ?? -1
        numHeadsUpsample = try c.decodeIfPresent(Int.self, forKey: .numHeadsUpsample) ?? -1
        learnSigma = try c.decodeIfPresent(Bool.self, forKey: .learnSigma) ?? true
        numClasses = try c.decodeIfPresent(Int.self, forKey: .numClasses)
        useScaleShiftNorm = try c.decodeIfPresent(Bool.self, forKey: .useScaleShiftNorm) ?? true
        resblockUpdown = try c.decodeIfPresent(Bool.self, forKey: .resblockUpdown) ?? true
        useNewAttentionOrder = try c.decodeIfPresent(Bool.self, forKey: .useNewAttentionOrder) ?? false
        convResample = try c.decodeIfPresent(Bool.self, forKey: .convResample) ?? true
    }

    /// 6 output channels (ε and the variance interpolation) with learned sigma, else 3.
    public var outChannels: Int { learnSigma ? 2 * inChannels : inChannels }
    public var timeEmbedDim: Int { modelChannels * 4 }
    /// Downsampling factors at which attention is used (`image_size // resolution`).
    public var attentionDownsampleFactors: Set<Int> { Set(attentionResolutions.map { imageSize / $0 }) }
    func channels(at level: Int) -> Int { Int(channelMult[level] * Double(modelChannels)) }

    /// Checks that the config describes a buildable network.
    public func validate() throws {
        guard imageSize > 0, modelChannels > 0, numResBlocks > 0, !channelMult.isEmpty, inChannels > 0 else {
            throw ModelError.invalidConfig("image_size, num_channels, num_res_blocks, in_channels must be positive and channel_mult non-empty")
        }
        // Bounds far beyond any real model, checked before anything is computed from them
        // (fuzzing found `channel_mult: [1e63]` trapping in the conversion to an integer).
        guard imageSize <= 1 << 14, modelChannels <= 1 << 14, numResBlocks <= 64, channelMult.count <= 32, inChannels <= 64 else {
            throw ModelError.invalidConfig("image_size, num_channels (at most 16384), num_res_blocks (64), channel_mult (32 levels)"
                + " or in_channels (64) is out of range")
        }
        guard channelMult.allSatisfy({ $0.isFinite && $0 > 0 && $0 <= 64 }) else {
            throw ModelError.invalidConfig("channel_mult \(channelMult) must hold numbers above 0 and at most 64")
        }
        guard numHeadChannels == -1 || (1...(1 << 14)).contains(numHeadChannels), (1...1024).contains(numHeads),
              numHeadsUpsample == -1 || (1...1024).contains(numHeadsUpsample) else {
            throw ModelError.invalidConfig("num_head_channels (-1 or positive), num_heads and num_heads_upsample (-1 or positive) are out of range")
        }
        if let numClasses, !(1...1_000_000).contains(numClasses) {
            throw ModelError.invalidConfig("num_classes must be 1 to 1000000, got \(numClasses)")
        }
        guard attentionResolutions.allSatisfy({ $0 > 0 && imageSize % $0 == 0 }) else {
            throw ModelError.invalidConfig("attention_resolutions \(attentionResolutions) must divide image_size \(imageSize)")
        }
        for level in channelMult.indices {
            let ch = channels(at: level)
            guard ch > 0, ch % 32 == 0 else {
                throw ModelError.invalidConfig("level \(level) has \(ch) channels; GroupNorm(32) needs a positive multiple of 32")
            }
            if numHeadChannels != -1 && ch % numHeadChannels != 0 {
                throw ModelError.invalidConfig("\(ch) channels are not divisible by num_head_channels \(numHeadChannels)")
            }
        }
    }

    func heads(channels: Int, upsampling: Bool) -> Int {
        if numHeadChannels != -1 { return channels / numHeadChannels }
        return upsampling && numHeadsUpsample != -1 ? numHeadsUpsample : numHeads
    }
}

extension UNetConfig {
    /// The official guided-diffusion checkpoints, by file name (without `.pt`).
    public static let presets: [String: UNetConfig] = [
        // Blended Diffusion's generator.
        "256x256_diffusion_uncond": UNetConfig(imageSize: 256, modelChannels: 256, numResBlocks: 2,
                                               channelMult: [1, 1, 2, 2, 4, 4], attentionResolutions: [32, 16, 8],
                                               numHeadChannels: 64),
        "256x256_diffusion": UNetConfig(imageSize: 256, modelChannels: 256, numResBlocks: 2,
                                        channelMult: [1, 1, 2, 2, 4, 4], attentionResolutions: [32, 16, 8],
                                        numHeadChannels: 64, numClasses: 1000),
        "512x512_diffusion": UNetConfig(imageSize: 512, modelChannels: 256, numResBlocks: 2,
                                        channelMult: [0.5, 1, 1, 2, 2, 4, 4], attentionResolutions: [32, 16, 8],
                                        numHeadChannels: 64, numClasses: 1000),
        "128x128_diffusion": UNetConfig(imageSize: 128, modelChannels: 256, numResBlocks: 2,
                                        channelMult: [1, 1, 2, 3, 4], attentionResolutions: [32, 16, 8],
                                        numHeads: 4, numClasses: 1000),
        "64x64_diffusion": UNetConfig(imageSize: 64, modelChannels: 192, numResBlocks: 3,
                                      channelMult: [1, 2, 3, 4], attentionResolutions: [32, 16, 8],
                                      numHeadChannels: 64, numClasses: 1000, useNewAttentionOrder: true),
    ]
}
