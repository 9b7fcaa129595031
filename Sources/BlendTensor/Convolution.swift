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

    /// The path of a convolution over `pixels` output pixels (forward) or input pixels (input
    /// gradient): a fast stride-1 path, or nil for im2col (and the pointwise GEMM).
    ///
    /// The stride-1 fast paths rearrange the kernel once and keep the result with the weight
    /// (Winograd F(2×2, 3×3): 16/9 of the kernel, F(4×4, 3×3): 4×; other sizes: its taps). On
    /// small images with many channels — the deep levels of the UNet, which hold most of its
    /// weights — their GEMMs run over few tiles, and keeping those transforms would multiply
    /// the memory of the largest kernels; im2col, which multiplies the kernel as it is stored,
    /// is used below 1,024 pixels (break-even near 600 pixels for F(2×2, 3×3)). 3×3 kernels
    /// take ``Convolution3x3Algorithm/current`` when it is not `automatic`, else
    /// ``winogradF4MinimumPixels`` decides between the two Winograd sizes.
    func stride1Path(pixels: Int) -> Stride1Path? {
        guard strideH == 1 && strideW == 1 && !isPointwise else { return nil }
        if kernelH == 3 && kernelW == 3 {
            switch Convolution3x3Algorithm.current {
            case .im2col: return nil
            case .winogradF2: return .winogradF2
            case .winogradF4: return .winogradF4
            case .automatic: break
            }
            guard pixels >= 1024 else { return nil }
            return pixels >= ConvGeometry.winogradF4MinimumPixels ? .winogradF4 : .winogradF2
        }
        return pixels >= 1024 ? .shifted : nil
    }

    /// F(4×4, 3×3) from this many pixels up (F(2×2, 3×3) from 1,024): measured per shape in
    /// BENCHMARKS.md ("Winograd F(4×4, 3×3)").
    static let winogradF4MinimumPixels = 2048

    /// Output rows per im2col tile: enough columns (~2048) to keep the GEMM efficient,
    /// few enough that the column buffer stays in cache-friendly size.
    var rowsPerTile: Int { max(1, min(outH, 2048 / max(outW, 1))) }

    /// Walks the output rows in im2col tiles, handing each a column buffer
    /// `[kernelSize, tileRows · outW]` (reused from tile to tile).
    /// Invariant: the tiles cover rows `0..<outH` once and depend only on the shape, never on
    /// the thread count or the batch.
    func forEachTile(_ body: (_ firstRow: Int, _ rows: Int, _ columns: Int, _ buffer: UnsafeMutablePointer<Float>) -> Void) {
        let buffer = TensorStorage(uninitializedCount: kernelSize * rowsPerTile * outW)
        var row0 = 0
        while row0 < outH {
            let rows = min(rowsPerTile, outH - row0)
            body(row0, rows, rows * outW, buffer.pointer)
            row0 += rows
        }
    }
}

