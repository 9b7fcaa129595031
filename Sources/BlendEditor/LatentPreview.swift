import BlendTensor

/// A cheap colour view of latents without the autoencoder's decoder: an affine map from a
/// latent's C channels to RGB, fitted by least squares to the photo being edited, then
/// upsampled to the image's size. It shows a latent edit's x0 predictions while it runs.
///
/// The fit (``fit(latent:image:factor:)``): with `z_p` ∈ ℝ^C the source latent at grid cell
/// p (the VAE's posterior mean × its scaling factor) and `y_p` ∈ ℝ³ the source image averaged
/// over the f×f block of pixels that cell covers (in [−1, 1]), W (3×C) and b (3) minimise
///
///     Σ_p ‖W·z_p + b − y_p‖²
///
/// (ordinary least squares). Solved on centred data in double precision:
/// `W = Σ_yz · (Σ_zz + λI)⁻¹`, `b = ȳ − W·z̄`, with `Σ_zz = Σ_p (z_p − z̄)(z_p − z̄)ᵀ`,
/// `Σ_yz = Σ_p (y_p − ȳ)(z_p − z̄)ᵀ` and a ridge `λ = 10⁻⁹ · trace(Σ_zz)/C` that only
/// matters when a latent channel is (nearly) constant, e.g. for a flat photo.
///
/// It is the idea of the fixed "latent to RGB" factors other tools hard-code for SD 1.x's VAE,
/// fitted to the photo at hand instead, so it adapts to any VAE (SD 1.x, 2.x, a fine-tuned one).
/// No formula of the papers: a preview only, never part of a result.
public struct LatentPreview: Sendable, Equatable {
    /// The latent channels C.
    public let channels: Int
    /// W, row-major `[3, C]`: `weights[k·C + c]` maps channel c to colour k (R, G, B).
    public let weights: [Float]
    /// b, one per colour.
    public let bias: [Float]
    /// The autoencoder's downsampling factor f: one latent cell covers f×f pixels.
    public let factor: Int

    /// A map from its parts. Throws `EditError.badInput` unless `weights` has 3·`channels`
    /// values, `bias` 3, all finite, and `factor` ≥ 1.
    public init(channels: Int, weights: [Float], bias: [Float], factor: Int) throws {
        guard channels >= 1, weights.count == 3 * channels, bias.count == 3, factor >= 1,
              weights.allSatisfy(\.isFinite), bias.allSatisfy(\.isFinite) else {
            throw EditError.badInput("a latent preview needs 3 × \(channels) finite weights, 3 biases and a factor ≥ 1,"
                + " got \(weights.count) weights, \(bias.count) biases, factor \(factor)")
        }
        self.channels = channels
        self.weights = weights
        self.bias = bias
        self.factor = factor
    }

    /// Fits the map from `latent` (`[N, C, h, w]`) to `image` (`[N, 3, f·h, f·w]`, in [−1, 1],
    /// the images `latent` encodes) with `factor` f (see the type's description for the formula).
    ///
    /// - Throws: `EditError.badInput` when the shapes do not fit together, `factor` < 1, or a
    ///   value is not finite.
    public static func fit(latent: Tensor, image: Tensor, factor f: Int) throws -> LatentPreview {
        guard f >= 1, latent.rank == 4, latent.dim(0) >= 1, latent.dim(1) >= 1, latent.dim(2) >= 1, latent.dim(3) >= 1 else {
            throw EditError.badInput("a latent preview is fitted to latents [N, C, h, w] with a factor ≥ 1, got \(latent.shape) and factor \(f)")
        }
        let n = latent.dim(0), c = latent.dim(1), h = latent.dim(2), w = latent.dim(3)
        guard image.shape == [n, 3, f * h, f * w] else {
            throw EditError.badInput("a latent preview of latents \(latent.shape) is fitted to images [\(n), 3, \(f * h), \(f * w)],"
                + " got \(image.shape)")
        }
        let blocks = try adaptiveAvgPool2d(image, outputSize: (height: h, width: w)).scalars
        let z = latent.scalars
        guard z.allSatisfy(\.isFinite), blocks.allSatisfy(\.isFinite) else {
            throw EditError.badInput("the latent or the image to fit a latent preview to holds values that are not finite numbers")
        }
        let plane = h * w, points = Double(n * plane)
        // Means, then the centred second moments.
        var zMean = [Double](repeating: 0, count: c), yMean = [Double](repeating: 0, count: 3)
        for s in 0..<n {
            for ch in 0..<c { for p in 0..<plane { zMean[ch] += Double(z[(s * c + ch) * plane + p]) } }
            for k in 0..<3 { for p in 0..<plane { yMean[k] += Double(blocks[(s * 3 + k) * plane + p]) } }
        }
        for ch in 0..<c { zMean[ch] /= points }
        for k in 0..<3 { yMean[k] /= points }
        var szz = [Double](repeating: 0, count: c * c), syz = [Double](repeating: 0, count: 3 * c)
        var zc = [Double](repeating: 0, count: c)
        for s in 0..<n {
            for p in 0..<plane {
                for ch in 0..<c { zc[ch] = Double(z[(s * c + ch) * plane + p]) - zMean[ch] }
                for i in 0..<c { for j in 0..<c { szz[i * c + j] += zc[i] * zc[j] } }
                for k in 0..<3 {
                    let y = Double(blocks[(s * 3 + k) * plane + p]) - yMean[k]
                    for j in 0..<c { syz[k * c + j] += y * zc[j] }
                }
            }
        }
        let trace = (0..<c).reduce(0.0) { $0 + szz[$1 * c + $1] }
        let ridge = max(1e-9 * trace / Double(c), Double.leastNormalMagnitude)
        for i in 0..<c { szz[i * c + i] += ridge }
        // Σ_zz is symmetric, so W·Σ_zz = Σ_yz is Σ_zz·Wᵀ = Σ_yzᵀ: one solve per colour.
        var weights = [Float](repeating: 0, count: 3 * c), bias = [Float](repeating: 0, count: 3)
        for k in 0..<3 {
            let row = solveSymmetricPositive(szz, Array(syz[k * c..<(k + 1) * c]), size: c)
            var offset = yMean[k]
            for j in 0..<c {
                weights[k * c + j] = Float(row[j])
                offset -= row[j] * zMean[j]
            }
            bias[k] = Float(offset)
        }
        return try LatentPreview(channels: c, weights: weights, bias: bias, factor: f)
    }

