// Resampling of NCHW images, numerically following PyTorch: nearest 2x upsampling,
// bilinear resizing (`F.interpolate`), bilinear grid sampling with border padding
// (`F.grid_sample`), and sampling grids built from affine and projective transforms.
// All ops are differentiable with respect to the image; sampling grids and transform
// matrices are constants. Invariant: work items are whole output rows (input rows or planes
// for the gradients that gather), each computed alone, so the thread count changes no value.

// MARK: - Nearest 2x upsampling

/// Every pixel repeated into a 2×2 block: `[N, C, H, W] -> [N, C, 2H, 2W]`, as
/// The source index of each output index along one axis of a nearest-neighbour resize, as
/// Pillow's `Image.resize(..., NEAREST)` picks it: output `i` takes input
/// `floor((i + 0.5) · input / output)`, the position accumulated in double precision as
/// Pillow does. Every mask resize in blend (photo to model, model to latent grid) samples so.
public func pillowNearestIndices(input: Int, output: Int) -> [Int] {
    let step = Double(input) / Double(output)
    var position = step * 0.5
    var indices: [Int] = []
    indices.reserveCapacity(max(output, 0))
    for _ in 0..<max(output, 0) {
        // Positions are never negative, so the truncating cast is a floor; the clamp only
        // guards against an accumulated sum reaching `input`.
        indices.append(min(Int(position), input - 1))
        position += step
    }
    return indices
}

/// `F.interpolate(x, scale_factor=2, mode="nearest")` (the diffusion UNet's upsampler).
public func upsampleNearest2x(_ x: Tensor) throws -> Tensor {
    let d = try x.imageDims(op: "upsampleNearest2x")
    let ho = 2 * d.h, wo = 2 * d.w
    let y = Tensor(uninitializedShape: [d.n, d.c, ho, wo])
    let w = d.w, inPlane = d.plane, outPlane = ho * wo
    let src = x.pointer, dst = y.pointer

    // One input row (two output rows) per work item.
    parallelRanges(d.planes * d.h, grain: grainFor(elementsPerItem: 2 * wo)) { rows in
        for row in rows {
            let p = row / d.h, iy = row % d.h
            let line = src + p * inPlane + iy * w
            let out = dst + p * outPlane + 2 * iy * wo
            for ix in 0..<w {
                let v = line[ix]
                out[2 * ix] = v
                out[2 * ix + 1] = v
            }
            (out + wo).update(from: out, count: wo)
        }
    }

    let inputShape = x.shape
    return Tensor.recorded(y, from: [x]) { g in
        // Each input pixel gathers its own 2×2 block, so rows are independent.
        let gx = Tensor(uninitializedShape: inputShape)
        let gp = g.pointer, gxp = gx.pointer
        parallelRanges(d.planes * d.h, grain: grainFor(elementsPerItem: 2 * wo)) { rows in
            for row in rows {
                let p = row / d.h, iy = row % d.h
                let top = gp + p * outPlane + 2 * iy * wo, bottom = top + wo
                let out = gxp + p * inPlane + iy * w
                for ix in 0..<w {
                    out[ix] = top[2 * ix] + top[2 * ix + 1] + bottom[2 * ix] + bottom[2 * ix + 1]
                }
            }
        }
        return [gx]
    }
}

// MARK: - Bilinear resizing

/// For each output index along one axis, the two source indices and their weights.
struct LinearTaps {
    var low: [Int] = [], high: [Int] = []
    var lowWeight: [Float] = [], highWeight: [Float] = []

    /// PyTorch's rule (`area_pixel_compute_source_index` + `guard_index_and_lambda`):
    /// with aligned corners `src = dst·(in-1)/(out-1)`; otherwise
    /// `src = (dst+0.5)·in/out - 0.5`, clamped at 0 below. The low index is
    /// `min(floor(src), in-1)`, the high one the next index unless that is past the end.
    init(inSize: Int, outSize: Int, alignCorners: Bool) {
        let scale: Float = alignCorners
            ? (outSize > 1 ? Float(inSize - 1) / Float(outSize - 1) : 0)
            : Float(inSize) / Float(outSize)
        for o in 0..<outSize {
            var src: Float
            if alignCorners {
                src = scale * Float(o)
            } else {
                src = scale * (Float(o) + 0.5) - 0.5
                if src < 0 { src = 0 }
            }
            let i0 = min(Int(src), inSize - 1)  // src >= 0, so truncation is floor
            let lambda = min(max(src - Float(i0), 0), 1)
            low.append(i0)
            high.append(i0 < inSize - 1 ? i0 + 1 : i0)
            lowWeight.append(1 - lambda)
            highWeight.append(lambda)
        }
    }
}

