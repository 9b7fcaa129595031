import BlendTensor

/// diffusers' `Transformer2DModel` on continuous inputs (SD's "spatial transformer"):
/// GroupNorm (eps 1e-6) → projection in → transformer blocks over the H·W positions as
/// tokens → projection out → plus the input. SD 1.x projects with 1×1 convolutions, SD 2.x
/// with linear layers (`use_linear_projection`); both are the same matrix applied to every
/// position, so both run here as a linear layer on the tokens (a 1×1 kernel `[O, I, 1, 1]` is
/// read as `[O, I]`). `x` is `[N, C, H, W]`, the context `[N, S, Dc]`; differentiable in both.
public struct Transformer2DModel: Sendable {
    let norm: GroupNormLayer
    let projIn: LinearLayer
    let blocks: [BasicTransformerBlock]
    let projOut: LinearLayer

    func callAsFunction(_ x: Tensor, context: Tensor) throws -> Tensor {
        let n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3)
        var tokens = try norm(x).reshaped([n, c, h * w]).transposed(1, 2)     // [N, HW, C]
        tokens = try projIn(tokens)
        for block in blocks { tokens = try block(tokens, context: context) }
        tokens = try projOut(tokens)
        return try x + tokens.transposed(1, 2).reshaped([n, c, h, w])
    }
}
