import BlendEditor
import BlendImage
import BlendModels
import BlendTensor
import Foundation

/// One edit method with its models loaded, as ``EditPipeline/run(_:events:)`` drives it: the
/// seam between the pipeline (files, run folders, paste-back, ranking, the report) and a
/// method (its models and its editor). Every method makes its samples through the shared
/// ``SampleLoop``, so the pipeline sees one progress and one sample type.
///
/// Adding a method (DEVELOPERS.md, "Adding an edit method"): its settings type, its editor
/// (a ``BatchSampler``), a type conforming to this protocol, an ``EditMethodDefinition`` that
/// makes it, and one case in ``EditMethod/definition``.
protocol LoadedEditMethod {
    /// Makes the samples numbered `indices` of the model-size `image` (`[1, 3, S, S]` in
    /// [−1, 1]) where `mask` (`[1, 1, S, S]`, 1 = edit, already inverted if asked) is set,
    /// for the prompt's CLIP `tokens`; each finished sample reaches `finished` with its
    /// unaugmented CLIP distance (lower is better).
    func edit(image: Tensor, mask: Tensor, tokens: [Int], indices: [Int],
              progress: (EditProgress) throws -> Void,
              reconstruction: (ReconstructionProgress) throws -> Void,
              finished: (_ sample: EditedSample, _ distance: Float) throws -> Void) throws
}

/// What ``EditPipeline/check(_:)`` has read and checked for every method before the method's
/// own part: the photo, the mask, the prompt's tokens and the notices so far.
struct SharedCheck {
    let photo: Photo
    /// The mask's values at the photo's size, inverted if asked, and thresholded.
    let softMask: SoftMask
    let fullMask: EditMask
    let tokens: [Int]
    let tokenizer: ClipTokenizer
    let editedFraction: Double
    var notices: [String]
}

/// An edit method as the pipeline knows it before its models are loaded: the model files it
/// reads, its checks of the inputs (those that need no model file first, so that a bad region
/// is named even where the files are missing), and how it loads its models into a
/// ``LoadedEditMethod``. One type per family of methods on the same models, registered once in
/// ``EditMethod/definition``; its settings are its own type (``PixelOptions``, ``LatentOptions``).
protocol EditMethodDefinition {
    /// The model files `request` needs besides CLIP and its vocabulary (every method ranks
    /// with CLIP), each with its role (the option that gives it, the download that fetches it).
    static func modelFiles(_ request: EditRequest) -> [(path: String, role: ModelRole)]

    /// The checks that need no model file, run before the files are looked for; returns the
    /// geometry where the model's size is known without its files (nil otherwise).
    /// - Throws: ``MaskError`` (the geometry), `EditError.badInput`.
    static func checkBeforeModelFiles(_ request: EditRequest, mask: EditMask, photo: ImageSize) throws -> EditGeometry?

    /// The rest of the check, once the files exist and the prompt is tokenized: the model's
    /// size (from its headers or configs), the memory estimate, the geometry at that size.
    /// `geometry`: what ``checkBeforeModelFiles(_:mask:photo:)`` returned.
    /// - Throws: ``ModelLoadingError``, ``MemoryError``, ``MaskError``, `EditError`.
    static func checkWithModelFiles(_ request: EditRequest, shared: SharedCheck, geometry: EditGeometry?) throws -> CheckedEdit

    /// Loads the models of `request` (reusing what ``checkWithModelFiles(_:shared:geometry:)``
    /// loaded), checks the prompt's vocabulary against them, and returns the method ready to
    /// edit. `note` hears what the loaders say about the files.
    /// - Throws: ``ModelLoadingError`` for unreadable or mismatched model files.
    static func load(_ request: EditRequest, checked: CheckedEdit, note: @escaping (String) -> Void) throws -> any LoadedEditMethod
}

extension EditMethod {
    /// The method's definition: the one place that says which type serves which method.
    var definition: any EditMethodDefinition.Type {
        switch self {
        case .blended, .localClip: return PixelMethodDefinition.self
        case .latent: return LatentMethodDefinition.self
        }
    }
}

extension EditPipeline {
    /// Loads the models of `request`'s method (see ``EditMethodDefinition/load(_:checked:note:)``).
    static func loadMethod(_ request: EditRequest, checked: CheckedEdit, note: @escaping (String) -> Void) throws -> any LoadedEditMethod {
        try request.settings.method.definition.load(request, checked: checked, note: note)
    }

    /// CLIP for ranking (and for the pixel methods, guidance), checked against its vocabulary.
    static func loadRankingCLIP(_ request: EditRequest, checked: CheckedEdit, note: @escaping (String) -> Void) throws -> ClipModel {
        let models = request.models
        let clip = try ModelLoader.clip(path: models.clip, note: note)
        try ModelLoader.requireVocabulary(size: checked.vocabularySize, of: models.clipVocabulary, fits: clip, at: models.clip)
        return clip
    }
}

