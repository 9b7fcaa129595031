import CDNNL
import BlendConcurrency

/// One convolution shape on oneDNN: the forward primitive (fp32, or bf16 activations and
/// weights with fp32 bias and output) and, made on first use, the input-gradient
/// ("backward data") primitive. The engine's tensors are NCHW fp32; oneDNN picks its own
/// (blocked, possibly bf16) layouts, so inputs are reordered into them on each call and
/// outputs back. The weights are reordered once per layer and kept with them (as the
/// engine keeps its Winograd transforms).
final class OneDNNConvolution: @unchecked Sendable {
    struct Shape: Hashable, CustomStringConvertible {
        let batch: Int, inChannels: Int, height: Int, width: Int
        let outChannels: Int, kernelH: Int, kernelW: Int
        let strideH: Int, strideW: Int, padH: Int, padW: Int
        let bf16: Bool, bias: Bool
        /// The OpenMP threads the primitive is made for and runs on (``EngineThreads/count``
        /// when it was asked for): oneDNN sizes its work split to them at creation.
        let threads: Int

        init(batch: Int, inChannels: Int, height: Int, width: Int, outChannels: Int, kernelH: Int, kernelW: Int,
             strideH: Int, strideW: Int, padH: Int, padW: Int, bf16: Bool, bias: Bool, threads: Int = EngineThreads.count) {
            self.batch = batch; self.inChannels = inChannels; self.height = height; self.width = width
            self.outChannels = outChannels; self.kernelH = kernelH; self.kernelW = kernelW
            self.strideH = strideH; self.strideW = strideW; self.padH = padH; self.padW = padW
            self.bf16 = bf16; self.bias = bias; self.threads = threads
        }

        /// One image of `geo`: the engine runs a batch image by image, so that a sample's result
        /// never depends on the batch it is in (oneDNN's blocking, and so its summation order,
        /// would change with the batch size).
        init(_ geo: ConvGeometry, bf16: Bool, bias: Bool) {
            self.init(batch: 1, inChannels: geo.inChannels, height: geo.height, width: geo.width,
                      outChannels: geo.outChannels, kernelH: geo.kernelH, kernelW: geo.kernelW,
                      strideH: geo.strideH, strideW: geo.strideW, padH: geo.padH, padW: geo.padW, bf16: bf16, bias: bias)
        }

        var outH: Int { (height + 2 * padH - kernelH) / strideH + 1 }
        var outW: Int { (width + 2 * padW - kernelW) / strideW + 1 }
        var padBottom: Int { (outH - 1) * strideH + kernelH - height - padH }
        var padRight: Int { (outW - 1) * strideW + kernelW - width - padW }
        /// oneDNN's dimensions of the input `[N, C, H, W]`, output `[N, O, outH, outW]` and
        /// weights `[O, C, kH, kW]`; its strides and its top-left and bottom-right padding.
        var inputDims: [Int] { [batch, inChannels, height, width] }
        var outputDims: [Int] { [batch, outChannels, outH, outW] }
        var weightDims: [Int] { [outChannels, inChannels, kernelH, kernelW] }
        var strides: [Int64] { [Int64(strideH), Int64(strideW)] }
        var paddingTopLeft: [Int64] { [Int64(padH), Int64(padW)] }
        var paddingBottomRight: [Int64] { [Int64(padBottom), Int64(padRight)] }
        /// The data type of the activations and weights a primitive reads (bias and output stay fp32).
        var dataType: dnnl_data_type_t { bf16 ? dnnl_bf16 : dnnl_f32 }

        var description: String {
            "\(batch)x\(inChannels)x\(height)x\(width)->\(outChannels) k\(kernelH)x\(kernelW) s\(strideH)x\(strideW) p\(padH)x\(padW) "
                + (bf16 ? "bf16" : "f32") + " t\(threads)"
        }
    }

    /// The primitive and layouts of one direction.
    private struct Direction {
        let pd: dnnl_primitive_desc_t
        let primitive: dnnl_primitive_t
        /// The primitive's layouts of its input, weights and output, and its scratchpad.
        let input: dnnl_memory_desc_t, weights: dnnl_memory_desc_t, output: dnnl_memory_desc_t
        let scratchpad: dnnl_memory_desc_t
        /// Reorders from the engine's NCHW fp32 input and OIHW weights, and to its NCHW fp32
        /// output; nil where the primitive reads or writes that layout itself.
        let inputReorder: OneDNNReorder?, weightsReorder: OneDNNReorder?, outputReorder: OneDNNReorder?

