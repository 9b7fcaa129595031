// Spatial pooling of NCHW tensors, numerically following PyTorch's definitions:
// `F.avg_pool2d` and `F.max_pool2d` without padding in floor mode, and
// `F.adaptive_avg_pool2d`. Every op is differentiable with respect to its input.

/// The four dimensions of an NCHW tensor.
struct ImageDims {
    let n: Int, c: Int, h: Int, w: Int
    /// Number of H×W planes (batch × channels).
    var planes: Int { n * c }
    var plane: Int { h * w }
}

extension Tensor {
    /// The dimensions of `self` read as NCHW; throws unless the tensor has rank 4.
    func imageDims(op: String) throws -> ImageDims {
        guard rank == 4 else {
            throw TensorError.shapeMismatch(op: op, expected: "an NCHW tensor of rank 4", got: shape)
        }
        return ImageDims(n: shape[0], c: shape[1], h: shape[2], w: shape[3])
    }
}

/// A tensor of `shape` filled with zeros, for gradients that are scattered into.
@inline(__always)
func zeroedTensor(_ shape: [Int]) -> Tensor {
    let t = Tensor(uninitializedShape: shape)
    t.pointer.initialize(repeating: 0, count: t.count)
    return t
}

/// Invariant (every op here): work items are whole output rows or planes, each computed alone.
///
/// The input gradient of an op that maps each input plane to one output plane: a zeroed
/// tensor of `inputShape` whose planes `scatter(gradOut, gradIn, plane)` fills. Each plane
/// belongs to one thread, so windows, bins or sample taps that share input pixels never
/// write concurrently.
func planewiseGradient(_ g: Tensor, inputShape: [Int], planes: Int, inPlane: Int, outPlane: Int, workPerPlane: Int,
                       _ scatter: (_ gradOut: UnsafeMutablePointer<Float>, _ gradIn: UnsafeMutablePointer<Float>, _ plane: Int) -> Void)
    -> Tensor {
    let gx = zeroedTensor(inputShape)
    let gp = g.pointer, gxp = gx.pointer
    parallelRanges(planes, grain: grainFor(elementsPerItem: workPerPlane)) { range in
        for p in range { scatter(gp + p * outPlane, gxp + p * inPlane, p) }
    }
    return gx
}

/// Rows (or planes) per parallel chunk so that each chunk touches about `target` elements.
@inline(__always)
func grainFor(elementsPerItem: Int, target: Int = 1 << 14) -> Int {
    max(1, target / max(elementsPerItem, 1))
}

/// Output size and stride of a square pooling window sliding over `d` without padding.
private func poolWindow(op: String, _ d: ImageDims, kernel: Int, stride: Int?) throws
    -> (kernel: Int, stride: Int, height: Int, width: Int) {
    guard kernel >= 1 else {
        throw TensorError.invalidArgument(op: op, message: "kernel must be at least 1, got \(kernel)")
    }
    let s = stride ?? kernel
    guard s >= 1 else {
        throw TensorError.invalidArgument(op: op, message: "stride must be at least 1, got \(s)")
    }
    guard kernel <= d.h, kernel <= d.w else {
        throw TensorError.invalidArgument(
            op: op, message: "kernel \(kernel) is larger than the \(d.h)x\(d.w) input (no padding is applied)")
    }
    // Floor mode: only windows that fit entirely inside the input.
    return (kernel, s, (d.h - kernel) / s + 1, (d.w - kernel) / s + 1)
}

// MARK: - Average pooling

/// Average over `kernel`×`kernel` windows moved by `stride` (default: `kernel`), without
/// padding, dropping windows that would cross the right or bottom edge — PyTorch's
/// `F.avg_pool2d(x, kernel, stride)`. `x` is `[N, C, H, W]`; the result is
/// `[N, C, (H - kernel) / stride + 1, (W - kernel) / stride + 1]`.
public func avgPool2d(_ x: Tensor, kernel: Int = 2, stride: Int? = nil) throws -> Tensor {
    let op = "avgPool2d"
    let d = try x.imageDims(op: op)
    let (k, s, ho, wo) = try poolWindow(op: op, d, kernel: kernel, stride: stride)
    let y = Tensor(uninitializedShape: [d.n, d.c, ho, wo])
    let area = Float(k * k)
    let w = d.w, inPlane = d.plane, outPlane = ho * wo
    let src = x.pointer, dst = y.pointer

    // One output row of one plane per work item.
    parallelRanges(d.planes * ho, grain: grainFor(elementsPerItem: wo * k * k)) { rows in
        for row in rows {
            let p = row / ho, oy = row % ho
            let top = src + p * inPlane + oy * s * w
            let out = dst + p * outPlane + oy * wo
            for ox in 0..<wo {
                let corner = top + ox * s
                var acc: Float = 0
                for ky in 0..<k {
                    let line = corner + ky * w
                    for kx in 0..<k { acc += line[kx] }
                }
                out[ox] = acc / area
            }
        }
    }

    let inputShape = x.shape
    return Tensor.recorded(y, from: [x]) { g in
        // Windows may overlap (stride < kernel).
        [planewiseGradient(g, inputShape: inputShape, planes: d.planes, inPlane: inPlane, outPlane: outPlane,
                           workPerPlane: inPlane) { gin, gout, _ in
            for oy in 0..<ho {
                for ox in 0..<wo {
                    let v = gin[oy * wo + ox] / area
                    let corner = gout + oy * s * w + ox * s
                    for ky in 0..<k {
                        let line = corner + ky * w
                        for kx in 0..<k { line[kx] += v }
                    }
                }
            }
        }]
    }
}

// MARK: - Max pooling

