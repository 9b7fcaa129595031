import BlendCheckpoint
import BlendModels
import BlendTensor
import Foundation

/// Errors finding or recognising model files, each saying which file is expected and
/// how to get it.
public enum ModelLoadingError: Error, Equatable, CustomStringConvertible {
    case missingFile(path: String, expected: String, download: String?)
    case notRecognised(path: String, expected: String, found: String, download: String)
    case ambiguousConfig(path: String, message: String)

    public var description: String {
        switch self {
        case let .missingFile(path, expected, download):
            var text = "model file not found: \(path)\n  expected: \(expected)"
            if let download { text += "\n  get it with: blend models download \(download)" }
            return text
        case let .notRecognised(path, expected, found, download):
            return "\(path) is not \(expected) (it looks like: \(found)); pass the right file, or get the official one with: blend models download \(download)"
        case .ambiguousConfig:
            return description(configOption: "--diffusion-config")
        }
    }

    /// The description, naming the front end's option for a JSON config
    /// (`blend edit --diffusion-config`, `blend debug unet --config`).
    public func description(configOption: String) -> String {
        guard case let .ambiguousConfig(path, message) = self else { return description }
        return "cannot tell the configuration of \(path): \(message); pass \(configOption) with a JSON config "
            + "(guided-diffusion's flag names: image_size, num_channels, num_res_blocks, ...)"
    }
}

/// The model files blend reads, with what to tell a user who lacks one.
public enum ModelRole: Sendable {
    case diffusion, clip, vgg16, lpipsLinear, stableDiffusion

    var expected: String {
        switch self {
        case .diffusion: return "a guided-diffusion UNet checkpoint such as 256x256_diffusion_uncond.pt"
        case .clip: return "an OpenAI CLIP ViT checkpoint such as ViT-B-16.pt"
        case .vgg16: return "torchvision's VGG16 weights (vgg16-397923af.pth)"
        case .lpipsLinear: return "the LPIPS v0.1 VGG linear layers (vgg.pth)"
        case .stableDiffusion:
            return "a Stable Diffusion 1.x/2.x checkpoint (.safetensors or .ckpt) or diffusers folder, such as v1-5-pruned-emaonly.safetensors"
        }
    }

    /// The `blend models download` name of the official file.
    var download: String {
        switch self {
        case .diffusion: return "256x256_diffusion_uncond"
        case .clip: return "ViT-B-16"
        case .vgg16: return "vgg16"
        case .lpipsLinear: return "lpips-vgg"
        case .stableDiffusion: return "stable-diffusion-v1-5"
        }
    }
}