        func destroy() {
            dnnl_primitive_destroy(primitive)
            dnnl_primitive_desc_destroy(pd)
        }
    }

    let shape: Shape
    private let forwardDirection: Direction
    private let backward = PThreadMutex<Direction??>(nil)
    private let userInput: dnnl_memory_desc_t, userOutput: dnnl_memory_desc_t, userWeights: dnnl_memory_desc_t
    private let userBias: dnnl_memory_desc_t

    private init(shape: Shape, forward: Direction, userInput: dnnl_memory_desc_t, userOutput: dnnl_memory_desc_t,
                 userWeights: dnnl_memory_desc_t, userBias: dnnl_memory_desc_t) {
        self.shape = shape
        self.forwardDirection = forward
        self.userInput = userInput
        self.userOutput = userOutput
        self.userWeights = userWeights
        self.userBias = userBias
    }

    deinit {
        forwardDirection.destroy()
        if case let .some(.some(direction)) = backward.withLock({ $0 }) { direction.destroy() }
    }

    // MARK: - Cache

    /// Primitives by shape; a nil entry marks a shape oneDNN has no fast kernel for.
    private static let cache = PThreadMutex<[Shape: OneDNNConvolution?]>([:])

    /// The convolution for `shape`, made on first use; nil when oneDNN has no optimised
    /// (non-reference) kernel for it, when the engine then runs it.
    static func cached(_ shape: Shape) -> OneDNNConvolution? {
        cache.withLock { cache in
            if let entry = cache[shape] { return entry }
            let made = make(shape)
            cache[shape] = .some(made)
            return made
        }
    }

    /// Creates the forward primitive of `shape` (uncached).
    static func make(_ shape: Shape) -> OneDNNConvolution? {
        guard let context = OneDNN.context, shape.padBottom >= 0, shape.padRight >= 0 else { return nil }
        guard let userInput = OneDNN.descriptor(shape.inputDims, dnnl_f32, dnnl_nchw),
              let userOutput = OneDNN.descriptor(shape.outputDims, dnnl_f32, dnnl_nchw),
              let userWeights = OneDNN.descriptor(shape.weightDims, dnnl_f32, dnnl_oihw),
              let userBias = OneDNN.descriptor([shape.outChannels], dnnl_f32, dnnl_a),
              var src = OneDNN.descriptor(shape.inputDims, shape.dataType, dnnl_format_tag_any),
              var weights = OneDNN.descriptor(shape.weightDims, shape.dataType, dnnl_format_tag_any),
              var dst = OneDNN.descriptor(shape.outputDims, dnnl_f32, dnnl_format_tag_any) else { return nil }
        var bias = userBias
        var strides = shape.strides, padL = shape.paddingTopLeft, padR = shape.paddingBottomRight
        var desc = dnnl_convolution_desc_t()
        let status = shape.bias
            ? dnnl_convolution_forward_desc_init(&desc, dnnl_forward_training, dnnl_convolution_direct, &src, &weights, &bias,
                                                 &dst, &strides, &padL, &padR)
            : dnnl_convolution_forward_desc_init(&desc, dnnl_forward_training, dnnl_convolution_direct, &src, &weights, nil,
                                                 &dst, &strides, &padL, &padR)
        guard status == dnnl_success,
              let pd = primitiveDescriptor(&desc, engine: context.engine, hint: nil, threads: shape.threads) else { return nil }
        guard let direction = direction(pd, input: (dnnl_query_src_md, userInput), weights: (dnnl_query_weights_md, userWeights),
                                        output: (dnnl_query_dst_md, userOutput)) else {
            dnnl_primitive_desc_destroy(pd)
            return nil
        }
        return OneDNNConvolution(shape: shape, forward: direction, userInput: userInput, userOutput: userOutput,
                                 userWeights: userWeights, userBias: userBias)
    }

