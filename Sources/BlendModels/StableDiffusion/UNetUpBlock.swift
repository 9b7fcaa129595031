import BlendTensor

/// One level of the SD UNet's expanding path: diffusers' `CrossAttnUpBlock2D` or `UpBlock2D`.
/// Each ResNet takes the running tensor concatenated (on channels) with the most recent
/// unused skip tensor; a spatial transformer follows each ResNet in a cross-attention block;
/// an optional nearest-2× upsampler ends the level.
public struct UNetUpBlock: Sendable {
    let resnets: [ResnetBlock2D]
    let attentions: [Transformer2DModel]
    let upsampler: Upsample2D?

    /// `skips` is the stack of skip tensors; this block pops one per ResNet from its end.
    func callAsFunction(_ x: Tensor, skips: inout [Tensor], embSiLU: Tensor, context: Tensor) throws -> Tensor {
        var h = x
        for (i, resnet) in resnets.enumerated() {
            guard let skip = skips.popLast() else { throw ModelError.badInput("UNet skip connections ran out") }
            h = try resnet(Tensor.concatenate([h, skip], axis: 1), embSiLU: embSiLU)
            if !attentions.isEmpty { h = try attentions[i](h, context: context) }
        }
        if let upsampler { h = try upsampler(h) }
        return h
    }
}
