import BlendTensor

/// diffusers' `UNetMidBlock2DCrossAttn` at the UNet's lowest resolution: ResNet → spatial
/// transformer → ResNet.
public struct UNetMidBlock: Sendable {
    let resnet1: ResnetBlock2D
    let attention: Transformer2DModel
    let resnet2: ResnetBlock2D

    func callAsFunction(_ x: Tensor, embSiLU: Tensor, context: Tensor) throws -> Tensor {
        let h = try attention(resnet1(x, embSiLU: embSiLU), context: context)
        return try resnet2(h, embSiLU: embSiLU)
    }
}
