import ArgumentParser
import BlendCheckpoint
import BlendModels
import BlendPipeline
import BlendTensor
import Foundation

/// `blend debug`: run one model on tensors from a safetensors file, for parity checks
/// and for anyone porting a checkpoint.
struct Debug: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a single model on tensors from a safetensors file and write its outputs (and input gradients).",
        discussion: """
            Inputs and outputs are safetensors files of float32 tensors. With --gradient, the gradient of \
            sum(output * seed) with respect to the input is written as "grad_<input>"; the seed is the tensor \
            named by --gradient-seed in the input file, or all ones (the gradient of the plain sum).
            """,
        subcommands: [UNet.self, ClipImage.self, ClipText.self, LPIPS.self, Tokenize.self]
    )
}

/// A failure already worded for the user.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Tells the user, on stderr, which weights of a training checkpoint were used.
func printNote(_ text: String) {
    FileHandle.standardError.write(Data("note: \(terminalSafe(text))\n".utf8))
}

/// The input/output options every debug subcommand shares.
struct DebugIO: ParsableArguments {
    @Option(help: ArgumentHelp("Safetensors file with the input tensors.", valueName: "file"))
    var input: String

    @Option(help: ArgumentHelp("Where to write the outputs (safetensors).", valueName: "file"))
    var out: String

    @Flag(help: "Also write the gradient of the (seeded) output sum with respect to the input.")
    var gradient = false

    @Option(help: ArgumentHelp("Tensor in the input file that weights the output before summing, for --gradient.", valueName: "name"))
    var gradientSeed: String?

    func readInputs() throws -> Checkpoint { try CheckpointFile.load(path: input) }

    func tensor(_ checkpoint: Checkpoint, _ name: String) throws -> Tensor {
        try checkpoint.tensor(named: name, convertingIntegers: true)
    }

    /// Writes `outputs`, plus `grad_<name>` for each input when --gradient is set.
    func write(outputs: [String: Tensor], output: Tensor, inputs: [(String, Tensor)], seedFrom checkpoint: Checkpoint) throws {
        var all = outputs
        if gradient {
            let seed = try gradientSeed.map { try tensor(checkpoint, $0) } ?? Tensor.ones(output.shape)
            guard seed.shape == output.shape else {
                throw ValidationError("--gradient-seed '\(gradientSeed ?? "")' has shape \(seed.shape) but the output has \(output.shape)")
            }
            let grads = try gradients(of: output, withRespectTo: inputs.map(\.1), seed: seed)
            for ((name, _), g) in zip(inputs, grads) { all["grad_\(name)"] = g }
        }
        try SafetensorsWriter.write(try all.sorted { $0.key < $1.key }.map { try SafetensorsTensor(name: $0.key, tensor: $0.value) },
                                    to: URL(fileURLWithPath: out))
        print("wrote \(all.keys.sorted().joined(separator: ", ")) to \(out)")
    }
}

