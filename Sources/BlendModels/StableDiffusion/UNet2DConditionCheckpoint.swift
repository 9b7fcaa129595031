import Foundation
import BlendTensor

// The checkpoint key layouts of Stable Diffusion's UNet, in one place. L = layers_per_block;
// level i of n; "B" = (L+1)·i + j + 1 for down ResNet j, "U" = (L+1)·i + j for up ResNet j.
//
//   diffusers folder (unet/)                   CompVis single file (prefix model.diffusion_model.)
//   time_embedding.linear_{1,2}                time_embed.{0,2}
//   conv_in                                    input_blocks.0.0
//   down_blocks.i.resnets.j                    input_blocks.B.0
//   down_blocks.i.attentions.j                 input_blocks.B.1
//   down_blocks.i.downsamplers.0.conv          input_blocks.(L+1)(i+1).0.op
//   mid_block.resnets.{0,1}                    middle_block.{0,2}
//   mid_block.attentions.0                     middle_block.1
//   up_blocks.i.resnets.j                      output_blocks.U.0
//   up_blocks.i.attentions.j                   output_blocks.U.1
//   up_blocks.i.upsamplers.0.conv              output_blocks.((L+1)i+L).{1, or 2 after an attention}.conv
//   conv_norm_out, conv_out                    out.0, out.2
// ResnetBlock2D: norm1, conv1, time_emb_proj, norm2, conv2, conv_shortcut
//          ldm:  in_layers.0, in_layers.2, emb_layers.1, out_layers.0, out_layers.3, skip_connection
// Transformer2DModel (same names in both): norm, proj_in, proj_out (1×1 conv [C, C, 1, 1] in
//   SD 1.x, linear [C, C] in 2.x), transformer_blocks.k.{norm1, norm2, norm3,
//   attn1.{to_q, to_k, to_v, to_out.0}, attn2.{...}, ff.net.0.proj, ff.net.2}
// Non-pruned single files also hold `model_ema.*` copies (names with the dots removed): ignored.
// (The mapping is the one diffusers' loaders/single_file_utils.py applies.)

extension UNet2DConditionModel {
    /// The prefix of the UNet's tensors in a CompVis single file.
    public static let compVisPrefix = "model.diffusion_model."

