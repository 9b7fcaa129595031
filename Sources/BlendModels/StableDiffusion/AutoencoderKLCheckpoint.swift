import Foundation
import BlendTensor

// The checkpoint key layouts of Stable Diffusion's VAE, in one place. Level i of n.
//
//   diffusers folder (vae/)                        CompVis (prefix first_stage_model. in SD files,
//                                                  vae. in some merges, none in stand-alone VAE files)
//   encoder.conv_in                                encoder.conv_in
//   encoder.down_blocks.i.resnets.j                encoder.down.i.block.j
//   encoder.down_blocks.i.downsamplers.0.conv      encoder.down.i.downsample.conv
//   {encoder,decoder}.mid_block.resnets.{0,1}      {encoder,decoder}.mid.block_{1,2}
//   {encoder,decoder}.mid_block.attentions.0       {encoder,decoder}.mid.attn_1
//   {encoder,decoder}.conv_norm_out                {encoder,decoder}.norm_out
//   encoder.conv_out, quant_conv, post_quant_conv  (same)
//   decoder.conv_in, decoder.conv_out              (same)
//   decoder.up_blocks.i.resnets.j                  decoder.up.(n-1-i).block.j   (levels reversed)
//   decoder.up_blocks.i.upsamplers.0.conv          decoder.up.(n-1-i).upsample.conv
// ResnetBlock2D: norm1, conv1, norm2, conv2, conv_shortcut   ldm: ... nin_shortcut
// Mid-block attention: group_norm, to_q, to_k, to_v, to_out.0 (linear [C, C])
//   ldm: norm, q, k, v, proj_out (1×1 conv [C, C, 1, 1]); diffusers < 0.14: group_norm, query, key,
//   value, proj_attn (still in many published vae/ folders)
// (The mapping is the one diffusers' loaders/single_file_utils.py applies.)

extension AutoencoderKL {
    /// The prefixes under which CompVis-layout files hold the VAE, in the order they are tried.
    public static let compVisPrefixes = ["first_stage_model.", "vae.", ""]

