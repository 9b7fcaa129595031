import BlendCheckpoint
import BlendDiffusion
import BlendEditor
import BlendModels
import BlendTensor
import Foundation

/// Why a Stable Diffusion model's parts could not be put together; each says what to do.
public enum StableDiffusionLoadingError: Error, Equatable, CustomStringConvertible {
    /// The text encoder's key names are neither transformers' nor OpenCLIP's.
    case unknownTextEncoder(path: String)
    /// The UNet attends to a context of another width than the text encoder gives.
    case mismatchedContext(path: String, unet: Int, textEncoder: Int)
    /// A diffusers scheduler config blend cannot follow.
    case unsupportedScheduler(file: String, detail: String)

    public var description: String {
        switch self {
        case let .unknownTextEncoder(path):
            return "\(path): the text encoder's tensors are neither CLIPTextModel's nor an OpenCLIP text tower's; "
                + "use an SD 1.x/2.x checkpoint as published"
        case let .mismatchedContext(path, unet, textEncoder):
            return "\(path): the UNet attends to a \(unet)-wide text context but the text encoder gives \(textEncoder); "
                + "the file mixes parts of different models: use an SD 1.x/2.x checkpoint as published"
        case let .unsupportedScheduler(file, detail):
            return "\(file): \(detail)"
        }
    }
}

/// How to read a Stable Diffusion model (see ``StableDiffusionLoader``).
public struct StableDiffusionLoadOptions: Sendable {
    /// ε or v, overriding the folder's `scheduler_config.json` or the single file's default.
    public var predictionType: PredictionType?
    /// For single files: a diffusers folder whose `unet/`, `vae/` and `text_encoder/`
    /// `config.json` replace what the shapes tell (diffusers' `from_single_file(config=...)`),
    /// for models whose group counts or heads differ from SD's.
    public var configFolder: String?

    public init(predictionType: PredictionType? = nil, configFolder: String? = nil) {
        self.predictionType = predictionType
        self.configFolder = configFolder
    }
}

/// A whole Stable Diffusion model, ready to edit with: the networks, how prompts are padded,
/// what the UNet predicts and the training noise schedule the solvers run over.
public struct StableDiffusionModels: Sendable {
    public let info: StableDiffusionInfo
    public let unet: UNet2DConditionModel
    public let vae: AutoencoderKL
    public let textEncoder: SDTextEncoder
    public let padding: SDPromptPadding
    public let predictionType: PredictionType
    /// The training noise schedule (scaled-linear 0.00085 → 0.012 over 1000 steps for SD).
    public let schedule: NoiseSchedule

    public var denoiser: StableDiffusionDenoiser { StableDiffusionDenoiser(unet: unet) }
    public var autoencoder: StableDiffusionAutoencoder { StableDiffusionAutoencoder(vae: vae) }

    /// The text context `[1, 77, D]` of `prompt` ("" gives the unconditional context), tokenized
    /// by `tokenizer` (CLIP's BPE vocabulary, which SD 1.x and 2.x share) and padded as this
    /// model's tokenizer pads. Throws the tokenizer's and the encoder's errors.
    public func context(for prompt: String, tokenizer: ClipTokenizer) throws -> Tensor {
        try textEncoder([SDTextEncoder.tokens(for: prompt, tokenizer: tokenizer, padding: padding)])
    }

    /// A fresh solver of `kind` over this model's schedule and prediction type.
    public func makeSolver(_ kind: LatentSolverKind, steps: Int) throws -> any DiffusionSolver {
        try kind.makeSolver(steps: steps, predictionType: predictionType, schedule: schedule)
    }
}

/// Builds a ``StableDiffusionModels`` from a CompVis single file (`.safetensors`, `.ckpt`) or a
/// diffusers folder, with ``StableDiffusionFiles`` for the files and the models' key layouts.
public enum StableDiffusionLoader {
    /// The prediction type of a single file, which the weights cannot tell: v for the SD 2.x
    /// checkpoints trained at 768² (published as `768-v-ema`, `v2-1_768-ema-pruned`, whose
    /// names say so), ε for every other (SD 1.x, SD 2.x base).
    public static func defaultPredictionType(fileName: String, version: StableDiffusionInfo.Version?) -> PredictionType {
        version == .v2 && fileName.contains("768") ? .vPrediction : .epsilon
    }