    /// Assembles the network from checkpoint tensors named in `layout`, checking every shape
    /// against `config` and that none of the UNet's tensors is left unused (in a single file,
    /// the tensors under ``compVisPrefix``; other networks and EMA copies are not the UNet's).
    ///
    /// Throws `ModelError` naming the missing, mis-shaped or unused tensor, or the config problem.
    public init(config: UNet2DConditionConfig, weights: ModelWeights, layout: StableDiffusionKeyLayout) throws {
        try config.validate()
        let keys = UNetKeys(layout: layout, layers: config.resnetsPerBlock)
        let r = SDWeightReader(weights: weights)
        let groups = config.normNumGroups, eps = Float(config.normEps), ted = config.timeEmbedDim
        let channels = config.blockOutChannels

        func resnet(_ prefix: String, in cin: Int, out cout: Int) throws -> ResnetBlock2D {
            try r.resnet(in: cin, out: cout, timeEmbedDim: ted, groups: groups, eps: eps) { keys.resnetPart(prefix, $0) }
        }
        func transformer(_ prefix: String, channels c: Int, heads: Int, layers: Int, contextDim: Int) throws -> Transformer2DModel {
            let proj = config.useLinearProjection
            func attention(_ name: String, contextDim kv: Int) throws -> SDAttention {
                SDAttention(toQ: try r.linear("\(name).to_q", in: c, out: c, bias: false),
                            toK: try r.linear("\(name).to_k", in: kv, out: c, bias: false),
                            toV: try r.linear("\(name).to_v", in: kv, out: c, bias: false),
                            toOut: try r.linear("\(name).to_out.0", in: c, out: c),
                            heads: heads)
            }
            let blocks = try (0..<layers).map { k -> BasicTransformerBlock in
                let b = "\(prefix).transformer_blocks.\(k)"
                return BasicTransformerBlock(
                    norm1: try r.layerNorm("\(b).norm1", channels: c),
                    selfAttention: try attention("\(b).attn1", contextDim: c),
                    norm2: try r.layerNorm("\(b).norm2", channels: c),
                    crossAttention: try attention("\(b).attn2", contextDim: contextDim),
                    norm3: try r.layerNorm("\(b).norm3", channels: c),
                    feedForward: FeedForwardGEGLU(projIn: try r.linear("\(b).ff.net.0.proj", in: c, out: 8 * c),
                                                  projOut: try r.linear("\(b).ff.net.2", in: 4 * c, out: c)))
            }
            return Transformer2DModel(
                norm: try r.groupNorm("\(prefix).norm", channels: c, groups: groups, eps: 1e-6),
                projIn: try r.linear("\(prefix).proj_in", in: c, out: c, convKernel: !proj),
                blocks: blocks,
                projOut: try r.linear("\(prefix).proj_out", in: c, out: c, convKernel: !proj))
        }

        self.config = config
        timeEmbedding = (try r.linear(keys.timeEmbedding(1), in: channels[0], out: ted),
                         try r.linear(keys.timeEmbedding(2), in: ted, out: ted))
        convIn = try r.conv(keys.convIn, in: config.inChannels, out: channels[0], kernel: 3)

        // The construction order of diffusers' UNet2DConditionModel.__init__.
        var skipChannels = [channels[0]]
        var ch = channels[0]
        var down: [UNetDownBlock] = []
        for i in 0..<config.levels {
            var resnets: [ResnetBlock2D] = [], attentions: [Transformer2DModel] = []
            for j in 0..<config.resnetsPerBlock {
                resnets.append(try resnet(keys.downResnet(i, j), in: ch, out: channels[i]))
                ch = channels[i]
                if config.hasCrossAttention(downBlock: i) {
                    attentions.append(try transformer(keys.downAttention(i, j), channels: ch, heads: config.heads(downBlock: i),
                                                      layers: config.transformerLayers(downBlock: i),
                                                      contextDim: config.contextDim(downBlock: i)))
                }
                skipChannels.append(ch)
            }
            var downsampler: Downsample2D?
            if i < config.levels - 1 {
                downsampler = Downsample2D(conv: try r.conv(keys.downsampler(i), in: ch, out: ch, kernel: 3, stride: 2,
                                                            padding: config.downsamplePadding),
                                           asymmetricPadding: config.downsamplePadding == 0)
                skipChannels.append(ch)
            }
            down.append(UNetDownBlock(resnets: resnets, attentions: attentions, downsampler: downsampler))
        }
        downBlocks = down

        let last = config.levels - 1
        midBlock = config.hasMidBlock ? UNetMidBlock(
            resnet1: try resnet(keys.midResnet(0), in: ch, out: ch),
            attention: try transformer(keys.midAttention, channels: ch, heads: config.heads(downBlock: last),
                                       layers: config.transformerLayers(downBlock: last), contextDim: config.contextDim(downBlock: last)),
            resnet2: try resnet(keys.midResnet(1), in: ch, out: ch)) : nil

        var up: [UNetUpBlock] = []
        let reversed = Array(channels.reversed())
        for i in 0..<config.levels {
            var resnets: [ResnetBlock2D] = [], attentions: [Transformer2DModel] = []
            let attention = config.hasCrossAttention(upBlock: i)
            for j in 0...config.resnetsPerBlock {
                let skip = skipChannels.removeLast()
                resnets.append(try resnet(keys.upResnet(i, j), in: ch + skip, out: reversed[i]))
                ch = reversed[i]
                if attention {
                    attentions.append(try transformer(keys.upAttention(i, j), channels: ch, heads: config.heads(upBlock: i),
                                                      layers: config.transformerLayers(upBlock: i),
                                                      contextDim: config.contextDim(upBlock: i)))
                }
            }
            let upsampler = i < config.levels - 1
                ? Upsample2D(conv: try r.conv(keys.upsampler(i, afterAttention: attention), in: ch, out: ch, kernel: 3)) : nil
            up.append(UNetUpBlock(resnets: resnets, attentions: attentions, upsampler: upsampler))
        }
        upBlocks = up
        convNormOut = try r.groupNorm(keys.convNormOut, channels: ch, groups: groups, eps: eps)
        convOut = try r.conv(keys.convOut, in: ch, out: config.outChannels, kernel: 3)
        try weights.finish(under: keys.prefix)
    }

