import BlendTensor

/// LPIPS v0.1 with the VGG16 trunk (Zhang et al. 2018, the `lpips` package's
/// `LPIPS(net="vgg")`): inputs in [-1, 1] are shifted and scaled, both go through
/// VGG16, each of the five feature maps is unit-normalised over channels, the squared
/// differences are weighted per channel by the learned 1×1 "lin" layers, averaged over
/// space and summed over layers. Differentiable in both images.
public struct LPIPSModel: Sendable {
    let features: VGG16Features
    /// One `[1, C, 1, 1]` non-negative weight per feature map (`lin{k}.model.1.weight`).
    let linear: [Conv2dLayer]

    /// The reference's `ScalingLayer` constants.
    static let shift: [Float] = [-0.030, -0.088, -0.188]
    static let scale: [Float] = [0.458, 0.448, 0.450]

    /// Perceptual distances `[N]` between image batches `[N, 3, H, W]` in [-1, 1].
    public func callAsFunction(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        guard a.rank == 4, a.dim(1) == 3, a.shape == b.shape else {
            throw ModelError.badInput("LPIPS compares two RGB batches of the same shape [N, 3, H, W], got \(a.shape) and \(b.shape)")
        }
        guard a.dim(2) >= 16, a.dim(3) >= 16 else {
            throw ModelError.badInput("LPIPS needs images of at least 16x16 pixels (VGG16 pools four times), got \(a.shape)")
        }
        let n = a.dim(0)
        let shift = try Tensor(shape: [1, 3, 1, 1], scalars: Self.shift)
        let scale = try Tensor(shape: [1, 3, 1, 1], scalars: Self.scale)
        // Both batches through the trunk at once.
        let both = try (Tensor.concatenate([a, b], axis: 0) - shift) / scale
        let maps = try features(both)
        var total: Tensor?
        for (k, map) in maps.enumerated() {
            let unit = try map / (map.norm(axis: 1, keepingDimensions: true) + 1e-10)
            let halves = try unit.chunked(2, axis: 0)
            let diff = try (halves[0] - halves[1]).squared()
            let layer = try linear[k](diff).mean(axes: [1, 2, 3])     // [N]
            total = try total.map { try $0 + layer } ?? layer
        }
        return try total!.reshaped([n])
    }
}
