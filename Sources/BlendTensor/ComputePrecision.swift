/// The arithmetic precision of the engine's convolutions (the GEMM-heavy part of a
/// diffusion UNet), chosen per task: `ComputePrecision.$current.withValue(.bf16) { ... }`.
///
/// Everything else (normalisation, attention's softmax, elementwise ops, CLIP's linear
/// layers) stays fp32 whatever is chosen, and results are always fp32 tensors. The choice
/// in force when a convolution runs forward also applies to its input gradient.
public enum ComputePrecision: String, Sendable, CaseIterable, Codable {
    /// fp32 operands and accumulation: the default and the reference for parity.
    case fp32
    /// bfloat16 activations and weights, products accumulated in fp32 (bf16 in, fp32 out),
    /// through oneDNN's AVX512_BF16 / AMX kernels. Weights are converted once per layer and
    /// kept. On a CPU without those instructions ``effective`` is ``fp32`` (see
    /// ``bf16Unavailable``).
    case bf16
    /// The numerics of ``bf16`` on any CPU: operands rounded to bfloat16 (round to nearest
    /// even), then the fp32 kernels. As slow as fp32: for measuring bf16's accuracy, not speed.
    case bf16Rounded = "bf16-rounded"

    /// The precision convolutions use in this task (default ``fp32``).
    @TaskLocal public static var current: ComputePrecision = .fp32

    /// What this precision runs as on this CPU: ``bf16`` falls back to ``fp32`` where oneDNN
    /// has no bf16 kernels.
    public var effective: ComputePrecision {
        self == .bf16 && !OneDNN.supportsBF16 ? .fp32 : self
    }

    /// One line for the user when ``bf16`` cannot run here (and fp32 is used instead); nil
    /// when it can.
    public static var bf16Unavailable: String? {
        OneDNN.supportsBF16 ? nil
            : "bf16 needs a CPU with AVX512_BF16 or AMX (oneDNN finds \(OneDNN.cpuISAName) here): computing in fp32"
    }
}

/// Which implementation runs a convolution: the engine's own (im2col, Winograd and shifted
/// GEMMs over OpenBLAS) or oneDNN's. ``automatic`` picks per shape and precision what measured
/// fastest on this project's benchmark machine (BENCHMARKS.md); the others force one, for
/// parity tests and micro-benchmarks. bf16 always runs on oneDNN (forcing ``engine`` with
/// ``ComputePrecision/bf16`` computes in fp32).
public enum ConvolutionBackend: String, Sendable, CaseIterable {
    case automatic
    case engine
    case oneDNN = "onednn"

    /// The backend convolutions use in this task (default ``automatic``).
    @TaskLocal public static var current: ConvolutionBackend = .automatic
}

/// What the engine knows of oneDNN on this machine.
public enum ComputeLibrary {
    /// oneDNN's version, e.g. "2.6.3".
    public static var oneDNNVersion: String { OneDNN.versionString }
    /// The instruction set oneDNN uses here, e.g. "avx2", "avx512_core_bf16".
    public static var oneDNNInstructionSet: String { OneDNN.cpuISAName }
    /// Whether bf16 convolutions run on bf16 instructions here.
    public static var supportsBF16: Bool { OneDNN.supportsBF16 }
}