    /// Loads every part of the model at `path`. Throws `StableDiffusionFileError` for files
    /// that are not a supported SD model or lack a part, `StableDiffusionLoadingError`,
    /// `DiffusersFolderError` / `CheckpointError` for unreadable files, and `ModelError` for
    /// tensors that do not fit (naming the tensor).
    public static func load(path: String, options: StableDiffusionLoadOptions = StableDiffusionLoadOptions(),
                            note: (String) -> Void = { _ in }) throws -> StableDiffusionModels {
        let files = try StableDiffusionFiles.open(path: path)
        note("reading \(files.info)")
        let layout: StableDiffusionKeyLayout = files.info.layout == .diffusers ? .diffusers : .compVis
        func weights(_ component: StableDiffusionComponent, _ name: String,
                     keeping owned: (String) -> Bool = { _ in true }) throws -> ModelWeights {
            let group = try files.tensors(for: component)
            return ModelWeights(shapes: group.shapes.filter { owned($0.key) }, modelName: name) {
                try group.tensor(named: $0, convertingIntegers: true)
            }
        }
        func config(_ component: StableDiffusionComponent) throws -> Data? {
            try Self.config(component, files: files, options: options)
        }

        // A single file's configs are read off its shapes with SD's usual settings (32 groups per
        // norm, ...); where those do not fit, the fix is a folder of configs.
        func withConfigHint<T>(_ component: StableDiffusionComponent, _ make: (Data?) throws -> T) throws -> T {
            let json = try config(component)
            do {
                return try make(json)
            } catch ModelError.invalidConfig(let detail) where json == nil {
                throw ModelError.invalidConfig("\(detail) (the \(component.rawValue)'s config was read off the shapes of \(path)"
                    + " with Stable Diffusion's usual settings): pass --sd-config with a diffusers folder whose unet/, vae/ and"
                    + " text_encoder/ hold the model's config.json")
            }
        }
        let unet = try withConfigHint(.unet) { try UNet2DConditionModel.load(weights: weights(.unet, "SD UNet"), layout: layout, configJSON: $0) }
        let vae = try withConfigHint(.vae) { try AutoencoderKL.load(weights: weights(.vae, "SD VAE"), layout: layout, configJSON: $0) }

        let textGroup = try files.tensors(for: .textEncoder)
        let textLayout: SDTextEncoderKeyLayout
        if layout == .diffusers {
            textLayout = .diffusers
        } else {
            guard let detected = SDTextEncoderKeyLayout.detect(keys: textGroup.entries.map(\.name)) else {
                throw StableDiffusionLoadingError.unknownTextEncoder(path: path)
            }
            textLayout = detected
        }
        let textConfig = try config(.textEncoder).map { data -> SDTextEncoderConfig in
            do {
                return try JSONDecoder().decode(SDTextEncoderConfig.self, from: data)
            } catch {
                throw DiffusersFolderError.malformedJSON(file: "text_encoder/config.json", detail: "\(error)")
            }
        }
        let textEncoder = try SDTextEncoder(weights: weights(.textEncoder, "SD text encoder", keeping: textLayout.owns),
                                            config: textConfig, layout: textLayout)
        let contextWidth = unet.config.contextDim(downBlock: 0)
        guard contextWidth == textEncoder.config.hiddenSize else {
            throw StableDiffusionLoadingError.mismatchedContext(path: path, unet: contextWidth, textEncoder: textEncoder.config.hiddenSize)
        }

        let padding = try files.folder(named: "tokenizer").flatMap(Self.padding(tokenizerFolder:))
            ?? SDPromptPadding.usual(for: textEncoder.config)
        var predictionType = defaultPredictionType(fileName: URL(fileURLWithPath: path).lastPathComponent, version: files.info.version)
        var schedule = try NoiseSchedule.scaledLinear()
        if let folder = files.folder(named: "scheduler") {
            (schedule, predictionType) = try Self.scheduler(folder: folder, predictionType: options.predictionType)
        }
        return StableDiffusionModels(info: files.info, unet: unet, vae: vae, textEncoder: textEncoder, padding: padding,
                                     predictionType: options.predictionType ?? predictionType, schedule: schedule)
    }

