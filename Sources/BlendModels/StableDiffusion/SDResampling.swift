import BlendTensor

/// diffusers' `Downsample2D` with a convolution: a 3×3 stride-2 convolution. The UNet pads
/// it by 1 on every side (`downsample_padding=1`); the VAE encoder pads only the right and
/// bottom by 1 (`padding=0`, then `F.pad(x, (0, 1, 0, 1))`), the asymmetry its weights were
/// trained with. `[N, C, H, W]` → `[N, C, H/2, W/2]`; differentiable.
public struct Downsample2D: Sendable {
    let conv: Conv2dLayer
    /// True for the VAE's right/bottom padding (the conv itself then has padding 0).
    let asymmetricPadding: Bool

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        try conv(asymmetricPadding ? x.zeroPadded(top: 0, bottom: 1, left: 0, right: 1) : x)
    }
}

/// diffusers' `Upsample2D` with a convolution: nearest-neighbour 2× then a 3×3 convolution
/// (padding 1). `[N, C, H, W]` → `[N, C, 2H, 2W]`; differentiable.
public struct Upsample2D: Sendable {
    let conv: Conv2dLayer

    func callAsFunction(_ x: Tensor) throws -> Tensor { try conv(upsampleNearest2x(x)) }
}
