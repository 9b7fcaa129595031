import BlendTensor

// The checkpoint key layout of guided-diffusion's UNetModel, in one place.
//
//   time_embed.{0,2}                       Linear layers of the timestep MLP
//   label_emb.weight                       class embedding (class-conditional models)
//   input_blocks.{i}.{j}                   i-th TimestepEmbedSequential, j-th layer
//   middle_block.{0,1,2}                   ResBlock, AttentionBlock, ResBlock
//   output_blocks.{i}.{j}
//   out.{0,2}                              GroupNorm, (SiLU), conv
// ResBlock:       in_layers.{0: norm, 2: conv}, emb_layers.1 (linear),
//                 out_layers.{0: norm, 3: conv}, skip_connection (conv, when channels change)
// AttentionBlock: norm, qkv (conv1d), proj_out (conv1d)
// Upsample.conv / Downsample.op: the optional resampling convolutions

extension UNetModel {
    /// Assembles the network from checkpoint tensors with the official key names,
    /// checking every shape against `config` and that no tensor is left unused.
    public init(config: UNetConfig, weights: ModelWeights) throws {
        try config.validate()
        let loader = UNetLoader(config: config, weights: weights)
        self.config = config
        let mc = config.modelChannels, ted = config.timeEmbedDim
        timeEmbed = (try loader.linear("time_embed.0", in: mc, out: ted), try loader.linear("time_embed.2", in: ted, out: ted))
        labelEmbedding = try config.numClasses.map { try weights.take("label_emb.weight", shape: [$0, ted]) }

        // The construction order of guided-diffusion's UNetModel.__init__.
        var ch = config.channels(at: 0)
        let inputCh = ch
        var inputs: [[UNetLayer]] = [[.conv(try loader.conv("input_blocks.0.0", in: config.inChannels, out: ch, kernel: 3))]]
        var skipChannels = [ch]
        var ds = 1
        let attentionAt = config.attentionDownsampleFactors
        for level in config.channelMult.indices {
            for _ in 0..<config.numResBlocks {
                let prefix = "input_blocks.\(inputs.count)"
                let out = config.channels(at: level)
                var layers: [UNetLayer] = [.residual(try loader.resBlock("\(prefix).0", in: ch, out: out, resampling: .none))]
                ch = out
                if attentionAt.contains(ds) {
                    layers.append(.attention(try loader.attention("\(prefix).1", channels: ch, upsampling: false)))
                }
                inputs.append(layers)
                skipChannels.append(ch)
            }
            if level != config.channelMult.count - 1 {
                let prefix = "input_blocks.\(inputs.count).0"
                inputs.append([try loader.resample(prefix, channels: ch, kind: .down)])
                skipChannels.append(ch)
                ds *= 2
            }
        }
        inputBlocks = inputs

        middleBlock = [
            .residual(try loader.resBlock("middle_block.0", in: ch, out: ch, resampling: .none)),
            .attention(try loader.attention("middle_block.1", channels: ch, upsampling: false)),
            .residual(try loader.resBlock("middle_block.2", in: ch, out: ch, resampling: .none)),
        ]

        var outputs: [[UNetLayer]] = []
        for level in config.channelMult.indices.reversed() {
            for i in 0...config.numResBlocks {
                let prefix = "output_blocks.\(outputs.count)"
                let skip = skipChannels.removeLast()
                let out = config.channels(at: level)
                var layers: [UNetLayer] = [.residual(try loader.resBlock("\(prefix).0", in: ch + skip, out: out, resampling: .none))]
                ch = out
                if attentionAt.contains(ds) {
                    layers.append(.attention(try loader.attention("\(prefix).\(layers.count)", channels: ch, upsampling: true)))
                }
                if level > 0 && i == config.numResBlocks {
                    layers.append(try loader.resample("\(prefix).\(layers.count)", channels: ch, kind: .up))
                    ds /= 2
                }
                outputs.append(layers)
            }
        }
        outputBlocks = outputs
        outNorm = try loader.groupNorm("out.0", channels: ch)
        outConv = try loader.conv("out.2", in: inputCh, out: config.outChannels, kernel: 3)
        try weights.finish()
    }
}

/// Reads layers from the weights with shape checks.
private struct UNetLoader {
    let config: UNetConfig
    let weights: ModelWeights

    func conv(_ prefix: String, in cin: Int, out cout: Int, kernel: Int, stride: Int = 1, oneD: Bool = false) throws -> Conv2dLayer {
        let shape = oneD ? [cout, cin, kernel] : [cout, cin, kernel, kernel]
        return Conv2dLayer(weight: try weights.take("\(prefix).weight", shape: shape),
                           bias: try weights.take("\(prefix).bias", shape: [cout]),
                           stride: stride, padding: kernel / 2)
    }

    func linear(_ prefix: String, in cin: Int, out cout: Int) throws -> LinearLayer {
        LinearLayer(weight: try weights.take("\(prefix).weight", shape: [cout, cin]),
                    bias: try weights.take("\(prefix).bias", shape: [cout]))
    }

    func groupNorm(_ prefix: String, channels: Int) throws -> GroupNormLayer {
        GroupNormLayer(groups: 32, weight: try weights.take("\(prefix).weight", shape: [channels]),
                       bias: try weights.take("\(prefix).bias", shape: [channels]))
    }

    func resBlock(_ prefix: String, in cin: Int, out cout: Int, resampling: Resampling) throws -> UNetResBlock {
        UNetResBlock(
            inNorm: try groupNorm("\(prefix).in_layers.0", channels: cin),
            inConv: try conv("\(prefix).in_layers.2", in: cin, out: cout, kernel: 3),
            embedding: try linear("\(prefix).emb_layers.1", in: config.timeEmbedDim,
                                  out: config.useScaleShiftNorm ? 2 * cout : cout),
            outNorm: try groupNorm("\(prefix).out_layers.0", channels: cout),
            outConv: try conv("\(prefix).out_layers.3", in: cout, out: cout, kernel: 3),
            // The reference builds a 1x1 skip conv when the channel count changes.
            skip: cin == cout ? nil : try conv("\(prefix).skip_connection", in: cin, out: cout, kernel: 1),
            resampling: resampling,
            useScaleShiftNorm: config.useScaleShiftNorm)
    }

    func attention(_ prefix: String, channels: Int, upsampling: Bool) throws -> UNetAttentionBlock {
        UNetAttentionBlock(
            norm: try groupNorm("\(prefix).norm", channels: channels),
            qkv: try conv("\(prefix).qkv", in: channels, out: 3 * channels, kernel: 1, oneD: true),
            projOut: try conv("\(prefix).proj_out", in: channels, out: channels, kernel: 1, oneD: true),
            heads: config.heads(channels: channels, upsampling: upsampling),
            newOrder: config.useNewAttentionOrder)
    }

    /// A down/up-sampling layer: a resampling ResBlock, or Downsample/Upsample.
    func resample(_ prefix: String, channels: Int, kind: Resampling) throws -> UNetLayer {
        if config.resblockUpdown {
            return .residual(try resBlock(prefix, in: channels, out: channels, resampling: kind))
        }
        guard config.convResample else { return .resample(kind, nil) }
        let layer = kind == .down
            ? try conv("\(prefix).op", in: channels, out: channels, kernel: 3, stride: 2)
            : try conv("\(prefix).conv", in: channels, out: channels, kernel: 3)
        return .resample(kind, layer)
    }
}