    /// The UNet from the tensors of a diffusers `unet/` folder (its `config.json` in
    /// `configJSON`) or of a CompVis single file (config inferred from the shapes when
    /// `configJSON` is nil; see ``UNet2DConditionConfig/inferred(fromCompVis:)``).
    public static func load(weights: ModelWeights, layout: StableDiffusionKeyLayout, configJSON: Data?) throws -> UNet2DConditionModel {
        let config: UNet2DConditionConfig
        if let configJSON {
            config = try UNet2DConditionConfig.decode(json: configJSON)
        } else if layout == .compVis {
            config = try UNet2DConditionConfig.inferred(fromCompVis: weights)
        } else {
            throw ModelError.invalidConfig("a diffusers UNet needs its unet/config.json")
        }
        return try UNet2DConditionModel(config: config, weights: weights, layout: layout)
    }
}

extension UNet2DConditionConfig {
    /// The config of the UNet in a CompVis single file, read off its tensor shapes as
    /// diffusers' single-file loader reads SD's original YAML configs: channels, levels,
    /// ResNets per level, which levels attend, transformer depth and context width from the
    /// shapes; SD 1.x's 8 heads when the transformers project with 1×1 convolutions, SD 2.x's
    /// head dim 64 when they project with linear layers (the heads are not in the weights).
    ///
    /// Throws `ModelError.unrecognisedCheckpoint` when the file holds no SD UNet, and the
    /// inpainting refusal of `validate()` for a 9-channel one.
    public static func inferred(fromCompVis weights: ModelWeights) throws -> UNet2DConditionConfig {
        let p = UNet2DConditionModel.compVisPrefix
        func shape(_ key: String) -> [Int]? { weights.shape(of: p + key) }
        guard let first = shape("input_blocks.0.0.weight"), first.count == 4, let last = shape("out.2.weight"), last.count == 4 else {
            throw ModelError.unrecognisedCheckpoint(
                "this file holds no Stable Diffusion UNet: it has no '\(p)input_blocks.0.0.weight' / '\(p)out.2.weight'")
        }
        let names = weights.keys.filter { $0.hasPrefix(p) }.map { String($0.dropFirst(p.count)) }
        func indices(_ block: String) -> Set<Int> {
            Set(names.compactMap { name in
                guard name.hasPrefix(block + ".") else { return nil }
                return Int(name.dropFirst(block.count + 1).prefix { $0 != "." })
            })
        }
        if shape("label_emb.0.0.weight") != nil {
            throw ModelError.unrecognisedCheckpoint("this UNet has a class/size embedding (SDXL or an upscaler), which blend does not support")
        }
        let inputBlocks = indices("input_blocks").count
        let downsamplers = (0..<inputBlocks).filter { shape("input_blocks.\($0).0.op.weight") != nil }.count
        let levels = downsamplers + 1
        guard (inputBlocks - 1 - downsamplers) % levels == 0, inputBlocks > 1 + downsamplers else {
            throw ModelError.unrecognisedCheckpoint("the UNet's input_blocks do not form equal levels (\(inputBlocks) blocks, \(downsamplers) downsamplers)")
        }
        let layers = (inputBlocks - 1 - downsamplers) / levels
        var c = UNet2DConditionConfig()
        c.sampleSize = nil
        c.inChannels = first[1]
        c.outChannels = last[0]
        c.layersPerBlock = .all(layers)
        var channels: [Int] = [], downTypes: [String] = [], upTypes: [String] = [], depth: [Int] = []
        var context: Int?, linear: Bool?
        for i in 0..<levels {
            let b = (layers + 1) * i + 1
            guard let out = shape("input_blocks.\(b).0.out_layers.3.weight")?.first else {
                throw ModelError.unrecognisedCheckpoint("the UNet has no ResNet at input_blocks.\(b)")
            }
            channels.append(out)
            let attends = shape("input_blocks.\(b).1.proj_in.weight")
            downTypes.append(attends == nil ? "DownBlock2D" : "CrossAttnDownBlock2D")
            depth.append(max(indices("input_blocks.\(b).1.transformer_blocks").count, 1))
            if let attends {
                linear = attends.count == 2
                context = shape("input_blocks.\(b).1.transformer_blocks.0.attn2.to_k.weight")?.last
            }
            let u = (layers + 1) * i
            upTypes.append(shape("output_blocks.\(u).1.proj_in.weight") == nil ? "UpBlock2D" : "CrossAttnUpBlock2D")
        }
        c.blockOutChannels = channels
        c.downBlockTypes = downTypes
        c.upBlockTypes = upTypes
        c.transformerLayersPerBlock = Set(depth).count == 1 ? .all(depth[0]) : .perBlock(depth)
        c.midBlockType = shape("middle_block.1.proj_in.weight") == nil ? nil : "UNetMidBlock2DCrossAttn"
        if let context { c.crossAttentionDim = .all(context) }
        c.useLinearProjection = linear ?? false
        c.attentionHeadDim = c.useLinearProjection ? .perBlock(channels.map { max($0 / 64, 1) }) : .all(8)
        try c.validate()
        return c
    }
}