/// Blended Diffusion and the local-CLIP baseline, on guided-diffusion's pixel UNet.
enum PixelMethodDefinition: EditMethodDefinition {
    static func modelFiles(_ request: EditRequest) -> [(path: String, role: ModelRole)] {
        let models = request.models
        return [(models.diffusion, .diffusion)]
            + (request.settings.usesLPIPS ? [(models.vgg16, .vgg16), (models.lpipsLinear, .lpipsLinear)] : [])
    }

    /// The UNet's size where its config or an official file name gives it: then the geometry
    /// is resolved before the model files are looked for.
    static func checkBeforeModelFiles(_ request: EditRequest, mask: EditMask, photo: ImageSize) throws -> EditGeometry? {
        let stem = URL(fileURLWithPath: request.models.diffusion).deletingPathExtension().lastPathComponent
        guard let modelSize = (request.models.diffusionConfig ?? UNetConfig.presets[stem])?.imageSize else { return nil }
        return try EditPipeline.resolveGeometry(mask: mask, photo: photo, options: request.maskOptions, modelSize: modelSize)
    }

    static func checkWithModelFiles(_ request: EditRequest, shared: SharedCheck, geometry known: EditGeometry?) throws -> CheckedEdit {
        var notices = shared.notices
        // Without a known size, the UNet is loaded here (its weights are mapped, not read) to learn it.
        var loadSeconds = 0.0
        var preloadedUNet: UNetModel?
        var modelSize = known?.modelSize ?? 0
        if known == nil {
            let loadStart = Date()
            let unet = try ModelLoader.unet(path: request.models.diffusion, config: nil, note: { notices.append($0) })
            loadSeconds = Date().timeIntervalSince(loadStart)
            preloadedUNet = unet
            modelSize = unet.config.imageSize
        }
        if request.checksMemory, let estimate = EditPipeline.memoryEstimate(request, modelSize: modelSize),
           let available = request.availableMemoryBytes ?? EditMemory.availableBytes() {
            try EditMemory.check(estimate, available: available)
        }
        let geometry = try known ?? EditPipeline.resolveGeometry(mask: shared.fullMask, photo: shared.photo.size,
                                                                 options: request.maskOptions, modelSize: modelSize)
        notices += EditPipeline.geometryNotices(geometry, options: request.maskOptions, enforcesBackground: request.settings.pastesBackground,
                                                wording: request.wording)
        return CheckedEdit(photo: shared.photo, softMask: shared.softMask, tokens: shared.tokens, editedFraction: shared.editedFraction,
                           notices: notices, geometry: geometry, preloadedUNet: preloadedUNet, loadSeconds: loadSeconds,
                           latentModel: nil, vocabularySize: shared.tokenizer.vocabularySize)
    }

    static func load(_ request: EditRequest, checked: CheckedEdit, note: @escaping (String) -> Void) throws -> any LoadedEditMethod {
        let models = request.models, settings = request.settings
        // The generator first: the largest file, and the one a mistake is most likely in.
        let unet = try checked.preloadedUNet ?? ModelLoader.unet(path: models.diffusion, config: models.diffusionConfig, note: note)
        let clip = try EditPipeline.loadRankingCLIP(request, checked: checked, note: note)
        let lpips = settings.usesLPIPS ? try ModelLoader.lpips(vggPath: models.vgg16, linearPath: models.lpipsLinear, note: note) : nil
        // The editor gets the mask already inverted.
        var editorSettings = settings
        editorSettings.invertMask = false
        let editor = try BlendedDiffusionEditor(models: EditorModels(unet: unet, clip: clip, lpips: lpips), settings: editorSettings)
        return BlendedDiffusionMethod(editor: editor)
    }
}

/// Blended Latent Diffusion, on a Stable Diffusion 1.x/2.x model.
enum LatentMethodDefinition: EditMethodDefinition {
    static func modelFiles(_ request: EditRequest) -> [(path: String, role: ModelRole)] {
        [(request.models.stableDiffusion, .stableDiffusion)]
    }