    /// Assembles the VAE from checkpoint tensors named in `layout`, checking every shape
    /// against `config` and that none of the VAE's tensors is left unused.
    ///
    /// Throws `ModelError` naming the missing, mis-shaped or unused tensor, or the config problem.
    public init(config: AutoencoderKLConfig, weights: ModelWeights, layout: StableDiffusionKeyLayout) throws {
        try config.validate()
        let keys = VAEKeys(layout: layout, prefix: layout == .compVis ? AutoencoderKL.compVisPrefix(in: weights) : "",
                           levels: config.levels)
        let r = SDWeightReader(weights: weights)
        let groups = config.normNumGroups, channels = config.blockOutChannels

        func resnet(_ block: String, in cin: Int, out cout: Int) throws -> ResnetBlock2D {
            try r.resnet(in: cin, out: cout, timeEmbedDim: nil, groups: groups, eps: 1e-6) { keys.resnetPart(block, $0) }
        }
        func mid(_ part: String, channels c: Int) throws -> VAEMidBlock {
            var attention: VAEAttentionBlock?
            if config.midBlockAddAttention {
                let a = keys.midAttention(part)
                let conv = layout == .compVis
                func proj(_ names: [String]) throws -> LinearLayer {
                    try r.linear(r.name(names.map { "\(a).\($0)" }), in: c, out: c, convKernel: conv)
                }
                attention = VAEAttentionBlock(
                    groupNorm: try r.groupNorm(r.name(["\(a).group_norm", "\(a).norm"]), channels: c, groups: groups, eps: 1e-6),
                    attention: SDAttention(toQ: try proj(conv ? ["q"] : ["query", "to_q"]),
                                           toK: try proj(conv ? ["k"] : ["key", "to_k"]),
                                           toV: try proj(conv ? ["v"] : ["value", "to_v"]),
                                           toOut: try proj(conv ? ["proj_out"] : ["proj_attn", "to_out.0"]),
                                           heads: 1))
            }
            return VAEMidBlock(resnet1: try resnet(keys.midResnet(part, 0), in: c, out: c), attention: attention,
                               resnet2: try resnet(keys.midResnet(part, 1), in: c, out: c))
        }

        self.config = config
        // Encoder: the construction order of diffusers' Encoder.__init__.
        let encoderIn = try r.conv(keys.name("encoder.conv_in"), in: config.inChannels, out: channels[0], kernel: 3)
        var ch = channels[0]
        var down: [(resnets: [ResnetBlock2D], downsampler: Downsample2D?)] = []
        for i in 0..<config.levels {
            var resnets: [ResnetBlock2D] = []
            for j in 0..<config.layersPerBlock {
                resnets.append(try resnet(keys.encoderResnet(i, j), in: ch, out: channels[i]))
                ch = channels[i]
            }
            let downsampler = i < config.levels - 1
                ? Downsample2D(conv: try r.conv(keys.downsampler(i), in: ch, out: ch, kernel: 3, stride: 2, padding: 0),
                               asymmetricPadding: true) : nil
            down.append((resnets, downsampler))
        }
        encoder = VAEEncoder(
            convIn: encoderIn, downBlocks: down, midBlock: try mid("encoder", channels: ch),
            convNormOut: try r.groupNorm(keys.normOut("encoder"), channels: ch, groups: groups, eps: 1e-6),
            convOut: try r.conv(keys.name("encoder.conv_out"), in: ch, out: 2 * config.latentChannels, kernel: 3))
        quantConv = config.useQuantConv
            ? try r.conv(keys.name("quant_conv"), in: 2 * config.latentChannels, out: 2 * config.latentChannels, kernel: 1) : nil
        postQuantConv = config.usePostQuantConv
            ? try r.conv(keys.name("post_quant_conv"), in: config.latentChannels, out: config.latentChannels, kernel: 1) : nil

        // Decoder: diffusers' Decoder.__init__.
        let reversed = Array(channels.reversed())
        ch = reversed[0]
        let decoderIn = try r.conv(keys.name("decoder.conv_in"), in: config.latentChannels, out: ch, kernel: 3)
        let decoderMid = try mid("decoder", channels: ch)
        var up: [(resnets: [ResnetBlock2D], upsampler: Upsample2D?)] = []
        for i in 0..<config.levels {
            var resnets: [ResnetBlock2D] = []
            for j in 0...config.layersPerBlock {
                resnets.append(try resnet(keys.decoderResnet(i, j), in: ch, out: reversed[i]))
                ch = reversed[i]
            }
            let upsampler = i < config.levels - 1 ? Upsample2D(conv: try r.conv(keys.upsampler(i), in: ch, out: ch, kernel: 3)) : nil
            up.append((resnets, upsampler))
        }
        decoder = VAEDecoder(
            convIn: decoderIn, midBlock: decoderMid, upBlocks: up,
            convNormOut: try r.groupNorm(keys.normOut("decoder"), channels: ch, groups: groups, eps: 1e-6),
            convOut: try r.conv(keys.name("decoder.conv_out"), in: ch, out: config.outChannels, kernel: 3))
        if layout == .compVis, keys.prefix.isEmpty {
            // A stand-alone VAE file: everything in it must be the VAE's.
            try weights.finish()
        } else {
            try weights.finish(under: keys.prefix)
        }
    }

    /// The VAE from the tensors of a diffusers `vae/` folder (its `config.json` in
    /// `configJSON`) or of a CompVis file (config inferred from the shapes when `configJSON`
    /// is nil; see ``AutoencoderKLConfig/inferred(fromCompVis:)``).
    public static func load(weights: ModelWeights, layout: StableDiffusionKeyLayout, configJSON: Data?) throws -> AutoencoderKL {
        let config: AutoencoderKLConfig
        if let configJSON {
            config = try AutoencoderKLConfig.decode(json: configJSON)
        } else if layout == .compVis {
            config = try AutoencoderKLConfig.inferred(fromCompVis: weights)
        } else {
            throw ModelError.invalidConfig("a diffusers VAE needs its vae/config.json")
        }
        return try AutoencoderKL(config: config, weights: weights, layout: layout)
    }

    /// The prefix under which `weights` hold a CompVis VAE ("" for a stand-alone VAE file).
    static func compVisPrefix(in weights: ModelWeights) -> String {
        compVisPrefixes.first { weights.contains("\($0)encoder.conv_in.weight") } ?? compVisPrefixes[0]
    }
}