/// The UNet's tensor names in one layout.
struct UNetKeys {
    let layout: StableDiffusionKeyLayout
    /// ResNets per down block (L).
    let layers: Int

    var prefix: String { layout == .compVis ? UNet2DConditionModel.compVisPrefix : "" }

    func timeEmbedding(_ i: Int) -> String {
        prefix + (layout == .compVis ? "time_embed.\(i == 1 ? 0 : 2)" : "time_embedding.linear_\(i)")
    }
    var convIn: String { prefix + (layout == .compVis ? "input_blocks.0.0" : "conv_in") }
    var convNormOut: String { prefix + (layout == .compVis ? "out.0" : "conv_norm_out") }
    var convOut: String { prefix + (layout == .compVis ? "out.2" : "conv_out") }

    func downResnet(_ i: Int, _ j: Int) -> String {
        prefix + (layout == .compVis ? "input_blocks.\((layers + 1) * i + j + 1).0" : "down_blocks.\(i).resnets.\(j)")
    }
    func downAttention(_ i: Int, _ j: Int) -> String {
        prefix + (layout == .compVis ? "input_blocks.\((layers + 1) * i + j + 1).1" : "down_blocks.\(i).attentions.\(j)")
    }
    func downsampler(_ i: Int) -> String {
        prefix + (layout == .compVis ? "input_blocks.\((layers + 1) * (i + 1)).0.op" : "down_blocks.\(i).downsamplers.0.conv")
    }
    func midResnet(_ k: Int) -> String { prefix + (layout == .compVis ? "middle_block.\(2 * k)" : "mid_block.resnets.\(k)") }
    var midAttention: String { prefix + (layout == .compVis ? "middle_block.1" : "mid_block.attentions.0") }
    func upResnet(_ i: Int, _ j: Int) -> String {
        prefix + (layout == .compVis ? "output_blocks.\((layers + 1) * i + j).0" : "up_blocks.\(i).resnets.\(j)")
    }
    func upAttention(_ i: Int, _ j: Int) -> String {
        prefix + (layout == .compVis ? "output_blocks.\((layers + 1) * i + j).1" : "up_blocks.\(i).attentions.\(j)")
    }
    func upsampler(_ i: Int, afterAttention: Bool) -> String {
        prefix + (layout == .compVis ? "output_blocks.\((layers + 1) * i + layers).\(afterAttention ? 2 : 1).conv"
                                     : "up_blocks.\(i).upsamplers.0.conv")
    }

    func resnetPart(_ block: String, _ part: ResnetPart) -> String {
        let name: String
        switch (layout, part) {
        case (.compVis, .norm1): name = "in_layers.0"
        case (.compVis, .conv1): name = "in_layers.2"
        case (.compVis, .timeEmbeddingProjection): name = "emb_layers.1"
        case (.compVis, .norm2): name = "out_layers.0"
        case (.compVis, .conv2): name = "out_layers.3"
        case (.compVis, .shortcut): name = "skip_connection"
        case (.diffusers, .norm1): name = "norm1"
        case (.diffusers, .conv1): name = "conv1"
        case (.diffusers, .timeEmbeddingProjection): name = "time_emb_proj"
        case (.diffusers, .norm2): name = "norm2"
        case (.diffusers, .conv2): name = "conv2"
        case (.diffusers, .shortcut): name = "conv_shortcut"
        }
        return "\(block).\(name)"
    }
}
