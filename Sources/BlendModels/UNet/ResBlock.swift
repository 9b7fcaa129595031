import BlendTensor

/// How a residual block (or a stand-alone layer) changes the resolution.
public enum Resampling: Sendable {
    case none, up, down

    func apply(_ x: Tensor) throws -> Tensor {
        switch self {
        case .none: return x
        case .up: return try upsampleNearest2x(x)
        case .down: return try avgPool2d(x, kernel: 2)
        }
    }
}

/// guided-diffusion's `ResBlock`: GroupNorm–SiLU–conv, a timestep-conditioned
/// GroupNorm (scale-shift) or additive embedding, GroupNorm–SiLU–conv, plus a skip
/// connection (1×1 conv when the channel count changes). With `resampling`, both the
/// hidden path (after the first SiLU) and the skip path are up- or downsampled.
public struct UNetResBlock: Sendable {
    let inNorm: GroupNormLayer
    let inConv: Conv2dLayer
    let embedding: LinearLayer
    let outNorm: GroupNormLayer
    let outConv: Conv2dLayer
    let skip: Conv2dLayer?
    let resampling: Resampling
    let useScaleShiftNorm: Bool

    /// `embSiLU` is SiLU of the timestep embedding, `[N, timeEmbedDim]` — shared by all blocks.
    func callAsFunction(_ x: Tensor, embSiLU: Tensor) throws -> Tensor {
        var h = try inNorm.silu(x)
        h = try resampling.apply(h)
        let xs = try resampling.apply(x)
        h = try inConv(h)
        let emb = try embedding(embSiLU)
        let channels = h.dim(1)
        if useScaleShiftNorm {
            let parts = try emb.chunked(2, axis: 1)      // scale, shift: [N, C] each
            h = try outNorm.silu(h, scale: parts[0], shift: parts[1])
        } else {
            h = try outNorm.silu(h + emb.reshaped([emb.dim(0), channels, 1, 1]))
        }
        // Dropout is the identity at inference.
        h = try outConv(h)
        return try (skip.map { try $0(xs) } ?? xs) + h
    }
}
