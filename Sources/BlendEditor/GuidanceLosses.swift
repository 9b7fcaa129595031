import BlendTensor

/// The losses that steer Blended Diffusion (reference: `optimization/losses.py`).
public enum GuidanceLosses {
    /// Squared spherical (great-circle) distance between L2-normalised embeddings,
    /// `2·arcsin(‖x̂ − ŷ‖ / 2)²`, per row of `x` `[N, D]` against `y` `[1, D]` or `[N, D]`.
    public static func sphericalDistance(_ x: Tensor, _ y: Tensor) throws -> Tensor {
        let xn = try x / x.norm(axis: -1, keepingDimensions: true)
        let yn = try y / y.norm(axis: -1, keepingDimensions: true)
        let half = try (xn - yn).norm(axis: -1) * 0.5
        return half.arcsin().squared() * 2
    }

    /// How far values stray outside [-1, 1]: `mean((x − clamp(x, −1, 1))²)` per image, `[N]`.
    public static func rangeLoss(_ x: Tensor) throws -> Tensor {
        try (x - x.clamped(min: -1, max: 1)).squared().mean(axes: [1, 2, 3])
    }
}
