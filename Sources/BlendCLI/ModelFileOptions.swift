import ArgumentParser
import BlendModels
import BlendPipeline
import Foundation

/// The model-file options `blend edit` and `blend serve` share, and their conversion to the
/// pipeline's ``EditModelPaths``.
struct ModelFileOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Model cache directory, where blend models download puts the official files (default: $BLEND_MODELS_DIR, else $XDG_CACHE_HOME/blend/models, else ~/.cache/blend/models).", valueName: "dir"))
    var modelsDir: String?

    @Option(help: ArgumentHelp("Diffusion checkpoint of the pixel and local-clip methods (default: 256x256_diffusion_uncond.pt in the model cache).", valueName: "file"))
    var diffusionModel: String?

    @Option(help: ArgumentHelp("JSON config for a diffusion checkpoint that is not an official one (guided-diffusion flag names; pixel and local-clip).", valueName: "file"))
    var diffusionConfig: String?

    @Option(help: ArgumentHelp("CLIP checkpoint, which ranks the results of every method (default: ViT-B-16.pt in the model cache).", valueName: "file"))
    var clipModel: String?

    @Option(help: ArgumentHelp("CLIP's BPE vocabulary, also Stable Diffusion's (default: bpe_simple_vocab_16e6.txt.gz in the model cache).", valueName: "file"))
    var clipVocab: String?

    @Option(name: .customLong("sd-model"), help: ArgumentHelp("Stable Diffusion 1.x/2.x model of the latent method (latent only): a .safetensors/.ckpt single file or a diffusers folder (default: v1-5-pruned-emaonly.safetensors in the model cache).", valueName: "path"))
    var sdModel: String?

    @Option(name: .customLong("sd-config"), help: ArgumentHelp("Latent only: for an SD single file with unusual shapes, a diffusers folder whose unet/, vae/, text_encoder/ config.json describe it.", valueName: "dir"))
    var sdConfig: String?

    /// The files to read: the model cache's official ones, replaced by any given.
    /// - Throws: `ValidationError` for an unreadable `--diffusion-config`.
    func paths() throws -> EditModelPaths {
        let files = modelsDir.map { ModelFiles(directory: URL(fileURLWithPath: $0, isDirectory: true)) } ?? .standard()
        var models = EditModelPaths.standard(files)
        if let diffusionModel { models.diffusion = diffusionModel }
        if let clipModel { models.clip = clipModel }
        if let clipVocab { models.clipVocabulary = clipVocab }
        if let sdModel { models.stableDiffusion = sdModel }
        models.stableDiffusionConfig = sdConfig
        if let diffusionConfig {
            do {
                models.diffusionConfig = try ConfigFile.unet(path: diffusionConfig)
            } catch let error as ConfigFileError {
                throw ValidationError("\(error) (--diffusion-config)")
            }
        }
        return models
    }
}
