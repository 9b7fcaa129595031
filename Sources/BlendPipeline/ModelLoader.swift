import BlendCheckpoint
import BlendModels
import BlendTensor
import Foundation

/// Errors finding or recognising model files, each saying which file is expected and
/// how to get it.
public enum ModelLoadingError: Error, Equatable, CustomStringConvertible {
    case missingFile(path: String, expected: String, download: String?)
    /// Every model file the edit's method needs that is not there, found at once (so that a
    /// user fetches them all, not one per run), each with the option that gives its path.
    case missingFiles([MissingModel])
    /// A file in the model cache under an official name whose size is not the published
    /// file's (a truncated download, an error page): `blend models list` marks it WRONG.
    case wrongCachedFile(path: String, bytes: Int64, expected: String, download: String)
    /// A CLIP vocabulary with more tokens than the CLIP model has token embeddings: the two
    /// files do not belong together (a prompt's token would fall outside the table).
    case vocabularyMismatch(vocabulary: String, tokens: Int, model: String, rows: Int)
    case notRecognised(path: String, expected: String, found: String, download: String)
    case ambiguousConfig(path: String, message: String)

    public var description: String {
        switch self {
        case let .missingFile(path, expected, download):
            var text = "model file not found: \(path)\n  expected: \(expected)"
            if let download { text += "\n  get it with: blend models download \(download)" }
            return text
        case let .missingFiles(files):
            return (files.count == 1 ? "a model file was not found:" : "\(files.count) model files were not found:")
                + files.map { "\n" + $0.description }.joined()
        case let .wrongCachedFile(path, bytes, expected, download):
            return "\(path) is not the published file (it has \(bytes) bytes, the published one \(expected); `blend models list`"
                + " marks it WRONG): delete it and download it again with: blend models download \(download) --force"
        case let .vocabularyMismatch(vocabulary, tokens, model, rows):
            return "the CLIP vocabulary \(vocabulary) has \(tokens) tokens but the model \(model) has \(rows) token"
                + " embeddings in its text encoder: the two files do not belong together. Give the vocabulary made for that"
                + " model (--clip-vocab), or use the official files: blend models download clip-vocab (with ViT-B-16, and"
                + " stable-diffusion-v1-5 for the latent method)"
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

/// A model file an edit needs that is not there, and how to get it or give its path.
public struct MissingModel: Codable, Equatable, Sendable, CustomStringConvertible {
    public var path: String
    /// What the file should be, in words.
    public var expected: String
    /// The `blend models download` name of the official file; nil when the path given is not
    /// the official file's name (a file of the user's own).
    public var download: String?
    /// The front ends' option that gives its path (`--clip-vocab`); nil for files that are
    /// only read from the model cache (`--models-dir`).
    public var option: String?

    public init(path: String, expected: String, download: String?, option: String?) {
        self.path = path
        self.expected = expected
        self.download = download
        self.option = option
    }

    /// `  PATH (EXPECTED)\n    get it with: blend models download NAME (or give its path with --OPTION)`.
    public var description: String {
        var text = "  \(path)\n    expected: \(expected)\n    "
        let give = option.map { "give its path with \($0)" } ?? "put it in the model cache (--models-dir)"
        if let download {
            text += "get it with: blend models download \(download)" + (option.map { " (or give its path with \($0))" } ?? "")
        } else {
            text += give
        }
        return text
    }
}

/// The model files blend reads, with what to tell a user who lacks one.
public enum ModelRole: Sendable, CaseIterable {
    case diffusion, clip, clipVocabulary, vgg16, lpipsLinear, stableDiffusion

    /// The key under which `report.json`'s `models` names the file: the networks that made
    /// and ranked the samples (not the vocabulary, nor LPIPS, a loss only).
    var reportKey: String? {
        switch self {
        case .diffusion: "diffusion"
        case .clip: "clip"
        case .stableDiffusion: "stable_diffusion"
        case .clipVocabulary, .vgg16, .lpipsLinear: nil
        }
    }

    /// What the file should be, in words.
    public var expected: String {
        switch self {
        case .clipVocabulary: return "CLIP's BPE vocabulary such as bpe_simple_vocab_16e6.txt.gz"
        case .diffusion: return "a guided-diffusion UNet checkpoint such as 256x256_diffusion_uncond.pt"
        case .clip: return "an OpenAI CLIP ViT checkpoint such as ViT-B-16.pt"
        case .vgg16: return "torchvision's VGG16 weights such as vgg16-397923af.pth"
        case .lpipsLinear: return "the LPIPS v0.1 VGG linear layers such as vgg.pth"
        case .stableDiffusion:
            return "a Stable Diffusion 1.x/2.x checkpoint (.safetensors or .ckpt) or diffusers folder, such as v1-5-pruned-emaonly.safetensors"
        }
    }

    /// The `blend models download` name of the official file.
    public var download: String {
        switch self {
        case .clipVocabulary: return "clip-vocab"
        case .diffusion: return "256x256_diffusion_uncond"
        case .clip: return "ViT-B-16"
        case .vgg16: return "vgg16"
        case .lpipsLinear: return "lpips-vgg"
        case .stableDiffusion: return "stable-diffusion-v1-5"
        }
    }
}

extension ModelRole {
    /// The option of `blend edit` and `blend serve` that gives the file's path; nil for the
    /// LPIPS files, which are read from the model cache only (`--models-dir`).
    public var option: String? {
        switch self {
        case .diffusion: return "--diffusion-model"
        case .clip: return "--clip-model"
        case .clipVocabulary: return "--clip-vocab"
        case .stableDiffusion: return "--sd-model"
        case .vgg16, .lpipsLinear: return nil
        }
    }

    /// The official files' names (those `blend models download` writes) and their download names.
    static let officialNames: [String: String] = [
        "256x256_diffusion_uncond.pt": "256x256_diffusion_uncond", "256x256_diffusion.pt": "256x256_diffusion",
        "512x512_diffusion.pt": "512x512_diffusion", "ViT-B-16.pt": "ViT-B-16", "bpe_simple_vocab_16e6.txt.gz": "clip-vocab",
        "vgg16-397923af.pth": "vgg16", "vgg.pth": "lpips-vgg", "v1-5-pruned-emaonly.safetensors": "stable-diffusion-v1-5",
        "v2-1_512-ema-pruned.safetensors": "stable-diffusion-2-1-base",
    ]

    /// `path` as a missing file of this role: the download named only when `path` has an
    /// official file's name (a file of the user's own cannot be downloaded).
    public func missing(_ path: String) -> MissingModel {
        let name = URL(fileURLWithPath: path).lastPathComponent
        return MissingModel(path: path, expected: expected, download: Self.officialNames[name], option: option)
    }
}

/// Builds the networks from the files users already have, unchanged.
public enum ModelLoader {
    /// Throws ``ModelLoadingError/missingFiles(_:)`` naming every file of `files` that does
    /// not exist (all of them, in order), each with its download and option.
    public static func requireFiles(_ files: [(path: String, role: ModelRole)]) throws {
        let missing = files.filter { !FileManager.default.fileExists(atPath: $0.path) }.map { $0.role.missing($0.path) }
        guard missing.isEmpty else { throw ModelLoadingError.missingFiles(missing) }
    }

    /// Throws ``ModelLoadingError/wrongCachedFile(path:bytes:expected:download:)`` for a file
    /// of `paths` in `cacheDirectory` under an official name whose size is not the published
    /// file's, as `blend models list` marks it WRONG. Files elsewhere (the user's own) and
    /// folders are not checked.
    public static func requireCachedFilesIntact(_ paths: [String], cacheDirectory: String) throws {
        let cache = URL(fileURLWithPath: cacheDirectory, isDirectory: true).standardizedFileURL.path
        for path in paths {
            let url = URL(fileURLWithPath: path).standardizedFileURL
            guard url.deletingLastPathComponent().path == cache,
                  let model = ModelRegistry.model(named: url.lastPathComponent), model.fileName == url.lastPathComponent,
                  case let .wrongSize(bytes, expected) = ModelCache(directory: URL(fileURLWithPath: cache)).entry(for: model)
            else { continue }
            throw ModelLoadingError.wrongCachedFile(path: path, bytes: bytes, expected: expected.description, download: model.name)
        }
    }

    /// Throws ``ModelLoadingError/vocabularyMismatch(vocabulary:tokens:model:rows:)`` when the
    /// vocabulary (of `vocabularySize` tokens, ``ClipTokenizer/vocabularySize``) can make
    /// token ids the CLIP model has no embedding for.
    public static func requireVocabulary(size vocabularySize: Int, of vocabularyPath: String, fits clip: ClipModel, at clipPath: String) throws {
        try requireVocabulary(size: vocabularySize, of: vocabularyPath, rows: clip.config.vocabSize, model: clipPath)
    }

    /// The same for a text encoder of `rows` token embeddings in `model` (Stable Diffusion's).
    public static func requireVocabulary(size vocabularySize: Int, of vocabularyPath: String, rows: Int, model: String) throws {
        guard vocabularySize <= rows else {
            throw ModelLoadingError.vocabularyMismatch(vocabulary: vocabularyPath, tokens: vocabularySize, model: model, rows: rows)
        }
    }

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