extension AutoencoderKLConfig {
    /// The config of a CompVis-layout VAE read off its tensor shapes: levels and their
    /// channels, ResNets per level, latent channels, whether the mid blocks attend. The
    /// scaling factor is not in the weights: SD's 0.18215.
    ///
    /// Throws `ModelError.unrecognisedCheckpoint` when the file holds no SD VAE.
    public static func inferred(fromCompVis weights: ModelWeights) throws -> AutoencoderKLConfig {
        let p = AutoencoderKL.compVisPrefix(in: weights)
        func shape(_ key: String) -> [Int]? { weights.shape(of: p + key) }
        guard let convIn = shape("encoder.conv_in.weight"), convIn.count == 4,
              let decoderIn = shape("decoder.conv_in.weight"), decoderIn.count == 4,
              let convOut = shape("decoder.conv_out.weight"), convOut.count == 4 else {
            throw ModelError.unrecognisedCheckpoint(
                "this file holds no Stable Diffusion VAE: it has no 'first_stage_model.encoder.conv_in.weight' (or the same without the prefix)")
        }
        var channels: [Int] = []
        while let c = shape("encoder.down.\(channels.count).block.0.conv1.weight")?.first { channels.append(c) }
        var layers = 0
        while shape("encoder.down.0.block.\(layers).conv1.weight") != nil { layers += 1 }
        guard !channels.isEmpty, layers > 0 else {
            throw ModelError.unrecognisedCheckpoint("the VAE's encoder has no 'encoder.down.0.block.0' ResNet")
        }
        var c = AutoencoderKLConfig.stableDiffusion
        c.inChannels = convIn[1]
        c.outChannels = convOut[0]
        c.latentChannels = decoderIn[1]
        c.blockOutChannels = channels
        c.layersPerBlock = layers
        c.downBlockTypes = Array(repeating: "DownEncoderBlock2D", count: channels.count)
        c.upBlockTypes = Array(repeating: "UpDecoderBlock2D", count: channels.count)
        c.sampleSize = nil
        c.useQuantConv = shape("quant_conv.weight") != nil
        c.usePostQuantConv = shape("post_quant_conv.weight") != nil
        c.midBlockAddAttention = shape("encoder.mid.attn_1.q.weight") != nil
        try c.validate()
        return c
    }
}

/// The VAE's tensor names in one layout.
struct VAEKeys {
    let layout: StableDiffusionKeyLayout
    let prefix: String
    let levels: Int

    func name(_ shared: String) -> String { prefix + shared }
    func encoderResnet(_ i: Int, _ j: Int) -> String {
        prefix + (layout == .compVis ? "encoder.down.\(i).block.\(j)" : "encoder.down_blocks.\(i).resnets.\(j)")
    }
    func downsampler(_ i: Int) -> String {
        prefix + (layout == .compVis ? "encoder.down.\(i).downsample.conv" : "encoder.down_blocks.\(i).downsamplers.0.conv")
    }
    func decoderResnet(_ i: Int, _ j: Int) -> String {
        prefix + (layout == .compVis ? "decoder.up.\(levels - 1 - i).block.\(j)" : "decoder.up_blocks.\(i).resnets.\(j)")
    }
    func upsampler(_ i: Int) -> String {
        prefix + (layout == .compVis ? "decoder.up.\(levels - 1 - i).upsample.conv" : "decoder.up_blocks.\(i).upsamplers.0.conv")
    }
    /// `part` is "encoder" or "decoder".
    func midResnet(_ part: String, _ k: Int) -> String {
        prefix + (layout == .compVis ? "\(part).mid.block_\(k + 1)" : "\(part).mid_block.resnets.\(k)")
    }
    func midAttention(_ part: String) -> String {
        prefix + (layout == .compVis ? "\(part).mid.attn_1" : "\(part).mid_block.attentions.0")
    }
    func normOut(_ part: String) -> String { prefix + (layout == .compVis ? "\(part).norm_out" : "\(part).conv_norm_out") }

    func resnetPart(_ block: String, _ part: ResnetPart) -> String {
        switch part {
        case .norm1: return "\(block).norm1"
        case .conv1: return "\(block).conv1"
        case .norm2: return "\(block).norm2"
        case .conv2: return "\(block).conv2"
        case .shortcut: return "\(block).\(layout == .compVis ? "nin_shortcut" : "conv_shortcut")"
        case .timeEmbeddingProjection: return "\(block).time_emb_proj"     // the VAE's blocks have none
        }
    }
}
