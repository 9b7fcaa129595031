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
        case let .ambiguousConfig(path, message):
            return "cannot tell the configuration of \(path): \(message); pass --diffusion-config with a JSON config"
        }
    }
}

/// The model files blend reads, with what to tell a user who lacks one.
public enum ModelRole: Sendable {
    case diffusion, clip, vgg16, lpipsLinear

    var expected: String {
        switch self {
        case .diffusion: return "a guided-diffusion UNet checkpoint such as 256x256_diffusion_uncond.pt"
        case .clip: return "an OpenAI CLIP ViT checkpoint such as ViT-B-16.pt"
        case .vgg16: return "torchvision's VGG16 weights (vgg16-397923af.pth)"
        case .lpipsLinear: return "the LPIPS v0.1 VGG linear layers (vgg.pth)"
        }
    }

    /// The `blend models download` name of the official file.
    var download: String {
        switch self {
        case .diffusion: return "256x256_diffusion_uncond"
        case .clip: return "ViT-B-16"
        case .vgg16: return "vgg16"
        case .lpipsLinear: return "lpips-vgg"
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

    static func open(_ path: String, role: ModelRole) throws -> Checkpoint {
        try requireFile(path, role: role)
        return try CheckpointFile.load(path: path)
    }

    /// The guided-diffusion UNet in `path`. Its configuration is `config` when given;
    /// otherwise the official preset named like the file, or the one preset whose
    /// structure the tensor shapes match.
    public static func unet(path: String, config: UNetConfig? = nil) throws -> UNetModel {
        let checkpoint = try open(path, role: .diffusion)
        let resolved = try config ?? unetConfig(for: checkpoint, path: path, expected: ModelRole.diffusion.expected)
        return try UNetModel(config: resolved, weights: ModelWeights(checkpoint.tensors(), modelName: "guided-diffusion UNet"))
    }

    static func unetConfig(for checkpoint: Checkpoint, path: String, expected: String) throws -> UNetConfig {
        let stem = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        if let preset = UNetConfig.presets[stem] { return preset }
        guard case let .guidedDiffusionUNet(seen)? = ArchitectureRecognizer.recognize(checkpoint.entries) else {
            let found = ArchitectureRecognizer.recognize(checkpoint.entries).map(String.init(describing:)) ?? "an unknown model"
            throw ModelLoadingError.notRecognised(path: path, expected: expected, found: found, download: ModelRole.diffusion.download)
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
    public static func clip(path: String) throws -> ClipModel {
        let checkpoint = try open(path, role: .clip)
        guard case .clip? = ArchitectureRecognizer.recognize(checkpoint.entries) else {
            let found = ArchitectureRecognizer.recognize(checkpoint.entries).map(String.init(describing:)) ?? "an unknown model"
            throw ModelLoadingError.notRecognised(path: path, expected: ModelRole.clip.expected, found: found, download: ModelRole.clip.download)
        }
        return try ClipModel(weights: ModelWeights(checkpoint.tensors(), modelName: "CLIP"))
    }

    /// LPIPS-VGG from torchvision's VGG16 weights and the lpips package's v0.1 lin layers.
    public static func lpips(vggPath: String, linearPath: String) throws -> LPIPSModel {
        let vgg = try open(vggPath, role: .vgg16)
        let lin = try open(linearPath, role: .lpipsLinear)
        var all = try vgg.tensors()
        for (key, value) in try lin.tensors() { all[key] = value }
        return try LPIPSModel(weights: ModelWeights(all, modelName: "LPIPS-VGG"))
    }
}