    /// `--sd-config` must be a folder; the model's size needs its files.
    static func checkBeforeModelFiles(_ request: EditRequest, mask: EditMask, photo: ImageSize) throws -> EditGeometry? {
        if let folder = request.models.stableDiffusionConfig {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw EditError.badInput("--sd-config \(folder) is not a folder: pass a diffusers model folder whose unet/, vae/ and"
                    + " text_encoder/ hold config.json")
            }
        }
        return nil
    }

    /// The negative prompt, the Stable Diffusion model's headers and configs (read, not its
    /// weights, to learn its size and prediction type), the geometry at that size. Its options
    /// were checked by ``EditPipeline/validateSettings(_:)``.
    static func checkWithModelFiles(_ request: EditRequest, shared: SharedCheck, geometry _: EditGeometry?) throws -> CheckedEdit {
        var notices = shared.notices
        do {
            _ = try shared.tokenizer.tokenize(request.latent.negativePrompt)
        } catch ClipTokenizerError.promptTooLong(let count, let context) where request.truncatePrompt {
            notices.append("the negative prompt is \(count) tokens long; only its first \(context - 2) tokens are used")
        } catch ClipTokenizerError.promptTooLong(let count, let context) {
            throw EditError.badInput("the negative prompt is \(count) tokens long, counting the start and end markers, but the text encoder"
                + " reads at most \(context): shorten it, or \(turnOn: "truncatePrompt") to keep its first \(context - 2) tokens")
        }
        let model = try StableDiffusionLoader.nativeImageSize(path: request.models.stableDiffusion, options: loadOptions(request))
        if request.checksMemory, let estimate = EditPipeline.memoryEstimate(request, modelSize: model.size, stableDiffusion: model.info),
           let available = request.availableMemoryBytes ?? EditMemory.availableBytes() {
            try EditMemory.check(estimate, available: available)
        }
        let geometry = try EditPipeline.resolveGeometry(mask: shared.fullMask, photo: shared.photo.size, options: request.maskOptions,
                                                        modelSize: model.size, latentScale: model.latentScale)
        notices += EditPipeline.geometryNotices(geometry, options: request.maskOptions, enforcesBackground: request.settings.pastesBackground,
                                                wording: request.wording)
        return CheckedEdit(photo: shared.photo, softMask: shared.softMask, tokens: shared.tokens, editedFraction: shared.editedFraction,
                           notices: notices, geometry: geometry, preloadedUNet: nil, loadSeconds: 0,
                           latentModel: (model.info, model.predictionType), vocabularySize: shared.tokenizer.vocabularySize)
    }

    static func loadOptions(_ request: EditRequest) -> StableDiffusionLoadOptions {
        StableDiffusionLoadOptions(predictionType: request.latent.predictionType, configFolder: request.models.stableDiffusionConfig)
    }

    static func load(_ request: EditRequest, checked: CheckedEdit, note: @escaping (String) -> Void) throws -> any LoadedEditMethod {
        let models = request.models
        let options = loadOptions(request)
        // The generator first (kept from an earlier job with the same file and options).
        let sd = try KeptModels.shared.stableDiffusion(path: models.stableDiffusion, options: options, note: note) {
            try StableDiffusionLoader.load(path: models.stableDiffusion, options: options, note: $0)
        }
        let clip = try EditPipeline.loadRankingCLIP(request, checked: checked, note: note)
        try ModelLoader.requireVocabulary(size: checked.vocabularySize, of: models.clipVocabulary,
                                          rows: sd.textEncoder.config.vocabSize, model: models.stableDiffusion)
        let tokenizer = try ClipTokenizer(vocabularyFile: models.clipVocabulary)
        let editor = try BlendedLatentDiffusionEditor(
            denoiser: sd.denoiser, autoencoder: sd.autoencoder,
            solver: sd.makeSolver(request.latent.scheduler, steps: request.latent.steps),
            settings: EditPipeline.latentEditSettings(request.latent, request.settings))
        return BlendedLatentDiffusionMethod(
            editor: editor, ranking: ClipRanking(clip: clip),
            context: try sd.context(for: request.settings.prompt, tokenizer: tokenizer),
            unconditionalContext: try sd.context(for: request.latent.negativePrompt, tokenizer: tokenizer))
    }
}

/// Blended Diffusion and the local-CLIP baseline: the guided pixel-space editor, which ranks
/// its own samples with its CLIP.
struct BlendedDiffusionMethod: LoadedEditMethod {
    let editor: BlendedDiffusionEditor

    func edit(image: Tensor, mask: Tensor, tokens: [Int], indices: [Int],
              progress: (EditProgress) throws -> Void,
              reconstruction: (ReconstructionProgress) throws -> Void,
              finished: (EditedSample, Float) throws -> Void) throws {
        let text = try editor.promptEmbedding(tokens: tokens)
        _ = try editor.edit(image: image, mask: mask, promptEmbedding: text, sampleIndices: indices, progress: progress) { sample in
            // The pixel editor always ranks (EditedSample.distance is set).
            try finished(sample, sample.distance ?? .nan)
        }
    }
}

/// Blended Latent Diffusion on a Stable Diffusion model; CLIP ranks the decoded samples.
struct BlendedLatentDiffusionMethod: LoadedEditMethod {
    let editor: BlendedLatentDiffusionEditor
    let ranking: ClipRanking
    /// The prompt's and the negative prompt's text-encoder states, `[1, L, D]`.
    let context: Tensor
    let unconditionalContext: Tensor

    func edit(image: Tensor, mask: Tensor, tokens: [Int], indices: [Int],
              progress: (EditProgress) throws -> Void,
              reconstruction: (ReconstructionProgress) throws -> Void,
              finished: (EditedSample, Float) throws -> Void) throws {
        let text = try ranking.promptEmbedding(tokens: tokens)
        _ = try editor.edit(image: image, mask: mask, context: context, unconditionalContext: unconditionalContext,
                            sampleIndices: indices, progress: progress, reconstruction: reconstruction) { sample in
            var sample = sample
            // A decoded latent is not clamped by the decoder; the paste-back needs [−1, 1].
            sample.image = sample.image.clamped(min: -1, max: 1)
            try finished(sample, ranking.distance(sample.image, mask: mask, text: text))
        }
    }
}