/// Bilinear resize of `x [N, C, H, W]` to `[N, C, height, width]`, matching
/// `F.interpolate(x, size=(height, width), mode="bilinear", align_corners=alignCorners,
/// antialias=False)`. Downscaling interpolates between the two nearest pixels (no
/// low-pass filtering); use ``adaptiveAvgPool2d(_:outputSize:)`` for area averaging.
public func resizeBilinear(_ x: Tensor, height: Int, width: Int, alignCorners: Bool = false) throws -> Tensor {
    let op = "resizeBilinear"
    let d = try x.imageDims(op: op)
    guard height >= 1, width >= 1 else {
        throw TensorError.invalidArgument(op: op, message: "output size must be at least 1x1, got \(height)x\(width)")
    }
    guard d.h >= 1, d.w >= 1 else {
        throw TensorError.invalidArgument(op: op, message: "input spatial size \(d.h)x\(d.w) is empty")
    }
    let rowsT = LinearTaps(inSize: d.h, outSize: height, alignCorners: alignCorners)
    let colsT = LinearTaps(inSize: d.w, outSize: width, alignCorners: alignCorners)
    let y = Tensor(uninitializedShape: [d.n, d.c, height, width])
    let w = d.w, inPlane = d.plane, outPlane = height * width
    let src = x.pointer, dst = y.pointer

    parallelRanges(d.planes * height, grain: grainFor(elementsPerItem: 4 * width)) { rows in
        for row in rows {
            let p = row / height, oy = row % height
            let plane = src + p * inPlane
            let top = plane + rowsT.low[oy] * w, bottom = plane + rowsT.high[oy] * w
            let wt = rowsT.lowWeight[oy], wb = rowsT.highWeight[oy]
            let out = dst + p * outPlane + oy * width
            for ox in 0..<width {
                let l = colsT.low[ox], r = colsT.high[ox]
                let wl = colsT.lowWeight[ox], wr = colsT.highWeight[ox]
                let t = top[l] * wl + top[r] * wr
                let b = bottom[l] * wl + bottom[r] * wr
                out[ox] = t * wt + b * wb
            }
        }
    }

    let inputShape = x.shape
    return Tensor.recorded(y, from: [x]) { g in
        // Output pixels share source pixels.
        [planewiseGradient(g, inputShape: inputShape, planes: d.planes, inPlane: inPlane, outPlane: outPlane,
                           workPerPlane: outPlane) { gin, plane, _ in
            for oy in 0..<height {
                let top = plane + rowsT.low[oy] * w, bottom = plane + rowsT.high[oy] * w
                let wt = rowsT.lowWeight[oy], wb = rowsT.highWeight[oy]
                let line = gin + oy * width
                for ox in 0..<width {
                    let l = colsT.low[ox], r = colsT.high[ox]
                    let wl = colsT.lowWeight[ox], wr = colsT.highWeight[ox]
                    let v = line[ox]
                    top[l] += v * wt * wl
                    top[r] += v * wt * wr
                    bottom[l] += v * wb * wl
                    bottom[r] += v * wb * wr
                }
            }
        }]
    }
}

// MARK: - Grid sampling

/// How `gridSample` treats points outside the image (PyTorch's `padding_mode`).
public enum GridPadding: Sendable {
    /// The source coordinate is clipped to the image: edge pixels repeat.
    case border
    /// Pixels outside the image read as zero.
    case zeros
}

/// The four source pixels and bilinear weights of one sample point.
struct BilinearTap {
    /// Offsets of the four pixels (top-left, top-right, bottom-left, bottom-right) within
    /// a plane; a pixel outside the image has weight 0 and a valid dummy offset.
    var o00: Int, o01: Int, o10: Int, o11: Int
    var nw: Float, ne: Float, sw: Float, se: Float