    /// The map applied to `latents` (`[N, C, h, w]`) on the latent grid: `[N, 3, h, w]`,
    /// `W·z + b` per cell, not clamped. A value that is not finite (a diverged latent) shows as 0.
    /// - Throws: `EditError.badInput` when `latents` is not `[N, C, h, w]` with this map's C.
    public func colors(_ latents: Tensor) throws -> Tensor {
        guard latents.rank == 4, latents.dim(1) == channels else {
            throw EditError.badInput("a latent preview maps latents [N, \(channels), h, w], got \(latents.shape)")
        }
        let n = latents.dim(0), plane = latents.dim(2) * latents.dim(3), c = channels
        let z = latents.scalars
        return try Tensor(shape: [n, 3, latents.dim(2), latents.dim(3)]) { out in
            for s in 0..<n {
                for k in 0..<3 {
                    let target = (s * 3 + k) * plane
                    for p in 0..<plane { out[target + p] = bias[k] }
                    for ch in 0..<c {
                        let wk = weights[k * c + ch], source = (s * c + ch) * plane
                        for p in 0..<plane { out[target + p] += wk * z[source + p] }
                    }
                    for p in 0..<plane where !out[target + p].isFinite { out[target + p] = 0 }
                }
            }
        }
    }

    /// The preview of `latents` (`[N, C, h, w]`) at the image's size: ``colors(_:)``
    /// upsampled ×f (bilinear, half-pixel centres, as `F.interpolate(mode="bilinear")`) and
    /// clamped to [−1, 1]: `[N, 3, f·h, f·w]`.
    /// - Throws: `EditError.badInput` as ``colors(_:)``.
    public func image(_ latents: Tensor) throws -> Tensor {
        let grid = try colors(latents)
        let upsampled = factor == 1 ? grid
            : try resizeBilinear(grid, height: factor * grid.dim(2), width: factor * grid.dim(3))
        return upsampled.clamped(min: -1, max: 1)
    }

    /// Solves `A·x = b` for a symmetric positive definite `A` (`size`×`size`, row-major) by
    /// Cholesky factorisation.
    static func solveSymmetricPositive(_ a: [Double], _ b: [Double], size m: Int) -> [Double] {
        var l = [Double](repeating: 0, count: m * m)
        for i in 0..<m {
            for j in 0...i {
                var sum = a[i * m + j]
                for k in 0..<j { sum -= l[i * m + k] * l[j * m + k] }
                if i == j {
                    l[i * m + i] = sum > 0 ? sum.squareRoot() : Double.leastNormalMagnitude.squareRoot()
                } else {
                    l[i * m + j] = sum / l[j * m + j]
                }
            }
        }
        var y = [Double](repeating: 0, count: m)
        for i in 0..<m {
            var sum = b[i]
            for k in 0..<i { sum -= l[i * m + k] * y[k] }
            y[i] = sum / l[i * m + i]
        }
        var x = [Double](repeating: 0, count: m)
        for i in stride(from: m - 1, through: 0, by: -1) {
            var sum = y[i]
            for k in i + 1..<m { sum -= l[k * m + i] * x[k] }
            x[i] = sum / l[i * m + i]
        }
        return x
    }
}