    /// A primitive descriptor for `desc` with engine-owned scratchpads, or nil when oneDNN has
    /// only its reference implementation (far slower than the engine's own path).
    private static func primitiveDescriptor(_ desc: inout dnnl_convolution_desc_t, engine: dnnl_engine_t,
                                            hint: dnnl_primitive_desc_t?, threads: Int) -> dnnl_primitive_desc_t? {
        OneDNN.useThreads(threads)
        var attr: dnnl_primitive_attr_t?
        guard dnnl_primitive_attr_create(&attr) == dnnl_success, let attr else { return nil }
        defer { dnnl_primitive_attr_destroy(attr) }
        guard dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success else { return nil }
        var pd: dnnl_primitive_desc_t?
        guard dnnl_primitive_desc_create(&pd, &desc, attr, engine, hint) == dnnl_success, let pd else { return nil }
        var name: UnsafePointer<CChar>?
        if dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) == dnnl_success, let name,
           String(cString: name).hasPrefix("ref") {
            dnnl_primitive_desc_destroy(pd)
            return nil
        }
        return pd
    }

    private static func direction(_ pd: dnnl_primitive_desc_t, input: (dnnl_query_t, dnnl_memory_desc_t),
                                  weights: (dnnl_query_t, dnnl_memory_desc_t),
                                  output: (dnnl_query_t, dnnl_memory_desc_t)) -> Direction? {
        guard let primitive = OneDNN.primitive(pd) else { return nil }
        let inMD = OneDNN.query(pd, input.0), weightsMD = OneDNN.query(pd, weights.0), outMD = OneDNN.query(pd, output.0)
        func reorder(_ from: dnnl_memory_desc_t, _ to: dnnl_memory_desc_t) -> OneDNNReorder?? {
            OneDNN.equal(from, to) ? .some(nil) : OneDNNReorder(from: from, to: to).map { .some($0) }
        }
        guard let inputReorder = reorder(input.1, inMD), let weightsReorder = reorder(weights.1, weightsMD),
              let outputReorder = reorder(outMD, output.1) else {
            dnnl_primitive_destroy(primitive)
            return nil
        }
        return Direction(pd: pd, primitive: primitive, input: inMD, weights: weightsMD, output: outMD,
                         scratchpad: OneDNN.query(pd, dnnl_query_scratchpad_md),
                         inputReorder: inputReorder, weightsReorder: weightsReorder, outputReorder: outputReorder)
    }

    /// The input-gradient primitive, made on first use; nil when oneDNN has no fast kernel.
    private var backwardDirection: Direction? {
        backward.withLock { state in
            if let made = state { return made }
            state = .some(makeBackward())
            return state!
        }
    }

    private func makeBackward() -> Direction? {
        guard let context = OneDNN.context else { return nil }
        guard var diffSrc = OneDNN.descriptor(shape.inputDims, dnnl_f32, dnnl_format_tag_any),
              var weights = OneDNN.descriptor(shape.weightDims, shape.dataType, dnnl_format_tag_any),
              var diffDst = OneDNN.descriptor(shape.outputDims, shape.dataType, dnnl_format_tag_any) else { return nil }
        var strides = shape.strides, padL = shape.paddingTopLeft, padR = shape.paddingBottomRight
        var desc = dnnl_convolution_desc_t()
        guard dnnl_convolution_backward_data_desc_init(&desc, dnnl_convolution_direct, &diffSrc, &weights, &diffDst,
                                                       &strides, &padL, &padR) == dnnl_success,
              let pd = Self.primitiveDescriptor(&desc, engine: context.engine, hint: forwardDirection.pd,
                                                threads: shape.threads) else { return nil }
        guard let direction = Self.direction(pd, input: (dnnl_query_diff_dst_md, userOutput),
                                             weights: (dnnl_query_weights_md, userWeights),
                                             output: (dnnl_query_diff_src_md, userInput)) else {
            dnnl_primitive_desc_destroy(pd)
            return nil
        }
        return direction
    }

    // MARK: - Execution

    /// y = conv(x, weight) + bias for the whole batch: `x` `[N, C, H, W]`, `y` `[N, O, outH, outW]`,
    /// both NCHW fp32.
    func forward(_ x: UnsafeMutablePointer<Float>, weight: Tensor, bias: Tensor?, into y: UnsafeMutablePointer<Float>) {
        var extra: [(Int32, dnnl_memory_desc_t, UnsafeMutableRawPointer)] = []
        if shape.bias, let bias { extra.append((Int32(CDNNL_ARG_BIAS), userBias, UnsafeMutableRawPointer(bias.pointer))) }
        run(forwardDirection, key: "oneDNN forward \(shape)", input: x, inputArg: Int32(CDNNL_ARG_SRC),
            weight: weight, output: y, outputArg: Int32(CDNNL_ARG_DST), extra: extra)
    }

    /// gx = the input gradient for `g` (`[N, O, outH, outW]`) into `gx` (`[N, C, H, W]`); false
    /// when oneDNN has no fast kernel for this direction (the caller then uses the engine's).
    func inputGradient(_ g: UnsafeMutablePointer<Float>, weight: Tensor, into gx: UnsafeMutablePointer<Float>) -> Bool {
        guard let direction = backwardDirection else { return false }
        run(direction, key: "oneDNN backward data \(shape)", input: g, inputArg: Int32(CDNNL_ARG_DIFF_DST),
            weight: weight, output: gx, outputArg: Int32(CDNNL_ARG_DIFF_SRC), extra: [])
        return true
    }

    private func run(_ d: Direction, key: String, input: UnsafeMutablePointer<Float>, inputArg: Int32, weight: Tensor,
                     output: UnsafeMutablePointer<Float>, outputArg: Int32,
                     extra: [(Int32, dnnl_memory_desc_t, UnsafeMutableRawPointer)]) {
        func floats(_ md: dnnl_memory_desc_t) -> Int { (OneDNN.bytes(md) + 3) / 4 }
        // The weights in the primitive's layout, made once and kept with them.
        let weights: TensorStorage? = d.weightsReorder.map { reorder in
            weight.storage.derived(.oneDNN(key), count: floats(d.weights)) { reorder.run(weight.pointer, $0) }
        }
        let inputBuffer = d.inputReorder.map { TensorStorage(uninitializedCount: floats($0.to)) }
        if let reorder = d.inputReorder, let inputBuffer { reorder.run(input, inputBuffer.pointer) }
        let outputBuffer = d.outputReorder.map { TensorStorage(uninitializedCount: floats($0.from)) }
        let scratchBytes = OneDNN.bytes(d.scratchpad)
        let scratch = scratchBytes > 0 ? TensorStorage(uninitializedCount: (scratchBytes + 3) / 4) : nil
        var args = extra
        args.append((inputArg, d.input, UnsafeMutableRawPointer(inputBuffer?.pointer ?? input)))
        args.append((Int32(CDNNL_ARG_WEIGHTS), d.weights, UnsafeMutableRawPointer(weights?.pointer ?? weight.pointer)))
        args.append((outputArg, d.output, UnsafeMutableRawPointer(outputBuffer?.pointer ?? output)))
        if let scratch { args.append((Int32(CDNNL_ARG_SCRATCHPAD), d.scratchpad, UnsafeMutableRawPointer(scratch.pointer))) }
        OneDNN.execute(d.primitive, args, threads: shape.threads)
        if let reorder = d.outputReorder, let outputBuffer { reorder.run(outputBuffer.pointer, output) }
        withExtendedLifetime((weights, inputBuffer, outputBuffer, scratch)) {}
    }
}