/// 2-D convolution (cross-correlation, as PyTorch's `F.conv2d`) on NCHW input.
///
/// `weight` is `[outChannels, inChannels, kH, kW]` and `bias` `[outChannels]`; both are
/// constants. The gradient flows to `x`. Implemented as im2col tiles times the weight
/// matrix through BLAS; 1×1 convolutions skip im2col. ``ComputePrecision/current`` and
/// ``ConvolutionBackend/current`` (task-local) choose bf16 and oneDNN (see
/// ``convolutionOnOneDNN(_:_:precision:hasBias:)``).
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
    let precision = ComputePrecision.current.effective
    if let conv = convolutionOnOneDNN(geo, precision: precision, hasBias: bias != nil) {
        // Image by image (the primitive is for one): a sample's result does not depend on its
        // batch; its OpenMP threads are the engine's count (OneDNN.useThreads).
        let y = Tensor(uninitializedShape: [geo.batch, geo.outChannels, geo.outH, geo.outW])
        let inSize = geo.inChannels * geo.inPlane, outSize = geo.outChannels * geo.outPlane
        for n in 0..<geo.batch { conv.forward(x.pointer + n * inSize, weight: weight, bias: bias, into: y.pointer + n * outSize) }
        let inputShape = x.shape
        return Tensor.recorded(y, from: [x]) { g in
            let gx = Tensor(uninitializedShape: inputShape)
            for n in 0..<geo.batch {
                guard conv.inputGradient(g.pointer + n * outSize, weight: weight, into: gx.pointer + n * inSize) else {
                    return [convInputGradient(g, weight: weight, geo)]
                }
            }
            return [gx]
        }
    }
    if precision == .bf16Rounded {
        let rounded = weight.bfloat16RoundedWeights
        let y = convForward(x.roundedToBFloat16(), weight: rounded, bias: bias, geo)
        let algorithm = Convolution3x3Algorithm.current
        return Tensor.recorded(y, from: [x]) { g in
            Convolution3x3Algorithm.$current.withValue(algorithm) { [convInputGradient(g.roundedToBFloat16(), weight: rounded, geo)] }
        }
    }
    let y = convForward(x, weight: weight, bias: bias, geo)
    // The input gradient runs later, outside these task-local scopes: it keeps the forward's
    // policy and algorithm.
    let policy = WeightTransformPolicy.current, algorithm = Convolution3x3Algorithm.current
    return Tensor.recorded(y, from: [x]) { g in
        WeightTransformPolicy.$current.withValue(policy) {
            Convolution3x3Algorithm.$current.withValue(algorithm) { [convInputGradient(g, weight: weight, geo)] }
        }
    }
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
        if let path = geo.stride1Path(pixels: geo.outPlane) {
            stride1Convolution(path, xn, channels: geo.inChannels, height: geo.height, width: geo.width,
                               padH: geo.padH, padW: geo.padW, weight: weight, geo, adjoint: false,
                               outChannels: geo.outChannels, accumulate: bias != nil, into: yn)
            continue
        }
        if geo.isPointwise {
            sgemm(m: geo.outChannels, n: plane, k: geo.inChannels, a: weight.pointer, lda: geo.inChannels,
                  b: xn, ldb: plane, beta: beta, c: yn, ldc: plane)
            continue
        }
        geo.forEachTile { row0, tileRows, tileCols, columns in
            im2col(xn, geo, firstRow: row0, rowCount: tileRows, into: columns)
            sgemm(m: geo.outChannels, n: tileCols, k: geo.kernelSize, a: weight.pointer, lda: geo.kernelSize,
                  b: columns, ldb: tileCols, beta: beta, c: yn + row0 * geo.outW, ldc: plane)
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
        if let path = geo.stride1Path(pixels: geo.inPlane), geo.padH < geo.kernelH && geo.padW < geo.kernelW {
            // The input gradient of a stride-1 convolution is the convolution of dY with the
            // flipped, transposed kernel and the complementary padding.
            stride1Convolution(path, gn, channels: geo.outChannels, height: geo.outH, width: geo.outW,
                               padH: geo.kernelH - 1 - geo.padH, padW: geo.kernelW - 1 - geo.padW,
                               weight: weight, geo, adjoint: true,
                               outChannels: geo.inChannels, accumulate: false, into: gxn)
            continue
        }
        if geo.isPointwise {
            sgemm(transA: true, m: geo.inChannels, n: plane, k: geo.outChannels, a: weight.pointer, lda: geo.inChannels,
                  b: gn, ldb: plane, c: gxn, ldc: plane)
            continue
        }
        gxn.initialize(repeating: 0, count: geo.inChannels * geo.inPlane)
        geo.forEachTile { row0, tileRows, tileCols, columns in
            // Column gradient = Wᵀ · dY(tile); the GEMM reads dY rows with stride `plane`.
            sgemm(transA: true, m: geo.kernelSize, n: tileCols, k: geo.outChannels, a: weight.pointer, lda: geo.kernelSize,
                  b: gn + row0 * geo.outW, ldb: plane, c: columns, ldc: tileCols)
            col2imAdd(columns, geo, firstRow: row0, rowCount: tileRows, into: gxn)
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

/// Whether the stride-1 convolutions keep the rearranged kernels they multiply (Winograd
/// filter transforms; kernel taps) with the weight for later calls, or compute them afresh in
/// each call, chosen per task: `WeightTransformPolicy.$current.withValue(.perCall) { ... }`.
/// Results are the same either way, bit for bit.
///
/// Keeping a transform pays where computing it is a noticeable share of the convolution it
/// serves: F(2×2, 3×3) (16/9 of the kernel, taken from 1,024 to 2,047 pixels; computing it per
/// call made SD 1.5's CFG step 24 % slower) and kernel taps. F(4×4, 3×3) runs only from 2,048
/// pixels, where its transform (4× the kernel) is small next to the convolution; kept, those
/// transforms held 0.70 GiB of a full ADM-256 guided step's 8.90 GiB peak for no measurable time
/// (BENCHMARKS.md, 2026-12-01).
public enum WeightTransformPolicy: String, Sendable, CaseIterable {
    /// F(2×2, 3×3) transforms and kernel taps kept, F(4×4, 3×3) transforms per call (the default).
    case automatic
    /// Every transform computed on first use and kept with the weight.
    case kept
    /// Every transform computed for each call into a scratch block and dropped after it (a
    /// transform kept by an earlier call is still used).
    case perCall = "per-call"

    /// The policy in force in this task (default ``automatic``).
    @TaskLocal public static var current: WeightTransformPolicy = .automatic

    /// Whether the transform `key` is kept under this policy.
    func keeps(_ key: TensorStorage.DerivedKey) -> Bool {
        switch self {
        case .kept: return true
        case .perCall: return false
        case .automatic:
            if case .winogradF4Filter = key { return false }
            return true
        }
    }
}

/// `weight.storage.derived(key, ...)` where ``WeightTransformPolicy`` keeps `key`, else a
/// kept block if there is one, else a scratch block filled by `make`.
func weightTransform(_ weight: Tensor, _ key: TensorStorage.DerivedKey, count: Int,
                             _ make: (UnsafeMutablePointer<Float>) -> Void) -> TensorStorage {
    if WeightTransformPolicy.current.keeps(key) { return weight.storage.derived(key, count: count, make) }
    if let kept = weight.storage.keptDerived(key) { return kept }
    let block = TensorStorage(uninitializedCount: count)
    make(block.pointer)
    return block
}

/// The kernel split into one `[out, in]` matrix per tap (ki, kj), `[kH·kW, out, in]`, as the
/// shifted convolution multiplies them; computed on first use and kept with the weight
/// (see ``WeightTransformPolicy``).
/// The input-gradient convolution multiplies the same matrices transposed, taps in reverse.
private func kernelTaps(_ weight: Tensor, _ geo: ConvGeometry) -> TensorStorage {
    let co = geo.outChannels, ci = geo.inChannels, kk = geo.kernelH * geo.kernelW
    return weightTransform(weight, .kernelTaps(out: co, in: ci, kernelH: geo.kernelH, kernelW: geo.kernelW),
                           count: kk * co * ci) { t in
        let w = weight.pointer
        parallelFor(co, grain: 16) { o in
            for i in 0..<ci {
                let src = w + (o * ci + i) * kk
                for k in 0..<kk { t[k * co * ci + o * ci + i] = src[k] }
            }
        }
    }
}

/// The Winograd filter transform U = G·g·Gᵀ of a 3×3 kernel, one `[out, in]` matrix per
/// element of the 4×4 transformed tile (`[16, out, in]`), with
/// G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]] (Lavin & Gray, 2016). Computed on first
/// use and kept with the weight (16/9 of the kernel's size) unless ``WeightTransformPolicy``
/// says otherwise.
private func winogradFilter(_ weight: Tensor, _ geo: ConvGeometry) -> TensorStorage {
    let co = geo.outChannels, ci = geo.inChannels, pairs = co * ci
    return weightTransform(weight, .winogradFilter(out: co, in: ci), count: 16 * pairs) { up in
        let w = weight.pointer
        parallelFor(co, grain: 8) { o in
            for i in 0..<ci {
                let g = w + (o * ci + i) * 9
                // Rows of G·g (4 × 3, as SIMD3 over kx), then each row times Gᵀ.
                let k0 = SIMD3<Float>(g[0], g[1], g[2])
                let k1 = SIMD3<Float>(g[3], g[4], g[5])
                let k2 = SIMD3<Float>(g[6], g[7], g[8])
                let base = o * ci + i
                @inline(__always) func store(_ r: Int, _ row: SIMD3<Float>) {
                    let q = up + r * 4 * pairs + base
                    q[0] = row[0]
                    q[pairs] = (row[0] + row[1] + row[2]) * 0.5
                    q[2 * pairs] = (row[0] - row[1] + row[2]) * 0.5
                    q[3 * pairs] = row[2]
                }
                store(0, k0)
                store(1, (k0 + k1 + k2) * 0.5)
                store(2, (k0 - k1 + k2) * 0.5)
                store(3, k2)
            }
        }
    }
}

/// The stride-1 paths of ``ConvGeometry/stride1Path(pixels:)``.
enum Stride1Path { case winogradF2, winogradF4, shifted }

/// How stride-1 3×3 convolutions are computed, chosen per task:
/// `Convolution3x3Algorithm.$current.withValue(.winogradF4) { ... }` (benchmarks and tests
/// compare the paths with it; results agree to float rounding). `automatic` (the default)
/// takes im2col below 1,024 pixels, F(2×2, 3×3) up to 2,047 and F(4×4, 3×3) from 2,048 (see
/// ``ConvGeometry/stride1Path(pixels:)``); the others apply at every size. Only the engine's
/// own convolutions read it (not oneDNN's).
public enum Convolution3x3Algorithm: String, Sendable, CaseIterable {
    case automatic
    /// Unfolded patches times the kernel as stored (nothing kept).
    case im2col
    /// Winograd F(2×2, 3×3): 4 multiplications per output, keeps 16/9 of the kernel.
    case winogradF2 = "winograd-f2"
    /// Winograd F(4×4, 3×3): 2.25 multiplications per output, keeps 4× the kernel.
    case winogradF4 = "winograd-f4"

    /// The algorithm in force in this task (default ``automatic``).
    @TaskLocal public static var current: Convolution3x3Algorithm = .automatic
}

/// A stride-1 convolution of one image with `weight` (`adjoint`: its flipped, transposed
/// kernel, for the input gradient): Winograd F(2×2, 3×3) or F(4×4, 3×3) for 3×3 kernels,
/// shifted GEMMs for other sizes. The rearranged weight is kept with it or computed per call as
/// ``WeightTransformPolicy`` says.
private func stride1Convolution(_ path: Stride1Path, _ input: UnsafeMutablePointer<Float>, channels: Int,
                                height: Int, width: Int, padH: Int, padW: Int, weight: Tensor, _ geo: ConvGeometry,
                                adjoint: Bool, outChannels: Int, accumulate: Bool,
                                into output: UnsafeMutablePointer<Float>) {
    let fitsWinograd = geo.kernelH == 3 && geo.kernelW == 3 && height + 2 * padH >= 3 && width + 2 * padW >= 3
    if fitsWinograd && path == .winogradF4 {
        let filter = winogradF4Filter(weight, outChannels: geo.outChannels, inChannels: geo.inChannels)
        winogradF4Convolution(input, channels: channels, height: height, width: width, padH: padH, padW: padW,
                              filter: filter.pointer, adjoint: adjoint, outChannels: outChannels,
                              accumulate: accumulate, into: output)
    } else if fitsWinograd {
        let filter = winogradFilter(weight, geo)
        winogradConvolution(input, channels: channels, height: height, width: width, padH: padH, padW: padW,
                            filter: filter.pointer, adjoint: adjoint, outChannels: outChannels,
                            accumulate: accumulate, into: output)
    } else {
        let taps = kernelTaps(weight, geo)
        shiftedConvolution(input, channels: channels, height: height, width: width, padH: padH, padW: padW,
                           kernelH: geo.kernelH, kernelW: geo.kernelW, taps: taps.pointer, adjoint: adjoint,
                           outChannels: outChannels, accumulate: accumulate, into: output)
    }
}

/// A stride-1 convolution of one image as kH·kW GEMMs over the zero-padded input.
///
/// In the padded image, the input pixel under tap (ki, kj) for output (oy, ox) sits at
/// flat offset (oy·Wp + ox) + (ki·Wp + kj): every tap is the same matrix shifted by a
/// constant. Computing outputs for all Wp columns of each row (the last kW−1 are
/// discarded) turns each tap into one GEMM with a contiguous operand — no im2col copy,
/// and the full arithmetic intensity of BLAS. Output rows are processed in chunks so the
/// accumulator stays in cache across the taps. With `accumulate`, results are added to
/// `output` (which holds the bias). `taps` holds the forward kernel's `[out, in]` matrices
/// (`[kH·kW, outChannels, channels]`, or with `adjoint` `[kH·kW, channels, outChannels]`,
/// multiplied transposed and in reverse tap order: the flipped, transposed kernel).
private func shiftedConvolution(_ input: UnsafeMutablePointer<Float>, channels: Int, height: Int, width: Int,
                                padH: Int, padW: Int, kernelH: Int, kernelW: Int,
                                taps: UnsafeMutablePointer<Float>, adjoint: Bool, outChannels: Int, accumulate: Bool,
                                into output: UnsafeMutablePointer<Float>) {
    let hp = height + 2 * padH, wp = width + 2 * padW
    let outH = hp - kernelH + 1, outW = wp - kernelW + 1
    // The last tap of the last row reads kW−1 floats past the padded plane: keep them zero.
    let paddedPlane = hp * wp + kernelW
    let padded = TensorStorage(uninitializedCount: channels * paddedPlane)
    let pp = padded.pointer
    parallelFor(channels, grain: 4) { c in
        let dst = pp + c * paddedPlane, src = input + c * height * width
        dst.initialize(repeating: 0, count: padH * wp + padW)
        for y in 0..<height {
            (dst + (padH + y) * wp + padW).update(from: src + y * width, count: width)
            if y + 1 < height { (dst + (padH + y) * wp + padW + width).initialize(repeating: 0, count: 2 * padW) }
        }
        let tail = (padH + height - 1) * wp + padW + width
        (dst + tail).initialize(repeating: 0, count: paddedPlane - tail)
    }
    // Invariant: chunks of output rows by shape alone; each output is summed over the taps in
    // the same order whatever the thread count (each tap one sgemm, split only by rows).
    let rowsPerChunk = max(1, min(outH, 8192 / wp))
    let chunk = TensorStorage(uninitializedCount: outChannels * rowsPerChunk * wp)
    let cp = chunk.pointer
    var row0 = 0
    while row0 < outH {
        let rows = min(rowsPerChunk, outH - row0)
        let cols = rows * wp
        for ki in 0..<kernelH {
            for kj in 0..<kernelW {
                let k = ki * kernelW + kj
                let tap = taps + (adjoint ? kernelH * kernelW - 1 - k : k) * outChannels * channels
                sgemm(transA: adjoint, m: outChannels, n: cols, k: channels, a: tap, lda: adjoint ? outChannels : channels,
                      b: pp + row0 * wp + ki * wp + kj, ldb: paddedPlane,
                      beta: k == 0 ? 0 : 1, c: cp, ldc: cols)
            }
        }
        parallelFor(outChannels, grain: 8) { o in
            let src = cp + o * cols, dst = output + o * outH * outW + row0 * outW
            for r in 0..<rows {
                let s = src + r * wp, d = dst + r * outW
                if accumulate {
                    for x in 0..<outW { d[x] += s[x] }
                } else {
                    d.update(from: s, count: outW)
                }
            }
        }
        row0 += rows
    }
}

/// A stride-1 3×3 convolution of one image by Winograd's minimal filtering F(2×2, 3×3)
/// (Lavin & Gray, 2016): each 2×2 block of outputs comes from a 4×4 input patch with 16
/// multiplications per channel pair instead of 36. The 16 products are 16 GEMMs
/// `U[e] · V[e]` (U: transformed filters [out, in], from ``winogradFilter(_:_:)``; V:
/// transformed patches [in, tiles]), shared out whole among the engine's threads; the
/// transforms themselves are additions. With `adjoint` the kernel is flipped and transposed
/// (the input gradient): as G·J = P·G, with J the 3×3 reversal and P the swap of rows 0 and
/// 3, its transform is element (p(a), p(b)) of the stored one, transposed. Tiles are
/// processed in chunks so that V and the products stay in cache.
private func winogradConvolution(_ input: UnsafeMutablePointer<Float>, channels: Int, height: Int, width: Int,
                                 padH: Int, padW: Int, filter: UnsafeMutablePointer<Float>, adjoint: Bool,
                                 outChannels: Int, accumulate: Bool, into output: UnsafeMutablePointer<Float>) {
    let ci = channels, co = outChannels
    let outH = height + 2 * padH - 2, outW = width + 2 * padW - 2
    let tilesY = (outH + 1) / 2, tilesX = (outW + 1) / 2
    let up = filter, pairs = co * ci
    // Element e = 4a + b of the adjoint's transform is element 4·p(a) + p(b) of the stored one.
    let swap03 = [3, 1, 2, 0]

    // Invariant: bands of tile rows by shape alone, covering every tile once; the transforms are
    // per channel (input) or per output channel (output), so threads never share an element.
    let rowsPerChunk = max(1, min(tilesY, 2048 / max(tilesX, 1)))
    let maxTiles = rowsPerChunk * tilesX
    // The input rows a chunk of tile rows reads, zero-padded so that every tile's 4×4 patch
    // lies inside (odd output sizes get one extra row or column, computed and discarded):
    // a band of 2·rows + 2 padded rows per channel, never a padded copy of the whole image.
    let pw = 2 * tilesX + 2, bandPlane = (2 * rowsPerChunk + 2) * pw
    let band = TensorStorage(uninitializedCount: ci * bandPlane)
    let v = TensorStorage(uninitializedCount: 16 * ci * maxTiles)
    let m = TensorStorage(uninitializedCount: 16 * co * maxTiles)
    let bp = band.pointer, vp = v.pointer, mp = m.pointer
    var tileRow0 = 0
    while tileRow0 < tilesY {
        let chunkRows = min(rowsPerChunk, tilesY - tileRow0)
        let tiles = chunkRows * tilesX
        // Input transform V = Bᵀ·d·B, Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]],
        // each channel's band filled just before (it stays in cache).
        parallelFor(ci, grain: 4) { c in
            let plane = bp + c * bandPlane, src = input + c * height * width
            fillWinogradBand(plane, rows: 2 * chunkRows + 2, rowWidth: pw, fromInputRow: 2 * tileRow0 - padH,
                             of: src, height: height, width: width, padW: padW)
            let stride = ci * tiles
            for row in 0..<chunkRows {
                let ty = row   // tile row within the band
                var tx = 0
                // Eight tiles at a time: their patches start every second column, so the four
                // patch columns of eight tiles are the even and odd lanes of two 16-wide loads.
                while tx + 8 <= tilesX {
                    @inline(__always) func patchRow(_ r: Int) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
                        let raw = UnsafeRawPointer(plane + (2 * ty + r) * pw + 2 * tx)
                        let a = raw.loadUnaligned(as: SIMD16<Float>.self)
                        let b = raw.loadUnaligned(fromByteOffset: 8, as: SIMD16<Float>.self)
                        return (a.evenHalf, a.oddHalf, b.evenHalf, b.oddHalf)
                    }
                    let d0 = patchRow(0), d1 = patchRow(1), d2 = patchRow(2), d3 = patchRow(3)
                    let t = row * tilesX + tx
                    @inline(__always) func store(_ r: Int, _ w: (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>)) {
                        let q = UnsafeMutableRawPointer(vp + r * 4 * stride + c * tiles + t)
                        q.storeBytes(of: w.0 - w.2, as: SIMD8<Float>.self)
                        q.storeBytes(of: w.1 + w.2, toByteOffset: stride * 4, as: SIMD8<Float>.self)
                        q.storeBytes(of: w.2 - w.1, toByteOffset: 2 * stride * 4, as: SIMD8<Float>.self)
                        q.storeBytes(of: w.1 - w.3, toByteOffset: 3 * stride * 4, as: SIMD8<Float>.self)
                    }
                    store(0, (d0.0 - d2.0, d0.1 - d2.1, d0.2 - d2.2, d0.3 - d2.3))
                    store(1, (d1.0 + d2.0, d1.1 + d2.1, d1.2 + d2.2, d1.3 + d2.3))
                    store(2, (d2.0 - d1.0, d2.1 - d1.1, d2.2 - d1.2, d2.3 - d1.3))
                    store(3, (d1.0 - d3.0, d1.1 - d3.1, d1.2 - d3.2, d1.3 - d3.3))
                    tx += 8
                }
                while tx < tilesX {
                    let t = row * tilesX + tx
                    let p = plane + 2 * ty * pw + 2 * tx
                    // Rows of Bᵀ·d combine the patch rows; then each row times B.
                    let raw = UnsafeRawPointer(p)
                    let d0 = raw.loadUnaligned(as: SIMD4<Float>.self)
                    let d1 = raw.loadUnaligned(fromByteOffset: pw * 4, as: SIMD4<Float>.self)
                    let d2 = raw.loadUnaligned(fromByteOffset: 2 * pw * 4, as: SIMD4<Float>.self)
                    let d3 = raw.loadUnaligned(fromByteOffset: 3 * pw * 4, as: SIMD4<Float>.self)
                    let base = c * tiles + t
                    @inline(__always) func store(_ r: Int, _ w: SIMD4<Float>) {
                        let q = vp + r * 4 * stride + base
                        q[0] = w[0] - w[2]
                        q[stride] = w[1] + w[2]
                        q[2 * stride] = w[2] - w[1]
                        q[3 * stride] = w[1] - w[3]
                    }
                    store(0, d0 - d2)
                    store(1, d1 + d2)
                    store(2, d2 - d1)
                    store(3, d1 - d3)
                    tx += 1
                }
            }
        }
        // The 16 products, each its own item of a batched GEMM (whole, or cut into rows when
        // there are more threads than products).
        sgemmBatch(count: 16, transA: adjoint, m: co, n: tiles, k: ci, lda: adjoint ? co : ci, ldb: tiles, ldc: tiles) { e in
            let source = adjoint ? 4 * swap03[e / 4] + swap03[e % 4] : e
            return (UnsafePointer(up + source * pairs), UnsafePointer(vp + e * ci * tiles), mp + e * co * tiles)
        }
        // Output transform Y = Aᵀ·M·A, Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]].
        parallelFor(co, grain: 4) { o in
            let out = output + o * outH * outW
            for t in 0..<tiles {
                let ty = tileRow0 + t / tilesX, tx = t % tilesX
                @inline(__always) func at(_ r: Int) -> SIMD4<Float> {
                    let base = o * tiles + t
                    return SIMD4<Float>(mp[(r * 4) * co * tiles + base], mp[(r * 4 + 1) * co * tiles + base],
                                        mp[(r * 4 + 2) * co * tiles + base], mp[(r * 4 + 3) * co * tiles + base])
                }
                let m0 = at(0), m1 = at(1), m2 = at(2), m3 = at(3)
                let q0 = m0 + m1 + m2, q1 = m1 - m2 - m3
                let y = (q0[0] + q0[1] + q0[2], q0[1] - q0[2] - q0[3], q1[0] + q1[1] + q1[2], q1[1] - q1[2] - q1[3])
                let oy = 2 * ty, ox = 2 * tx
                let lastRow = oy + 1 < outH, lastCol = ox + 1 < outW
                let row0 = out + oy * outW + ox
                if accumulate {
                    row0[0] += y.0
                    if lastCol { row0[1] += y.1 }
                    if lastRow { row0[outW] += y.2; if lastCol { row0[outW + 1] += y.3 } }
                } else {
                    row0[0] = y.0
                    if lastCol { row0[1] = y.1 }
                    if lastRow { row0[outW] = y.2; if lastCol { row0[outW + 1] = y.3 } }
                }
            }
        }
        tileRow0 += chunkRows
    }
}

/// Fills `rows` rows of a Winograd band (`rowWidth` floats each) with input rows `firstRow...`
/// of one channel's plane `src` (`height × width`), `padW` zeros to the left and zeros to the
/// right; rows outside the image (the padding above and below) are all zeros.
@inline(__always)
func fillWinogradBand(_ plane: UnsafeMutablePointer<Float>, rows: Int, rowWidth pw: Int, fromInputRow firstRow: Int,
                      of src: UnsafeMutablePointer<Float>, height: Int, width: Int, padW: Int) {
    for r in 0..<rows {
        let line = plane + r * pw, iy = firstRow + r
        guard iy >= 0 && iy < height else {
            line.initialize(repeating: 0, count: pw)
            continue
        }
        line.initialize(repeating: 0, count: padW)
        (line + padW).update(from: src + iy * width, count: width)
        (line + padW + width).initialize(repeating: 0, count: pw - padW - width)
    }
}
