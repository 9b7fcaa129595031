import BlendTensor

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What CLIP sees of a sample (reference: `optimization/augmentations.py`): the image
/// average-pooled to CLIP's resolution, plus `count − 1` copies each warped — with
/// probability `p` — by a random affine transform (±15°, ±10 % translation, border
/// padding) and then, with probability `p`, a random perspective transform
/// (distortion 0.7, black padding), as kornia's `RandomAffine` and `RandomPerspective`
/// sample them. The gradient flows back through the warps to the image.
///
/// Geometry follows kornia's: rotation about the image centre ((W−1)/2, (H−1)/2), inward
/// corner offsets up to distortion·size/2, source = M⁻¹·(output pixel centre), as kornia ≥ 0.7
/// warps with `align_corners=False` (checked against kornia in the tests; the kornia 0.5
/// the reference pinned mixed the two conventions, shifting samples by a fraction of a pixel).
public struct ClipAugmentations: Sendable {
    public var outputSize: Int
    public var count: Int
    public var probability: Float = 0.7
    public var maxDegrees: Float = 15
    public var maxTranslation: Float = 0.1
    public var distortion: Float = 0.7

    public init(outputSize: Int, count: Int) {
        self.outputSize = outputSize
        self.count = count
    }

    /// `[count·N, 3, S, S]` for images `[N, 3, H, W]`: the N plain resizes first, then the
    /// warped copies in the reference's order (copy k of image i at index k·N + i).
    public func callAsFunction(_ images: Tensor, using rng: inout NoiseSource) throws -> Tensor {
        let s = outputSize
        let resized = try adaptiveAvgPool2d(images, outputSize: (height: s, width: s))
        guard count > 1 else { return resized }
        let copies = try Tensor.concatenate(Array(repeating: resized, count: count - 1), axis: 0)
        let m = copies.dim(0)
        var affine: [Float] = [], perspective: [Float] = []
        for _ in 0..<m {
            affine += rng.uniform(0...1) < probability ? randomAffine(using: &rng) : [1, 0, 0, 0, 1, 0]
            perspective += rng.uniform(0...1) < probability ? try randomPerspective(using: &rng) : [1, 0, 0, 0, 1, 0, 0, 0, 1]
        }
        var warped = try warpAffine(copies, matrices: Tensor(shape: [m, 2, 3], scalars: affine), padding: .border)
        warped = try warpPerspective(warped, homographies: Tensor(shape: [m, 3, 3], scalars: perspective), padding: .zeros)
        return try Tensor.concatenate([resized, warped], axis: 0)
    }

    /// The output→source matrix of a rotation by θ about the centre followed by a translation t:
    /// forward x' = R(θ)(x − c) + c + t, so source = R(−θ)(x' − c − t) + c.
    func randomAffine(using rng: inout NoiseSource) -> [Float] {
        let s = Float(outputSize)
        let degrees = rng.uniform(-maxDegrees...maxDegrees)
        let tx = rng.uniform(-maxTranslation * s...maxTranslation * s)
        let ty = rng.uniform(-maxTranslation * s...maxTranslation * s)
        return affineMatrix(degrees: degrees, tx: tx, ty: ty)
    }

    /// The output→source matrix (`[2, 3]`, row-major) of a rotation by `degrees` about the
    /// centre followed by a translation (tx, ty), as kornia's `get_affine_matrix2d` builds the
    /// forward one.
    func affineMatrix(degrees: Float, tx: Float, ty: Float) -> [Float] {
        let theta = degrees * .pi / 180
        let c = (Float(outputSize) - 1) / 2
        // kornia's forward rotation for a positive angle is [[cos, −sin], [sin, cos]] (in
        // pixel coordinates, y down); the inverse is its transpose.
        let cs = cosf(theta), sn = sinf(theta)
        let (a, b, d, e) = (cs, sn, -sn, cs)
        let ux = -c - tx, uy = -c - ty
        return [a, b, a * ux + b * uy + c,
                d, e, d * ux + e * uy + c]
    }

    /// The output→source homography of kornia's random perspective: the four corners move
    /// inward by up to distortion·size/2; the warp maps the moved corners back onto the
    /// original ones.
    func randomPerspective(using rng: inout NoiseSource) throws -> [Float] {
        var fractions: [(Float, Float)] = []
        for _ in 0..<4 { fractions.append((rng.uniform(0...1), rng.uniform(0...1))) }
        return try perspectiveHomography(fractions: fractions)
    }

    /// The output→source homography (`[3, 3]`, row-major) when corner i (top-left, top-right,
    /// bottom-right, bottom-left) moves inward by `fractions[i]` of distortion·size/2 along x and y.
    func perspectiveHomography(fractions: [(Float, Float)]) throws -> [Float] {
        let s = Float(outputSize), last = s - 1
        let corners: [(Float, Float)] = [(0, 0), (last, 0), (last, last), (0, last)]
        let directions: [(Float, Float)] = [(1, 1), (-1, 1), (-1, -1), (1, -1)]
        let f = distortion * s / 2
        let moved = (0..<4).map { i in
            (corners[i].0 + f * fractions[i].0 * directions[i].0, corners[i].1 + f * fractions[i].1 * directions[i].1)
        }
        return try homography(from: moved, to: corners)
    }
}

/// The 3×3 homography H (row-major, H[8] = 1) with H·p_i ∝ q_i for four point pairs,
/// from the 8×8 direct linear system solved in double precision.
func homography(from p: [(Float, Float)], to q: [(Float, Float)]) throws -> [Float] {
    var a = [[Double]](repeating: [Double](repeating: 0, count: 9), count: 8)
    for i in 0..<4 {
        let (x, y) = (Double(p[i].0), Double(p[i].1)), (u, v) = (Double(q[i].0), Double(q[i].1))
        a[2 * i] = [x, y, 1, 0, 0, 0, -u * x, -u * y, u]
        a[2 * i + 1] = [0, 0, 0, x, y, 1, -v * x, -v * y, v]
    }
    // Gaussian elimination with partial pivoting on the augmented matrix.
    for col in 0..<8 {
        let pivot = (col..<8).max { abs(a[$0][col]) < abs(a[$1][col]) }!
        guard abs(a[pivot][col]) > 1e-12 else {
            throw EditError.badInput("degenerate perspective transform (collinear corners)")
        }
        a.swapAt(col, pivot)
        for row in 0..<8 where row != col {
            let factor = a[row][col] / a[col][col]
            if factor != 0 { for k in col..<9 { a[row][k] -= factor * a[col][k] } }
        }
    }
    return (0..<8).map { Float(a[$0][8] / a[$0][$0]) } + [1]
}
