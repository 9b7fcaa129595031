import ArgumentParser
import BlendPipeline
import BlendTensor

@main
struct Blend: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blend",
        abstract: "Text-driven local editing of natural photos (Blended Diffusion, Blended Latent Diffusion).",
        // The one version: the pipeline records it in report.json and the server reports it.
        version: EditPipeline.version,
        subcommands: [Edit.self, Serve.self, Models.self, Debug.self, Engine.self]
    )
}

/// `blend engine`: what the tensor engine will run on.
struct Engine: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the tensor engine's threads and BLAS settings.")

    func run() throws {
        print("engine threads: \(engineThreadCount)")
        print("BLAS threads:   \(blasThreadCount)")
        print("BLAS kernels:   \(blasCoreName)")
        print("oneDNN:         \(ComputeLibrary.oneDNNVersion), \(ComputeLibrary.oneDNNInstructionSet) (bf16: \(ComputeLibrary.supportsBF16 ? "yes" : "no, fp32 is used"))")
    }
}