extension Debug {
    struct UNet: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "unet", abstract: "guided-diffusion UNet: input tensor \"x\" [N, 3, H, W] → \"output\".")

        @Option(help: ArgumentHelp("The UNet checkpoint (e.g. 256x256_diffusion_uncond.pt).", valueName: "file"))
        var model: String

        @Option(help: ArgumentHelp("JSON config (guided-diffusion flag names) when the file is not an official one.", valueName: "file"))
        var config: String?

        @Option(parsing: .upToNextOption, help: ArgumentHelp("One timestep per image, as the model sees them.", valueName: "t"))
        var timesteps: [Float]

        @Option(parsing: .upToNextOption, help: ArgumentHelp("Class labels, for class-conditional models.", valueName: "y"))
        var classes: [Int] = []

        @OptionGroup var io: DebugIO

        func run() throws {
            let unetConfig = try config.map { try ConfigFile.unet(path: $0) }
            let unet: UNetModel
            do { unet = try ModelLoader.unet(path: model, config: unetConfig, note: printNote) } catch let error as ModelLoadingError {
                throw CommandFailure(error.description(configOption: "--config"))
            }
            let inputs = try io.readInputs()
            let x = try io.tensor(inputs, "x")
            let leaf = io.gradient ? x.requiringGradient() : x
            let y = try unet(leaf, timesteps: timesteps, classes: classes.isEmpty ? nil : classes)
            try io.write(outputs: ["output": y], output: y, inputs: [("x", leaf)], seedFrom: inputs)
        }
    }

    struct ClipImage: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "clip-image",
            abstract: "CLIP image encoder: \"images\" [N, 3, R, R] in [0, 1] (normalised here unless --normalized) → \"embedding\".")

        @Option(help: ArgumentHelp("The CLIP checkpoint (e.g. ViT-B-16.pt).", valueName: "file"))
        var model: String

        @Flag(help: "The images are already normalised with CLIP's mean and std.")
        var normalized = false

        @OptionGroup var io: DebugIO

        func run() throws {
            let clip = try ModelLoader.clip(path: model, note: printNote)
            let inputs = try io.readInputs()
            let images = try io.tensor(inputs, "images")
            let leaf = io.gradient ? images.requiringGradient() : images
            let e = try clip.image(normalized ? leaf : ClipImageEncoder.normalize(leaf))
            try io.write(outputs: ["embedding": e], output: e, inputs: [("images", leaf)], seedFrom: inputs)
        }
    }

    struct LPIPS: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "lpips", abstract: "LPIPS-VGG distance between \"in0\" and \"in1\" [N, 3, H, W] in [-1, 1] → \"distance\" [N].")

        @Option(help: ArgumentHelp("torchvision's VGG16 weights (vgg16-397923af.pth).", valueName: "file"))
        var vgg: String

        @Option(help: ArgumentHelp("The LPIPS v0.1 linear layers (vgg.pth).", valueName: "file"))
        var lin: String

        @OptionGroup var io: DebugIO

        func run() throws {
            let lpips = try ModelLoader.lpips(vggPath: vgg, linearPath: lin, note: printNote)
            let inputs = try io.readInputs()
            let a = try io.tensor(inputs, "in0"), b = try io.tensor(inputs, "in1")
            let (la, lb) = io.gradient ? (a.requiringGradient(), b.requiringGradient()) : (a, b)
            let d = try lpips(la, lb)
            try io.write(outputs: ["distance": d], output: d, inputs: [("in0", la), ("in1", lb)], seedFrom: inputs)
        }
    }
}

/// The CLIP vocabulary option shared by the text commands.
struct VocabularyOption: ParsableArguments {
    @Option(help: ArgumentHelp("CLIP's BPE vocabulary, bpe_simple_vocab_16e6.txt.gz (default: in the model cache).", valueName: "file"))
    var vocab: String?

    func tokenizer() throws -> ClipTokenizer {
        try ClipTokenizer(vocabularyFile: vocab ?? ModelFiles.standard().clipVocabulary)
    }
}

extension Debug {
    struct ClipText: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "clip-text", abstract: "CLIP text encoder: prompts → \"embedding\" [N, D] and their \"tokens\".")

        @Option(help: ArgumentHelp("The CLIP checkpoint (e.g. ViT-B-16.pt).", valueName: "file"))
        var model: String

        @OptionGroup var vocabulary: VocabularyOption

        @Option(name: .customLong("prompt"), help: ArgumentHelp("A prompt; repeat for several.", valueName: "text"))
        var prompts: [String]

        @Flag(help: "Cut prompts longer than the context instead of failing.")
        var truncate = false

        @Option(help: ArgumentHelp("Where to write the outputs (safetensors).", valueName: "file"))
        var out: String

        func validate() throws {
            if prompts.isEmpty { throw ValidationError("give at least one --prompt") }
        }

        func run() throws {
            let tokenizer = try vocabulary.tokenizer()
            let clip = try ModelLoader.clip(path: model, note: printNote)
            let tokens = try prompts.map { try tokenizer.tokenize($0, contextLength: clip.config.contextLength, truncate: truncate) }
            let e = try clip.text(tokens)
            try SafetensorsWriter.write([
                try SafetensorsTensor(name: "embedding", tensor: e),
                try SafetensorsTensor(name: "tokens", integers: tokens.flatMap { $0.map(Int64.init) }, shape: [tokens.count, tokens[0].count]),
            ], to: URL(fileURLWithPath: out))
            print("wrote embedding \(e.shape) and tokens to \(out)")
        }
    }

    struct Tokenize: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print CLIP token ids of a prompt, as clip.tokenize returns them (77 ids, zero-padded).")

        @OptionGroup var vocabulary: VocabularyOption

        @Argument(help: "The prompt.")
        var prompt: String

        @Flag(help: "Cut a prompt longer than the context instead of failing.")
        var truncate = false

        @Flag(help: "Print only the tokens between the start and end markers, without padding.")
        var bare = false

        func run() throws {
            let tokenizer = try vocabulary.tokenizer()
            let ids = bare ? tokenizer.encode(prompt) : try tokenizer.tokenize(prompt, truncate: truncate)
            print(ids.map(String.init).joined(separator: " "))
        }
    }
}
