import BlendTensor

/// One level of the SD UNet's contracting path: diffusers' `CrossAttnDownBlock2D` (ResNets
/// each followed by a spatial transformer) or `DownBlock2D` (ResNets only), then an optional
/// stride-2 downsampler. Every ResNet(+transformer) output and the downsampler's output are
/// kept for the skip connections of the expanding path.
public struct UNetDownBlock: Sendable {
    let resnets: [ResnetBlock2D]
    /// One per ResNet in a cross-attention block, empty otherwise.
    let attentions: [Transformer2DModel]
    let downsampler: Downsample2D?

    /// Returns the block's output and the tensors it hands to the skip connections, in order.
    func callAsFunction(_ x: Tensor, embSiLU: Tensor, context: Tensor) throws -> (Tensor, [Tensor]) {
        var h = x
        var skips: [Tensor] = []
        for (i, resnet) in resnets.enumerated() {
            h = try resnet(h, embSiLU: embSiLU)
            if !attentions.isEmpty { h = try attentions[i](h, context: context) }
            skips.append(h)
        }
        if let downsampler {
            h = try downsampler(h)
            skips.append(h)
        }
        return (h, skips)
    }
}
