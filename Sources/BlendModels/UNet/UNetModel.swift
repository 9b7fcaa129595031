import BlendTensor

/// One layer of a `TimestepEmbedSequential` block.
enum UNetLayer: Sendable {
    case conv(Conv2dLayer)
    case residual(UNetResBlock)
    case attention(UNetAttentionBlock)
    /// A stand-alone `Upsample`/`Downsample` (only when `resblock_updown` is false).
    /// With a convolution, `Upsample` is nearest 2x then a 3x3 conv and `Downsample` is a
    /// stride-2 3x3 conv alone; without, nearest 2x or 2x2 average pooling.
    case resample(Resampling, Conv2dLayer?)

    func callAsFunction(_ h: Tensor, embSiLU: Tensor) throws -> Tensor {
        switch self {
        case let .conv(conv): return try conv(h)
        case let .residual(block): return try block(h, embSiLU: embSiLU)
        case let .attention(block): return try block(h)
        case let .resample(kind, conv?):
            return try conv(kind == .down ? h : kind.apply(h))
        case let .resample(kind, nil):
            return try kind.apply(h)
        }
    }
}

/// The guided-diffusion UNet (Dhariwal & Nichol's "ADM"), inference only, with input
/// gradients: `callAsFunction` is differentiable with respect to `x`.
///
/// Build it from a checkpoint with ``UNetModel/init(config:weights:)`` (the key layout
/// lives in UNetCheckpoint.swift).
public struct UNetModel: Sendable {
    public let config: UNetConfig
    let timeEmbed: (LinearLayer, LinearLayer)
    let labelEmbedding: Tensor?
    let inputBlocks: [[UNetLayer]]
    let middleBlock: [UNetLayer]
    let outputBlocks: [[UNetLayer]]
    let outNorm: GroupNormLayer
    let outConv: Conv2dLayer

    /// Predicts the model output (ε, and the variance interpolation when `learn_sigma`)
    /// for noisy images `x` `[N, C, H, W]` at `timesteps` (one per image, already rescaled
    /// if the diffusion rescales them). Class-conditional models need `classes`.
    public func callAsFunction(_ x: Tensor, timesteps: [Float], classes: [Int]? = nil) throws -> Tensor {
        guard x.rank == 4, x.dim(1) == config.inChannels else {
            throw ModelError.badInput("UNet input must be [N, \(config.inChannels), H, W], got \(x.shape)")
        }
        let levels = config.channelMult.count - 1
        guard x.dim(2) % (1 << levels) == 0, x.dim(3) % (1 << levels) == 0 else {
            throw ModelError.badInput("UNet input height and width must be multiples of \(1 << levels), got \(x.shape)")
        }
        guard timesteps.count == x.dim(0) else {
            throw ModelError.badInput("UNet needs one timestep per image: \(timesteps.count) for batch \(x.dim(0))")
        }
        var emb = try timeEmbed.1(timeEmbed.0(timestepEmbedding(timesteps, dim: config.modelChannels)).silu())
        if let labelEmbedding {
            guard let classes, classes.count == x.dim(0) else {
                throw ModelError.badInput("this UNet is class-conditional: pass one class label per image")
            }
            emb = try emb + embedding(classes, table: labelEmbedding)
        } else if classes != nil {
            throw ModelError.badInput("this UNet is unconditional: class labels are not accepted")
        }
        let embSiLU = emb.silu()

        var skips: [Tensor] = []
        var h = x
        for block in inputBlocks {
            for layer in block { h = try layer(h, embSiLU: embSiLU) }
            skips.append(h)
        }
        for layer in middleBlock { h = try layer(h, embSiLU: embSiLU) }
        for block in outputBlocks {
            h = try Tensor.concatenate([h, skips.removeLast()], axis: 1)
            for layer in block { h = try layer(h, embSiLU: embSiLU) }
        }
        return try outConv(outNorm.silu(h))
    }
}