    /// The `config.json` of `component`: the folder's own, else `options.configFolder`'s; nil for
    /// a single file without a config folder (the config is then read off the shapes).
    static func config(_ component: StableDiffusionComponent, files: StableDiffusionFiles,
                       options: StableDiffusionLoadOptions) throws -> Data? {
        if let data = try files.config(for: component) { return data }
        guard let folder = options.configFolder else { return nil }
        let file = URL(fileURLWithPath: folder).appendingPathComponent("\(component.rawValue)/config.json")
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw DiffusersFolderError.malformedJSON(file: file.path, detail: "it cannot be read")
        }
        return data
    }

    /// What an edit needs to know before loading the model at `path`: what it is, its prediction
    /// type (as ``load(path:options:note:)`` resolves it) and the square image size it works at —
    /// the UNet's `sample_size` times the VAE's downsampling factor when configs tell (diffusers'
    /// pipelines' default height), else 768 for v-prediction models (SD 2.x at 768²) and 512 for
    /// the others — and the VAE's downsampling factor (`latentScale`: 8 unless its config says
    /// otherwise), the size of a latent cell in model pixels. Reads only the files' headers and configs. Throws as ``load(path:options:note:)``
    /// does for files that are not a supported SD model.
    public static func nativeImageSize(path: String, options: StableDiffusionLoadOptions = StableDiffusionLoadOptions())
        throws -> (size: Int, predictionType: PredictionType, info: StableDiffusionInfo, latentScale: Int) {
        let files = try StableDiffusionFiles.open(path: path)
        var predictionType = defaultPredictionType(fileName: URL(fileURLWithPath: path).lastPathComponent, version: files.info.version)
        if let folder = files.folder(named: "scheduler") { predictionType = try scheduler(folder: folder, predictionType: options.predictionType).1 }
        predictionType = options.predictionType ?? predictionType
        func object(_ component: StableDiffusionComponent) throws -> [String: Any]? {
            guard let data = try config(component, files: files, options: options) else { return nil }
            return try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        }
        let sampleSize = try object(.unet)?["sample_size"] as? Int
        let levels = (try object(.vae)?["block_out_channels"] as? [Any])?.count ?? 4
        // Configs come from strangers: an image side above 2048 is not an SD model's.
        guard let sampleSize, (1...256).contains(sampleSize), (1...4).contains(levels), sampleSize << (levels - 1) <= 2048 else {
            return (predictionType == .vPrediction ? 768 : 512, predictionType, files.info, 8)
        }
        return (sampleSize << (levels - 1), predictionType, files.info, 1 << (levels - 1))
    }

    /// The pad token of `tokenizer/special_tokens_map.json` ("<|endoftext|>" in SD 1.x, "!" —
    /// id 0 — in SD 2.x); nil when the file is absent.
    static func padding(tokenizerFolder folder: String) throws -> SDPromptPadding? {
        let file = URL(fileURLWithPath: folder).appendingPathComponent("special_tokens_map.json").path
        guard let data = FileManager.default.contents(atPath: file) else { return nil }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw DiffusersFolderError.malformedJSON(file: file, detail: "it is not a JSON object")
        }
        // transformers writes a token either as a string or as {"content": ...}.
        let pad = (object["pad_token"] as? String) ?? ((object["pad_token"] as? [String: Any])?["content"] as? String)
        switch pad {
        case nil: return nil
        case "<|endoftext|>": return .endOfText
        default: return .zero   // "!" and SD 2's other spellings of id 0
        }
    }

    /// The training schedule and prediction type of `scheduler/scheduler_config.json`.
    /// `predictionType`, when the user gave one, is used whatever the config says.
    static func scheduler(folder: String, predictionType given: PredictionType? = nil) throws -> (NoiseSchedule, PredictionType) {
        let file = URL(fileURLWithPath: folder).appendingPathComponent("scheduler_config.json").path
        guard let data = FileManager.default.contents(atPath: file),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw DiffusersFolderError.malformedJSON(file: file, detail: "it is missing or not a JSON object")
        }
        let kind = object["beta_schedule"] as? String ?? "linear"
        guard kind == "scaled_linear" else {
            throw StableDiffusionLoadingError.unsupportedScheduler(file: file, detail: "beta_schedule \"\(kind)\" is not SD's \"scaled_linear\":"
                + " blend samples with SD's schedule, and a model trained on another would not denoise with it; use an SD 1.x/2.x model as published")
        }
        let name = object["prediction_type"] as? String ?? PredictionType.epsilon.rawValue
        guard let prediction = given ?? PredictionType(rawValue: name) else {
            throw StableDiffusionLoadingError.unsupportedScheduler(file: file, detail: "prediction_type \"\(name)\" is neither epsilon nor"
                + " v_prediction: if the UNet predicts one of them, give it (--prediction-type epsilon|v; predictionType in the web API)")
        }
        do {
            let schedule = try NoiseSchedule.scaledLinear(betaStart: (object["beta_start"] as? Double) ?? 0.0001,
                                                          betaEnd: (object["beta_end"] as? Double) ?? 0.02,
                                                          trainSteps: (object["num_train_timesteps"] as? Int) ?? 1000)
            return (schedule, prediction)
        } catch let error as DiffusionError {
            throw StableDiffusionLoadingError.unsupportedScheduler(file: file, detail: "\(error)")
        }
    }
}
