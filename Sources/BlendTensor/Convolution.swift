/// Geometry of one 2-D convolution, shared by the forward pass and the input gradient.
struct ConvGeometry {
    let batch: Int, inChannels: Int, height: Int, width: Int
    let outChannels: Int, kernelH: Int, kernelW: Int
    let strideH: Int, strideW: Int, padH: Int, padW: Int
    let outH: Int, outW: Int

    var kernelSize: Int { inChannels * kernelH * kernelW }   // the GEMM's K
    var outPlane: Int { outH * outW }
    var inPlane: Int { height * width }
    var isPointwise: Bool { kernelH == 1 && kernelW == 1 && strideH == 1 && strideW == 1 && padH == 0 && padW == 0 }

    /// Output rows per im2col tile: enough columns (~2048) to keep the GEMM efficient,
    /// few enough that the column buffer stays in cache-friendly size.
    var rowsPerTile: Int { max(1, min(outH, 2048 / max(outW, 1))) }
}

/// 2-D convolution (cross-correlation, as PyTorch's `F.conv2d`) on NCHW input.
///
/// `weight` is `[outChannels, inChannels, kH, kW]` and `bias` `[outChannels]`; both are
/// constants. The gradient flows to `x`. Implemented as im2col tiles times the weight
/// matrix through BLAS; 1×1 convolutions skip im2col.
public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil,
                   stride: (Int, Int), padding: (Int, Int)) throws -> Tensor {
    guard x.rank == 4 else {
        throw TensorError.shapeMismatch(op: "conv2d", expected: "input [N, C, H, W]", got: x.shape)
    }
    guard weight.rank == 4, weight.dim(1) == x.dim(1) else {
        throw TensorError.shapeMismatch(op: "conv2d weight", expected: "[outChannels, \(x.dim(1)), kH, kW] for input \(x.shape)", got: weight.shape)
    }
    guard stride.0 >= 1, stride.1 >= 1, padding.0 >= 0, padding.1 >= 0 else {
        throw TensorError.invalidArgument(op: "conv2d", message: "stride \(stride) must be >= 1 and padding \(padding) >= 0")
    }
    if let bias, bias.shape != [weight.dim(0)] {
        throw TensorError.shapeMismatch(op: "conv2d bias", expected: "[\(weight.dim(0))]", got: bias.shape)
    }
    let h = x.dim(2) + 2 * padding.0 - weight.dim(2), w = x.dim(3) + 2 * padding.1 - weight.dim(3)
    guard h >= 0, w >= 0 else {
        throw TensorError.invalidArgument(op: "conv2d", message: "kernel \(weight.dim(2))x\(weight.dim(3)) is larger than the padded input \(x.shape)")
    }
    let geo = ConvGeometry(batch: x.dim(0), inChannels: x.dim(1), height: x.dim(2), width: x.dim(3),
                           outChannels: weight.dim(0), kernelH: weight.dim(2), kernelW: weight.dim(3),
                           strideH: stride.0, strideW: stride.1, padH: padding.0, padW: padding.1,
                           outH: h / stride.0 + 1, outW: w / stride.1 + 1)
    let y = convForward(x, weight: weight, bias: bias, geo)
    return Tensor.recorded(y, from: [x]) { g in [convInputGradient(g, weight: weight, geo)] }
}

/// Square-stride, square-padding convenience.
public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0) throws -> Tensor {
    try conv2d(x, weight: weight, bias: bias, stride: (stride, stride), padding: (padding, padding))
}

/// 1-D convolution on `[N, C, L]` with weight `[outChannels, inChannels, k]` (PyTorch's `F.conv1d`).
public func conv1d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0) throws -> Tensor {
    guard x.rank == 3, weight.rank == 3 else {
        throw TensorError.shapeMismatch(op: "conv1d", expected: "input [N, C, L] and weight [out, in, k]", got: x.rank == 3 ? weight.shape : x.shape)
    }
    let y = try conv2d(x.reshaped([x.dim(0), x.dim(1), 1, x.dim(2)]),
                       weight: weight.reshaped([weight.dim(0), weight.dim(1), 1, weight.dim(2)]),
                       bias: bias, stride: (1, stride), padding: (0, padding))
    return try y.reshaped([y.dim(0), y.dim(1), y.dim(3)])
}

private func convForward(_ x: Tensor, weight: Tensor, bias: Tensor?, _ geo: ConvGeometry) -> Tensor {
    let y = Tensor(uninitializedShape: [geo.batch, geo.outChannels, geo.outH, geo.outW])
    let plane = geo.outPlane
    for n in 0..<geo.batch {
        let yn = y.pointer + n * geo.outChannels * plane
        if let bias {
            parallelFor(geo.outChannels, grain: 8) { co in
                (yn + co * plane).initialize(repeating: bias.pointer[co], count: plane)
            }
        }
        let beta: Float = bias == nil ? 0 : 1
        let xn = x.pointer + n * geo.inChannels * geo.inPlane
        if geo.isPointwise {
            sgemm(m: geo.outChannels, n: plane, k: geo.inChannels, a: weight.pointer, lda: geo.inChannels,
                  b: xn, ldb: plane, beta: beta, c: yn, ldc: plane)
            continue
        }
        let rows = geo.rowsPerTile
        let columns = TensorStorage(uninitializedCount: geo.kernelSize * rows * geo.outW)
        var row0 = 0
        while row0 < geo.outH {
            let tileRows = min(rows, geo.outH - row0)
            let tileCols = tileRows * geo.outW
            im2col(xn, geo, firstRow: row0, rowCount: tileRows, into: columns.pointer)
            sgemm(m: geo.outChannels, n: tileCols, k: geo.kernelSize, a: weight.pointer, lda: geo.kernelSize,
                  b: columns.pointer, ldb: tileCols, beta: beta, c: yn + row0 * geo.outW, ldc: plane)
            row0 += tileRows
        }
    }
    return y
}

