import ArgumentParser
import BlendPipeline
import BlendConcurrency
import BlendTensor
import Foundation

@main
struct Blend: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blend",
        abstract: "Text-driven local editing of natural photos (Blended Diffusion, Blended Latent Diffusion).",
        discussion: """
            Exit status: 0 done; 64 a usage error (an unknown option, a bad value, an option that \
            does not apply to the chosen method: nothing was read); 1 a failure at run time (a \
            missing or unreadable file, a missing model file, an output folder or data directory \
            in use, a port taken); 130 interrupted by Ctrl-C.
            """,
        // The one version: the pipeline records it in report.json and the server reports it.
        version: EditPipeline.version,
        subcommands: [Edit.self, Serve.self, Models.self, Debug.self, Engine.self]
    )
}

/// `blend engine`: what the tensor engine will run on.
/// A product at odd shapes on the kernels in use against float64: that they compute right here.
func blasSelfCheck() throws -> String {
    var rng = SplitMix64(seed: 1)
    let (m, k, n) = (97, 89, 83)
    let a = try Tensor.randomNormal([m, k], using: &rng), b = try Tensor.randomNormal([k, n], using: &rng)
    let product = try a.matmul(b).scalars
    let av = a.scalars, bv = b.scalars
    var worst = 0.0
    for i in 0..<m {
        for j in 0..<n {
            var exact = 0.0
            for p in 0..<k { exact += Double(av[i * k + p]) * Double(bv[p * n + j]) }
            worst = max(worst, abs(Double(product[i * n + j]) - exact))
        }
    }
    guard worst < 1e-3 else {
        throw ValidationError("the BLAS kernels (\(blasCoreName)) compute a \(m)x\(k)x\(n) product off by \(worst) from float64:"
            + " set OPENBLAS_CORETYPE to another family (e.g. Haswell) and report this CPU")
    }
    return String(format: "a %dx%dx%d product matches float64 (largest difference %.1e)", m, k, n, worst)
}

struct Engine: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the tensor engine's threads and BLAS settings.",
        discussion: """
            The engine's threads: --threads of edit and serve, else $BLEND_NUM_THREADS, else the CPUs \
            this process may use (its CPU affinity and a cgroup CPU quota). OpenBLAS itself runs one \
            thread per call on purpose (the engine splits large products across its own threads; \
            OPENBLAS_NUM_THREADS is not used). Its kernels: OpenBLAS picks them by CPU model; where \
            it does not know the model and falls back to kernels below the CPU's instruction set \
            (e.g. Prescott on an AVX-512 Xeon), blend switches to the family made for that \
            instruction set. OPENBLAS_CORETYPE forces a family; BLEND_BLAS_KERNELS=openblas keeps \
            OpenBLAS's choice, BLEND_BLAS_KERNELS=<family> picks one. Results are the same on every \
            family; only the speed differs.
            """)

    func validate() throws { try ThreadOptions.validate(threads: nil) }

    func run() throws {
        print("engine threads: \(EngineThreads.processCount) (\(EngineThreads.source); CPUs online \(AvailableCPUs.onlineCount()),"
              + " in this process's affinity \(AvailableCPUs.affinityCount().map(String.init) ?? "unknown"),"
              + " cgroup CPU quota \(AvailableCPUs.cgroupQuota().map(String.init) ?? "none"))")
        print("BLAS threads:   \(blasThreadCount)")
        let kernels = BLASKernels.current
        print("CPU:            \(CPUFeatures.current.summary)")
        print("BLAS kernels:   \(blasCoreName): \(kernels.reason) (\(blasConfiguration))")
        if kernels.isBelowCPU {
            print("warning: these kernels use less of the CPU than it has (\(BLASKernels.tier(of: CPUFeatures.current))):"
                  + " GEMMs run several times slower; unset OPENBLAS_CORETYPE and BLEND_BLAS_KERNELS to let blend choose")
        }
        print("BLAS check:     \(try blasSelfCheck())")
        print("C kernels:      \(ElementwiseKernels.level) (BLEND_KERNELS=baseline|avx2 caps them)")
        print("oneDNN:         \(ComputeLibrary.oneDNNVersion), \(ComputeLibrary.oneDNNInstructionSet) (bf16: \(ComputeLibrary.supportsBF16 ? "yes" : "no, fp32 is used"))")
    }
}