/// Maximum over `kernel`×`kernel` windows moved by `stride` (default: `kernel`), without
/// padding, in floor mode — PyTorch's `F.max_pool2d(x, kernel, stride)`.
///
/// The gradient of each output goes to the position of its window's maximum; on ties
/// it goes to the first maximum in row-major order, and a NaN counts as the maximum,
/// both as in PyTorch.
public func maxPool2d(_ x: Tensor, kernel: Int = 2, stride: Int? = nil) throws -> Tensor {
    let op = "maxPool2d"
    let d = try x.imageDims(op: op)
    let (k, s, ho, wo) = try poolWindow(op: op, d, kernel: kernel, stride: stride)
    let y = Tensor(uninitializedShape: [d.n, d.c, ho, wo])
    let w = d.w, inPlane = d.plane, outPlane = ho * wo
    let src = x.pointer, dst = y.pointer

    // For every output, the offset within its input plane of the element it took.
    var argmax = [Int](repeating: 0, count: y.count)
    argmax.withUnsafeMutableBufferPointer { buffer in
        guard let am = buffer.baseAddress else { return }
        parallelRanges(d.planes * ho, grain: grainFor(elementsPerItem: wo * k * k)) { rows in
            for row in rows {
                let p = row / ho, oy = row % ho
                let plane = src + p * inPlane
                let out = dst + p * outPlane + oy * wo
                let outIndex = am + p * outPlane + oy * wo
                for ox in 0..<wo {
                    let first = oy * s * w + ox * s
                    var best = plane[first], bestAt = first
                    for ky in 0..<k {
                        let lineStart = first + ky * w
                        for kx in 0..<k {
                            let v = plane[lineStart + kx]
                            if v > best || v.isNaN {
                                best = v
                                bestAt = lineStart + kx
                            }
                        }
                    }
                    out[ox] = best
                    outIndex[ox] = bestAt
                }
            }
        }
    }

    let inputShape = x.shape
    return Tensor.recorded(y, from: [x]) { g in
        argmax.withUnsafeBufferPointer { am in
            [planewiseGradient(g, inputShape: inputShape, planes: d.planes, inPlane: inPlane, outPlane: outPlane,
                               workPerPlane: inPlane) { gin, gout, p in
                for i in 0..<outPlane { gout[am[p * outPlane + i]] += gin[i] }
            }]
        }
    }
}

// MARK: - Adaptive average pooling

/// The pooling bin of output index `i` along an axis of `inSize` resized to `outSize`:
/// `floor(i * in / out) ..< ceil((i + 1) * in / out)`, PyTorch's rule. Bins of
/// neighbouring outputs may overlap when the sizes do not divide.
@inline(__always)
func adaptiveBin(_ i: Int, inSize: Int, outSize: Int) -> Range<Int> {
    let start = (i * inSize) / outSize
    let end = ((i + 1) * inSize + outSize - 1) / outSize
    return start..<end
}

/// Average over the bins that split `x [N, C, H, W]` into `outputSize.height` ×
/// `outputSize.width` regions — PyTorch's `F.adaptive_avg_pool2d(x, (height, width))`.
/// Bin `i` of an axis covers `floor(i·in/out) ..< ceil((i+1)·in/out)`, so the sizes need
/// not divide (e.g. 256 → 224 for CLIP) and the output may be larger than the input.
public func adaptiveAvgPool2d(_ x: Tensor, outputSize: (height: Int, width: Int)) throws -> Tensor {
    let op = "adaptiveAvgPool2d"
    let d = try x.imageDims(op: op)
    let (ho, wo) = outputSize
    guard ho >= 1, wo >= 1 else {
        throw TensorError.invalidArgument(op: op, message: "output size must be at least 1x1, got \(ho)x\(wo)")
    }
    guard d.h >= 1, d.w >= 1 else {
        throw TensorError.invalidArgument(op: op, message: "input spatial size \(d.h)x\(d.w) is empty")
    }
    let rowBins = (0..<ho).map { adaptiveBin($0, inSize: d.h, outSize: ho) }
    let colBins = (0..<wo).map { adaptiveBin($0, inSize: d.w, outSize: wo) }
    let y = Tensor(uninitializedShape: [d.n, d.c, ho, wo])
    let w = d.w, inPlane = d.plane, outPlane = ho * wo
    let src = x.pointer, dst = y.pointer
    let binArea = max(1, (d.h + ho - 1) / ho + 1) * max(1, (d.w + wo - 1) / wo + 1)

    parallelRanges(d.planes * ho, grain: grainFor(elementsPerItem: wo * binArea)) { rows in
        for row in rows {
            let p = row / ho, oy = row % ho
            let plane = src + p * inPlane
            let out = dst + p * outPlane + oy * wo
            let rb = rowBins[oy]
            for ox in 0..<wo {
                let cb = colBins[ox]
                var acc: Float = 0
                for iy in rb {
                    let line = plane + iy * w
                    for ix in cb { acc += line[ix] }
                }
                out[ox] = acc / Float(rb.count) / Float(cb.count)
            }
        }
    }

    let inputShape = x.shape
    return Tensor.recorded(y, from: [x]) { g in
        // Bins can overlap.
        [planewiseGradient(g, inputShape: inputShape, planes: d.planes, inPlane: inPlane, outPlane: outPlane,
                           workPerPlane: inPlane) { gin, gout, _ in
            for oy in 0..<ho {
                let rb = rowBins[oy]
                for ox in 0..<wo {
                    let cb = colBins[ox]
                    let v = gin[oy * wo + ox] / Float(rb.count) / Float(cb.count)
                    for iy in rb {
                        let line = gout + iy * w
                        for ix in cb { line[ix] += v }
                    }
                }
            }
        }]
    }
}