    /// The tap for normalized coordinates `(gx, gy)` on an `height`×`width` plane, as
    /// PyTorch's CPU `grid_sample` computes it: unnormalize; with border padding clip
    /// the *source coordinate* to `[0, size-1]`, then weight the four pixels around it.
    @inline(__always)
    init(gx: Float, gy: Float, height: Int, width: Int, alignCorners: Bool, padding: GridPadding) {
        var cx = BilinearTap.unnormalize(gx, size: width, alignCorners: alignCorners)
        var cy = BilinearTap.unnormalize(gy, size: height, alignCorners: alignCorners)
        if padding == .border {
            cx = BilinearTap.clip(cx, size: width)
            cy = BilinearTap.clip(cy, size: height)
        } else {
            // Far-away (or NaN) points read only zeros; keep the integer maths in range.
            if !(cx > -2 && cx < Float(width + 1)) { cx = -2 }
            if !(cy > -2 && cy < Float(height + 1)) { cy = -2 }
        }
        let fx0 = cx.rounded(.down), fy0 = cy.rounded(.down)
        let x0 = Int(fx0), y0 = Int(fy0), x1 = x0 + 1, y1 = y0 + 1
        let fx = cx - fx0, fy = cy - fy0
        let vx0: Float = x0 >= 0 && x0 < width ? 1 : 0, vx1: Float = x1 >= 0 && x1 < width ? 1 : 0
        let vy0: Float = y0 >= 0 && y0 < height ? 1 : 0, vy1: Float = y1 >= 0 && y1 < height ? 1 : 0
        let cx0 = min(max(x0, 0), width - 1), cx1 = min(max(x1, 0), width - 1)
        let cy0 = min(max(y0, 0), height - 1), cy1 = min(max(y1, 0), height - 1)
        o00 = cy0 * width + cx0
        o01 = cy0 * width + cx1
        o10 = cy1 * width + cx0
        o11 = cy1 * width + cx1
        nw = (1 - fy) * (1 - fx) * vy0 * vx0
        ne = (1 - fy) * fx * vy0 * vx1
        sw = fy * (1 - fx) * vy1 * vx0
        se = fy * fx * vy1 * vx1
    }

    /// Pixel coordinate of a normalized one. With aligned corners -1 and 1 are the
    /// centres of the first and last pixels; otherwise their outer edges.
    @inline(__always)
    static func unnormalize(_ g: Float, size: Int, alignCorners: Bool) -> Float {
        alignCorners ? (g + 1) * (Float(size - 1) / 2) : (g + 1) * (Float(size) / 2) - 0.5
    }

    /// A coordinate clipped to the image; NaN is sent to 0 rather than propagated.
    @inline(__always)
    static func clip(_ c: Float, size: Int) -> Float {
        var c = c
        if !(c > 0) { c = 0 }
        let hi = Float(size - 1)
        if c > hi { c = hi }
        return c
    }
}