/// Builds the networks from the files users already have, unchanged.
public enum ModelLoader {
    /// Throws the clear "not found; get it with ..." error when `path` does not exist.
    public static func requireFile(_ path: String, role: ModelRole) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ModelLoadingError.missingFile(path: path, expected: role.expected, download: role.download)
        }
    }

    /// The model's weights in `path`, unwrapped from a training checkpoint when they are in
    /// one (see `Checkpoint.modelWeights()`); `note` is told where they were found.
    static func open(_ path: String, role: ModelRole, note: (String) -> Void) throws -> Checkpoint {
        try requireFile(path, role: role)
        let checkpoint = try CheckpointFile.load(path: path).modelWeights()
        if let selection = checkpoint.selection { note("\(path): using \(selection)") }
        return checkpoint
    }

    /// "an unknown model" and, when the names are not a state dict's, the keys they are under.
    static func unknown(_ checkpoint: Checkpoint) -> String {
        if let architecture = ArchitectureRecognizer.recognize(checkpoint.entries) { return String(describing: architecture) }
        let keys = checkpoint.topLevelKeys
        guard !keys.isEmpty else { return "a file without tensors" }
        let shown = keys.prefix(8).map { "\($0.key) (\($0.tensors) tensor\($0.tensors == 1 ? "" : "s"))" }.joined(separator: ", ")
        return "an unknown model; its tensors are under: \(shown)\(keys.count > 8 ? ", and \(keys.count - 8) more keys" : "")"
    }

    /// The guided-diffusion UNet in `path`. Its configuration is `config` when given;
    /// otherwise the official preset named like the file, or the one preset whose
    /// structure the tensor shapes match. `note` is told which weights a training
    /// checkpoint's were taken (e.g. its EMA). A model that ``KeptModels`` holds for the same
    /// file is returned without reading the file (its notes are told again).
    public static func unet(path: String, config: UNetConfig? = nil, note: (String) -> Void = { _ in }) throws -> UNetModel {
        try KeptModels.shared.unet(path: path, config: config, note: note) { try loadUNet(path: path, config: config, note: $0) }
    }

    static func loadUNet(path: String, config: UNetConfig?, note: (String) -> Void) throws -> UNetModel {
        let checkpoint = try open(path, role: .diffusion, note: note)
        let resolved = try config ?? unetConfig(for: checkpoint, path: path, expected: ModelRole.diffusion.expected)
        return try UNetModel(config: resolved, weights: ModelWeights(checkpoint.tensors(), modelName: "guided-diffusion UNet"))
    }

    static func unetConfig(for checkpoint: Checkpoint, path: String, expected: String) throws -> UNetConfig {
        let stem = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        if let preset = UNetConfig.presets[stem] { return preset }
        guard case let .guidedDiffusionUNet(seen)? = ArchitectureRecognizer.recognize(checkpoint.entries) else {
            throw ModelLoadingError.notRecognised(path: path, expected: expected, found: unknown(checkpoint), download: ModelRole.diffusion.download)
        }
        let matches = UNetConfig.presets.values.filter { preset in
            preset.modelChannels == seen.modelChannels && preset.learnSigma == seen.learnSigma
                && preset.numClasses == seen.numClasses && seen.numResBlocks.map { $0 == preset.numResBlocks } ?? false
                && seen.channelMult.map { $0 == preset.channelMult } ?? false
                && Set(seen.attentionDownsampleFactors) == preset.attentionDownsampleFactors
        }
        guard matches.count == 1 else {
            throw ModelLoadingError.ambiguousConfig(
                path: path, message: matches.isEmpty ? "its shapes match none of the official models (\(seen))"
                    : "its shapes match several official models")
        }
        return matches[0]
    }

    /// OpenAI CLIP (a ViT model) from its TorchScript file or a state dict.
    public static func clip(path: String, note: (String) -> Void = { _ in }) throws -> ClipModel {
        try KeptModels.shared.clip(path: path, note: note) { try loadClip(path: path, note: $0) }
    }

    static func loadClip(path: String, note: (String) -> Void) throws -> ClipModel {
        let checkpoint = try open(path, role: .clip, note: note)
        guard case .clip? = ArchitectureRecognizer.recognize(checkpoint.entries) else {
            throw ModelLoadingError.notRecognised(path: path, expected: ModelRole.clip.expected, found: unknown(checkpoint), download: ModelRole.clip.download)
        }
        return try ClipModel(weights: ModelWeights(checkpoint.tensors(), modelName: "CLIP"))
    }

    /// LPIPS-VGG from torchvision's VGG16 weights and the lpips package's v0.1 lin layers.
    public static func lpips(vggPath: String, linearPath: String, note: (String) -> Void = { _ in }) throws -> LPIPSModel {
        try KeptModels.shared.lpips(vggPath: vggPath, linearPath: linearPath, note: note) {
            try loadLPIPS(vggPath: vggPath, linearPath: linearPath, note: $0)
        }
    }

    static func loadLPIPS(vggPath: String, linearPath: String, note: (String) -> Void) throws -> LPIPSModel {
        let vgg = try open(vggPath, role: .vgg16, note: note)
        let lin = try open(linearPath, role: .lpipsLinear, note: note)
        var all = try vgg.tensors()
        for (key, value) in try lin.tensors() { all[key] = value }
        return try LPIPSModel(weights: ModelWeights(all, modelName: "LPIPS-VGG"))
    }
}
