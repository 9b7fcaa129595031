import BlendTensor

/// Masks on the latent grid for Blended Latent Diffusion: pure functions over `[1, 1, h, w]`
/// tensors of 0/1.
public enum LatentMasks {
    /// The pixel mask `[1, 1, H, W]` (values in [0, 1], 1 = edit) on a `height × width` grid,
    /// as the official script makes it: Pillow's `resize(..., NEAREST)` — output cell x takes
    /// input column `floor(scale/2 + x·scale)`, `scale = W/width`, accumulated in double
    /// precision as Pillow does — then `≥ 0.5 → 1`, else 0.
    public static func downsample(_ mask: Tensor, height: Int, width: Int) throws -> Tensor {
        guard mask.rank == 4, mask.dim(0) == 1, mask.dim(1) == 1 else {
            throw EditError.badInput("the mask must be [1, 1, H, W], got \(mask.shape)")
        }
        guard height >= 1, width >= 1 else {
            throw EditError.badInput("a latent mask needs a grid of at least 1 × 1, got \(height) × \(width)")
        }
        let inH = mask.dim(2), inW = mask.dim(3)
        let rows = pillowNearestIndices(input: inH, output: height), columns = pillowNearestIndices(input: inW, output: width)
        let src = mask.scalars
        var out = [Float](repeating: 0, count: height * width)
        for (y, sy) in rows.enumerated() {
            for (x, sx) in columns.enumerated() where src[sy * inW + sx] >= 0.5 {
                out[y * width + x] = 1
            }
        }
        return try Tensor(shape: [1, 1, height, width], scalars: out)
    }

    /// Binary dilation by a `size × size` square (size odd), nothing outside the grid
    /// (scipy's `binary_dilation(mask, structure=np.ones((size, size)))`).
    public static func dilate(_ mask: Tensor, size: Int) throws -> Tensor {
        guard size >= 1, size % 2 == 1 else {
            throw EditError.invalidSetting("a dilation square must have an odd side, got \(size)")
        }
        guard mask.rank == 4, mask.dim(0) == 1, mask.dim(1) == 1 else {
            throw EditError.badInput("the mask must be [1, 1, h, w], got \(mask.shape)")
        }
        let h = mask.dim(2), w = mask.dim(3), r = size / 2
        let src = mask.scalars
        var out = [Float](repeating: 0, count: h * w)
        for y in 0..<h {
            for x in 0..<w {
                search: for yy in max(0, y - r)...min(h - 1, y + r) {
                    for xx in max(0, x - r)...min(w - 1, x + r) where src[yy * w + xx] != 0 {
                        out[y * w + x] = 1
                        break search
                    }
                }
            }
        }
        return try Tensor(shape: mask.shape, scalars: out)
    }

    /// Progressive mask shrinking: the masks dilated by (2k+1)², (2k−1)², …, 3² squares, then
    /// the mask itself (`k = dilations`; the official LDM code's `read_mask`).
    public static func progressive(_ mask: Tensor, dilations: Int) throws -> [Tensor] {
        try (0..<dilations).reversed().map { try dilate(mask, size: 3 + 2 * $0) } + [mask]
    }

    /// Which of `count` progressive masks step `step` (0-based among `steps` run) uses: the
    /// official LDM sampler's `i // (steps // count + 1)`.
    public static func progressiveIndex(step: Int, steps: Int, count: Int) -> Int {
        min(step / (steps / count + 1), count - 1)
    }
}