/// Bilinear sampling of `x [N, C, H, W]` at the points of `grid [N, Hout, Wout, 2]`, giving
/// `[N, C, Hout, Wout]` — `F.grid_sample(x, grid, mode="bilinear", padding_mode=...,
/// align_corners=alignCorners)`, with border padding unless `padding` says zeros.
///
/// `grid[n, i, j]` is `(x, y)`, normalized so that -1 and 1 are the left/top and
/// right/bottom of the image: the centres of the edge pixels when `alignCorners` is true,
/// their outer edges when false. With border padding, points outside are clipped to the
/// border (the source coordinate itself is clipped, before the weights are computed, as
/// in PyTorch); with zeros padding, pixels outside the image read as 0.
///
/// Differentiable with respect to `x` (the bilinear weights scatter the gradient back);
/// `grid` is a constant.
public func gridSample(_ x: Tensor, grid: Tensor, alignCorners: Bool, padding: GridPadding = .border) throws -> Tensor {
    let op = "gridSample"
    let d = try x.imageDims(op: op)
    guard grid.rank == 4, grid.shape[3] == 2 else {
        throw TensorError.shapeMismatch(op: op, expected: "a grid [N, Hout, Wout, 2] of (x, y) points", got: grid.shape)
    }
    guard grid.shape[0] == d.n else {
        throw TensorError.shapeMismatch(op: op, expected: "a grid with batch size \(d.n) to match the input \(x.shape)",
                                        got: grid.shape)
    }
    let ho = grid.shape[1], wo = grid.shape[2]
    guard d.h >= 1, d.w >= 1 else {
        throw TensorError.invalidArgument(op: op, message: "cannot sample an input with empty spatial size \(d.h)x\(d.w)")
    }
    let y = Tensor(uninitializedShape: [d.n, d.c, ho, wo])
    let h = d.h, w = d.w, c = d.c, inPlane = d.plane, outPlane = ho * wo
    let src = x.pointer, dst = y.pointer, gridP = grid.pointer

    // One output row of one batch item per work item; the taps are computed once per
    // point and used for every channel.
    parallelRanges(d.n * ho, grain: grainFor(elementsPerItem: wo * max(c, 1) * 4)) { rows in
        for row in rows {
            let n = row / ho, oy = row % ho
            let points = gridP + (n * outPlane + oy * wo) * 2
            let image = src + n * c * inPlane
            let out = dst + n * c * outPlane + oy * wo
            for ox in 0..<wo {
                let t = BilinearTap(gx: points[2 * ox], gy: points[2 * ox + 1], height: h, width: w,
                                    alignCorners: alignCorners, padding: padding)
                for ch in 0..<c {
                    let q = image + ch * inPlane
                    out[ch * outPlane + ox] = q[t.o00] * t.nw + q[t.o01] * t.ne + q[t.o10] * t.sw + q[t.o11] * t.se
                }
            }
        }
    }

    let inputShape = x.shape
    return Tensor.recorded(y, from: [x]) { g in
        // `grid` is captured so that its storage outlives the forward call (the caller's
        // grid may be a temporary, as in warpPerspective).
        let gridP = grid.pointer
        // Sample points share source pixels.
        return [planewiseGradient(g, inputShape: inputShape, planes: d.planes, inPlane: inPlane, outPlane: outPlane,
                                  workPerPlane: outPlane * 4) { gin, plane, p in
            let points = gridP + (p / max(c, 1)) * outPlane * 2
            for i in 0..<outPlane {
                let t = BilinearTap(gx: points[2 * i], gy: points[2 * i + 1], height: h, width: w,
                                    alignCorners: alignCorners, padding: padding)
                let v = gin[i]
                plane[t.o00] += v * t.nw
                plane[t.o01] += v * t.ne
                plane[t.o10] += v * t.sw
                plane[t.o11] += v * t.se
            }
        }]
    }
}

// MARK: - Sampling grids from transforms

// Convention for every transform below: the matrix maps OUTPUT pixel coordinates to
// SOURCE pixel coordinates (the "inverse" or dst -> src mapping that warping needs).
// Pixel coordinates are (u, v) = (column, row) with (0, 0) the centre of the top-left
// pixel. For an output pixel (u, v) the source point is
//     (s0, s1, s2) = M · (u, v, 1),   source = (s0 / s2, s1 / s2),
// which is normalized for `gridSample(..., alignCorners: true)` as 2·src/(size-1) - 1,
// so -1 and 1 are the centres of the edge pixels. The grid's width and height serve
// both as the output size and as the size of the image it is meant to sample.
// Where s2 is 0 the point goes to infinity and samples the border.

/// Sampling grid `[N, height, width, 2]` for homographies `[N, 3, 3]` that map output
/// pixel coordinates to source pixel coordinates (see the convention above), for use
/// with ``gridSample(_:grid:alignCorners:)`` with `alignCorners: true`.
/// The homographies are constants (no gradient flows to them).
public func perspectiveGrid(homographies: Tensor, height: Int, width: Int) throws -> Tensor {
    let op = "perspectiveGrid"
    guard homographies.rank == 3, homographies.shape[1] == 3, homographies.shape[2] == 3 else {
        throw TensorError.shapeMismatch(op: op, expected: "homographies [N, 3, 3]", got: homographies.shape)
    }
    return try projectiveGrid(op: op, matrices: homographies.scalars, count: homographies.shape[0],
                              height: height, width: width)
}

