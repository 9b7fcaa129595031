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
struct Engine: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the tensor engine's threads and BLAS settings.",
        discussion: """
            The engine's threads: --threads of edit and serve, else $BLEND_NUM_THREADS, else the CPUs \
            this process may use (its CPU affinity and a cgroup CPU quota). OpenBLAS itself runs one \
            thread per call on purpose (the engine splits large products across its own threads; \
            OPENBLAS_NUM_THREADS is not used); its kernels are chosen for the CPU model, and \
            OPENBLAS_CORETYPE forces others.
            """)

    func validate() throws { try ThreadOptions.validate(threads: nil) }

    func run() throws {
        print("engine threads: \(EngineThreads.processCount) (\(EngineThreads.source); CPUs online \(AvailableCPUs.onlineCount()),"
              + " in this process's affinity \(AvailableCPUs.affinityCount().map(String.init) ?? "unknown"),"
              + " cgroup CPU quota \(AvailableCPUs.cgroupQuota().map(String.init) ?? "none"))")
        print("BLAS threads:   \(blasThreadCount)")
        print("BLAS kernels:   \(blasCoreName) (\(blasConfiguration))")
        print("oneDNN:         \(ComputeLibrary.oneDNNVersion), \(ComputeLibrary.oneDNNInstructionSet) (bf16: \(ComputeLibrary.supportsBF16 ? "yes" : "no, fp32 is used"))")
    }
}
