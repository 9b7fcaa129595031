import Foundation
import BlendCheckpoint
import BlendDiffusion
import BlendModels
import BlendPipeline
import BlendTensor

/// Whole tiny Stable Diffusion models in both layouts, put together in a temporary folder
/// from the UNet/VAE fixtures (scripts/make-sd-fixtures.py) and the text encoders, tokenizer
/// and scheduler configs made for them (scripts/make-sd-pipeline-fixtures.py): a diffusers
/// folder (SD 1.x's fp16, SD 2.x's sharded) and a CompVis single file (UNet, VAE and
/// `cond_stage_model.*` in one .safetensors) per version.
public struct TinyStableDiffusion: Sendable {
    static let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Tests")
    public static let parts = tests.appendingPathComponent("BlendPipelineTests/Fixtures/sd")
    public static let unetVAE = tests.appendingPathComponent("BlendModelsTests/Fixtures/sd")
    /// A CLIP BPE vocabulary file of the first 86 merges of the official one (header + 86 lines,
    /// gzip'd), whose ids fit the fixtures' 600-token text encoders: the pipeline's `--clip-vocab`.
    public static let vocabulary = parts.appendingPathComponent("vocab_86_merges.txt.gz").path
    /// The fixtures' vocabulary has 600 ids: bytes, their end-of-word forms, 86 merges, two specials.
    public static let tokenizer = try! ClipTokenizer(merges: [], mergeCount: 86)

    public let directory: URL

    /// The models in `folder` (by default a new temporary folder).
    public init(in folder: URL? = nil) throws {
        directory = folder ?? FileManager.default.temporaryDirectory.appendingPathComponent("blend-tiny-sd-\(UUID().uuidString)")
        let fm = FileManager.default
        try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        for v in ["sd1", "sd2"] {
            let folder = URL(fileURLWithPath: self.folder(v))
            try fm.copyItem(at: Self.unetVAE.appendingPathComponent("unet_vae_\(v)_diffusers"), to: folder)
            for part in ["text_encoder", "tokenizer", "scheduler"] {
                try fm.copyItem(at: Self.parts.appendingPathComponent("\(v)_diffusers/\(part)"), to: folder.appendingPathComponent(part))
            }
            try Self.merge([Self.unetVAE.appendingPathComponent(v == "sd1" ? "unet_vae_sd1.ckpt" : "unet_vae_sd2.safetensors").path,
                            Self.parts.appendingPathComponent("text_\(v)_compvis.safetensors").path],
                           into: singleFile(v))
        }
    }

    public func folder(_ variant: String) -> String { directory.appendingPathComponent("\(variant)_diffusers").path }
    public func singleFile(_ variant: String) -> String { directory.appendingPathComponent("tiny-\(variant).safetensors").path }
    public func path(_ variant: String, _ layout: StableDiffusionKeyLayout) -> String {
        layout == .diffusers ? folder(variant) : singleFile(variant)
    }

    /// One CompVis single file with every tensor of `files` (a .ckpt's `state_dict` unwrapped).
    public static func merge(_ files: [String], into path: String) throws {
        var tensors: [SafetensorsTensor] = []
        for file in files {
            let checkpoint = try CheckpointFile.load(path: file).modelWeights()
            for entry in checkpoint.entries {
                tensors.append(try SafetensorsTensor(name: entry.name, tensor: checkpoint.tensor(named: entry.name, convertingIntegers: true)))
            }
        }
        try SafetensorsWriter.write(tensors, to: URL(fileURLWithPath: path))
    }

    /// The whole model; single files take the tiny configs (8 groups, 2 heads) from the folder,
    /// as diffusers' `from_single_file(config=...)` does.
    public func load(_ variant: String, _ layout: StableDiffusionKeyLayout, predictionType: PredictionType? = nil) throws -> StableDiffusionModels {
        try StableDiffusionLoader.load(path: path(variant, layout),
                                       options: StableDiffusionLoadOptions(predictionType: predictionType,
                                                                           configFolder: layout == .compVis ? folder(variant) : nil))
    }
}

public let sharedTinySD: TinyStableDiffusion = {
    let models = try! TinyStableDiffusion()
    sharedTinySDDirectory = models.directory
    atexit { if let directory = sharedTinySDDirectory { try? FileManager.default.removeItem(at: directory) } }
    return models
}()
nonisolated(unsafe) var sharedTinySDDirectory: URL?


extension TinyStableDiffusion {
    /// The pipeline's model paths for `variant` ("sd1", "sd2") in `layout`: the tiny SD model
    /// (a single file with the folder's configs as `--sd-config`), `clip` for ranking, and the
    /// 86-merge vocabulary.
    public func editPaths(_ variant: String, _ layout: StableDiffusionKeyLayout, clip: EditModelPaths) -> EditModelPaths {
        var paths = clip
        paths.stableDiffusion = path(variant, layout)
        paths.stableDiffusionConfig = layout == .compVis ? folder(variant) : nil
        paths.clipVocabulary = Self.vocabulary
        return paths
    }
}
