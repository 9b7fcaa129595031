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
/// (a ``BatchSampler``), a type conforming to this protocol, and one case in
/// ``EditPipeline/loadMethod(_:checked:note:)``.
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

extension EditPipeline {
    /// Loads the models of `request`'s method (reusing the UNet ``check(_:)`` loaded to learn
    /// its size, and the Stable Diffusion model kept from an earlier job), checks the prompt's
    /// vocabulary against them, and returns the method ready to edit. `note` hears what the
    /// loaders say about the files.
    /// - Throws: ``ModelLoadingError`` for unreadable or mismatched model files.
    static func loadMethod(_ request: EditRequest, checked: CheckedEdit, note: @escaping (String) -> Void) throws -> any LoadedEditMethod {
        let models = request.models
        func loadCLIP() throws -> ClipModel {
            let clip = try ModelLoader.clip(path: models.clip, note: note)
            try ModelLoader.requireVocabulary(size: checked.vocabularySize, of: models.clipVocabulary, fits: clip, at: models.clip)
            return clip
        }
        // Each method loads its generator first: the largest file, and the one a mistake is most likely in.
        switch request.settings.method {
        case .blended, .localClip:
            let settings = request.settings
            let unet = try checked.preloadedUNet ?? ModelLoader.unet(path: models.diffusion, config: models.diffusionConfig, note: note)
            let clip = try loadCLIP()
            let lpips = settings.method == .localClip && settings.pixel.lpipsSimLambda != 0
                ? try ModelLoader.lpips(vggPath: models.vgg16, linearPath: models.lpipsLinear, note: note) : nil
            // The editor gets the mask already inverted.
            var editorSettings = settings
            editorSettings.invertMask = false
            let editor = try BlendedDiffusionEditor(models: EditorModels(unet: unet, clip: clip, lpips: lpips), settings: editorSettings)
            return BlendedDiffusionMethod(editor: editor)
        case .latent:
            let options = latentLoadOptions(request)
            let sd = try KeptModels.shared.stableDiffusion(path: models.stableDiffusion, options: options, note: note) {
                try StableDiffusionLoader.load(path: models.stableDiffusion, options: options, note: $0)
            }
            let clip = try loadCLIP()
            try ModelLoader.requireVocabulary(size: checked.vocabularySize, of: models.clipVocabulary,
                                              rows: sd.textEncoder.config.vocabSize, model: models.stableDiffusion)
            let tokenizer = try ClipTokenizer(vocabularyFile: models.clipVocabulary)
            let editor = try BlendedLatentDiffusionEditor(
                denoiser: sd.denoiser, autoencoder: sd.autoencoder,
                solver: sd.makeSolver(request.latent.scheduler, steps: request.latent.steps),
                settings: latentEditSettings(request.latent, request.settings))
            return BlendedLatentDiffusionMethod(
                editor: editor, ranking: ClipRanking(clip: clip),
                context: try sd.context(for: request.settings.prompt, tokenizer: tokenizer),
                unconditionalContext: try sd.context(for: request.latent.negativePrompt, tokenizer: tokenizer))
        }
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