private func convInputGradient(_ g: Tensor, weight: Tensor, _ geo: ConvGeometry) -> Tensor {
    let gx = Tensor(uninitializedShape: [geo.batch, geo.inChannels, geo.height, geo.width])
    let plane = geo.outPlane
    for n in 0..<geo.batch {
        let gn = g.pointer + n * geo.outChannels * plane
        let gxn = gx.pointer + n * geo.inChannels * geo.inPlane
        if geo.isPointwise {
            sgemm(transA: true, m: geo.inChannels, n: plane, k: geo.outChannels, a: weight.pointer, lda: geo.inChannels,
                  b: gn, ldb: plane, c: gxn, ldc: plane)
            continue
        }
        gxn.initialize(repeating: 0, count: geo.inChannels * geo.inPlane)
        let rows = geo.rowsPerTile
        let columns = TensorStorage(uninitializedCount: geo.kernelSize * rows * geo.outW)
        var row0 = 0
        while row0 < geo.outH {
            let tileRows = min(rows, geo.outH - row0)
            let tileCols = tileRows * geo.outW
            // Column gradient = Wᵀ · dY(tile); the GEMM reads dY rows with stride `plane`.
            sgemm(transA: true, m: geo.kernelSize, n: tileCols, k: geo.outChannels, a: weight.pointer, lda: geo.kernelSize,
                  b: gn + row0 * geo.outW, ldb: plane, c: columns.pointer, ldc: tileCols)
            col2imAdd(columns.pointer, geo, firstRow: row0, rowCount: tileRows, into: gxn)
            row0 += tileRows
        }
    }
    return gx
}

/// Unfolds output rows `firstRow..<firstRow+rowCount` of one image into the column
/// matrix `[C·kH·kW, rowCount·outW]` (zeros where the kernel reads padding).
private func im2col(_ x: UnsafeMutablePointer<Float>, _ geo: ConvGeometry, firstRow: Int, rowCount: Int,
                    into cols: UnsafeMutablePointer<Float>) {
    let kk = geo.kernelH * geo.kernelW
    let tileCols = rowCount * geo.outW
    parallelFor(geo.inChannels * kk, grain: 4) { r in
        let c = r / kk, ki = (r % kk) / geo.kernelW, kj = r % geo.kernelW
        let src = x + c * geo.inPlane
        let dst = cols + r * tileCols
        for t in 0..<rowCount {
            let iy = (firstRow + t) * geo.strideH - geo.padH + ki
            let out = dst + t * geo.outW
            if iy < 0 || iy >= geo.height {
                out.initialize(repeating: 0, count: geo.outW)
                continue
            }
            let line = src + iy * geo.width
            if geo.strideW == 1 {
                // ix = ox - padW + kj: a shifted copy with zeros at the ends.
                let shift = kj - geo.padW
                let lo = max(0, -shift), hi = min(geo.outW, geo.width - shift)
                if lo > 0 { out.initialize(repeating: 0, count: min(lo, geo.outW)) }
                if hi > lo { (out + lo).update(from: line + lo + shift, count: hi - lo) }
                if hi < geo.outW { (out + max(hi, 0)).initialize(repeating: 0, count: geo.outW - max(hi, 0)) }
            } else {
                for ox in 0..<geo.outW {
                    let ix = ox * geo.strideW - geo.padW + kj
                    out[ox] = (ix >= 0 && ix < geo.width) ? line[ix] : 0
                }
            }
        }
    }
}

/// The adjoint of `im2col`: adds the column matrix back into the image gradient.
/// Each thread owns whole input channels, so there are no write races.
private func col2imAdd(_ cols: UnsafeMutablePointer<Float>, _ geo: ConvGeometry, firstRow: Int, rowCount: Int,
                       into gx: UnsafeMutablePointer<Float>) {
    let kk = geo.kernelH * geo.kernelW
    let tileCols = rowCount * geo.outW
    parallelFor(geo.inChannels, grain: 1) { c in
        let dstPlane = gx + c * geo.inPlane
        for k in 0..<kk {
            let ki = k / geo.kernelW, kj = k % geo.kernelW
            let src = cols + (c * kk + k) * tileCols
            for t in 0..<rowCount {
                let iy = (firstRow + t) * geo.strideH - geo.padH + ki
                if iy < 0 || iy >= geo.height { continue }
                let line = dstPlane + iy * geo.width
                let row = src + t * geo.outW
                if geo.strideW == 1 {
                    let shift = kj - geo.padW
                    let lo = max(0, -shift), hi = min(geo.outW, geo.width - shift)
                    if hi > lo {
                        let d = line + shift
                        for ox in lo..<hi { d[ox] += row[ox] }
                    }
                } else {
                    for ox in 0..<geo.outW {
                        let ix = ox * geo.strideW - geo.padW + kj
                        if ix >= 0 && ix < geo.width { line[ix] += row[ox] }
                    }
                }
            }
        }
    }
}