/// The oneDNN convolution to run `geo` on, or nil for the engine's own path: bf16 always
/// (when the CPU has it: `precision` is already ``ComputePrecision/effective``), fp32 when
/// ``ConvolutionBackend/current`` forces oneDNN, or, with ``ConvolutionBackend/automatic``,
/// where oneDNN measured faster (``ConvGeometry/oneDNNIsFasterInFP32``).
func convolutionOnOneDNN(_ geo: ConvGeometry, precision: ComputePrecision, hasBias: Bool) -> OneDNNConvolution? {
    switch precision {
    case .bf16:
        return OneDNNConvolution.cached(.init(geo, bf16: true, bias: hasBias))
    case .bf16Rounded:
        return nil
    case .fp32:
        switch ConvolutionBackend.current {
        case .engine: return nil
        case .oneDNN: return OneDNNConvolution.cached(.init(geo, bf16: false, bias: hasBias))
        case .automatic:
            return geo.oneDNNIsFasterInFP32 ? OneDNNConvolution.cached(.init(geo, bf16: false, bias: hasBias)) : nil
        }
    }
}

extension ConvGeometry {
    /// Where oneDNN's fp32 kernels beat the engine's (forward and input gradient together),
    /// measured with `blend-bench --convs --conv-backend engine|onednn` (BENCHMARKS.md, "oneDNN
    /// fp32"): 3×3 stride-2 convolutions were 1.3-1.6× faster on the Zen 3 machine. They were
    /// kept off oneDNN because the latent editor's samples then changed with the batch size;
    /// the cause was the engine's own GEMM split around them (GEMMSplit), and since it was
    /// fixed both methods are bit for bit batch- and thread-independent on oneDNN's
    /// convolutions too (DeterminismTests). Until the per-CPU choice of kernels is measured,
    /// every fp32 convolution stays on the engine. (Small images with many channels and 1×1
    /// convolutions lost or tied on oneDNN.)
    var oneDNNIsFasterInFP32: Bool { false }
}