/// Sampling grid `[N, height, width, 2]` for affine matrices `[N, 2, 3]` in pixel units
/// that map output pixel coordinates to source pixel coordinates: the homography with
/// last row `(0, 0, 1)`, under the same convention as ``perspectiveGrid(homographies:height:width:)``.
/// Use with ``gridSample(_:grid:alignCorners:)`` with `alignCorners: true`.
public func affineGrid(matrices: Tensor, height: Int, width: Int) throws -> Tensor {
    let op = "affineGrid"
    guard matrices.rank == 3, matrices.shape[1] == 2, matrices.shape[2] == 3 else {
        throw TensorError.shapeMismatch(op: op, expected: "affine matrices [N, 2, 3]", got: matrices.shape)
    }
    let n = matrices.shape[0]
    let m = matrices.scalars
    var full = [Float]()
    full.reserveCapacity(n * 9)
    for b in 0..<n {
        full.append(contentsOf: m[(b * 6)..<(b * 6 + 6)])
        full.append(contentsOf: [0, 0, 1])
    }
    return try projectiveGrid(op: op, matrices: full, count: n, height: height, width: width)
}

/// Warps `x [N, C, H, W]` by homographies `[N, 3, 3]` mapping output pixel coordinates to
/// source pixel coordinates: `gridSample(x, grid: perspectiveGrid(...), alignCorners: true)`
/// with border padding. Differentiable with respect to `x`.
public func warpPerspective(_ x: Tensor, homographies: Tensor, padding: GridPadding = .border) throws -> Tensor {
    let d = try x.imageDims(op: "warpPerspective")
    guard homographies.rank == 3, homographies.shape[0] == d.n, homographies.shape[1] == 3,
          homographies.shape[2] == 3 else {
        throw TensorError.shapeMismatch(op: "warpPerspective",
                                        expected: "homographies [\(d.n), 3, 3] for the input \(x.shape)",
                                        got: homographies.shape)
    }
    let grid = try perspectiveGrid(homographies: homographies, height: d.h, width: d.w)
    return try gridSample(x, grid: grid, alignCorners: true, padding: padding)
}

/// Warps `x [N, C, H, W]` by affine matrices `[N, 2, 3]` (pixel units, output -> source),
/// the affine case of ``warpPerspective(_:homographies:)``. Differentiable with respect to `x`.
public func warpAffine(_ x: Tensor, matrices: Tensor, padding: GridPadding = .border) throws -> Tensor {
    let d = try x.imageDims(op: "warpAffine")
    guard matrices.rank == 3, matrices.shape[0] == d.n, matrices.shape[1] == 2, matrices.shape[2] == 3 else {
        throw TensorError.shapeMismatch(op: "warpAffine", expected: "affine matrices [\(d.n), 2, 3] for the input \(x.shape)",
                                        got: matrices.shape)
    }
    let grid = try affineGrid(matrices: matrices, height: d.h, width: d.w)
    return try gridSample(x, grid: grid, alignCorners: true, padding: padding)
}

/// The grid for `count` row-major 3×3 matrices; computed in double precision.
private func projectiveGrid(op: String, matrices: [Float], count: Int, height: Int, width: Int) throws -> Tensor {
    guard height >= 1, width >= 1 else {
        throw TensorError.invalidArgument(op: op, message: "grid size must be at least 1x1, got \(height)x\(width)")
    }
    let grid = Tensor(uninitializedShape: [count, height, width, 2])
    let m = matrices.map(Double.init)
    // A size-1 axis has a single pixel centre; its normalized coordinate is 0.
    let sx: Double = width > 1 ? 2 / Double(width - 1) : 0
    let sy: Double = height > 1 ? 2 / Double(height - 1) : 0
    let dst = grid.pointer
    parallelRanges(count * height, grain: grainFor(elementsPerItem: 8 * width)) { rows in
        for row in rows {
            let b = row / height, v = Double(row % height)
            let h = b * 9
            let out = dst + row * width * 2
            for i in 0..<width {
                let u = Double(i)
                let s0 = m[h] * u + m[h + 1] * v + m[h + 2]
                let s1 = m[h + 3] * u + m[h + 4] * v + m[h + 5]
                let s2 = m[h + 6] * u + m[h + 7] * v + m[h + 8]
                let px = s0 / s2, py = s1 / s2
                out[2 * i] = width > 1 ? Float(px * sx - 1) : 0
                out[2 * i + 1] = height > 1 ? Float(py * sy - 1) : 0
            }
        }
    }
    return grid
}
