import ArgumentParser
import BlendEditor
import BlendModels
import BlendPipeline
import Foundation

/// `blend edit`: Blended Diffusion on a photo, a mask and a prompt.
struct Edit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Edit the masked region of a photo to match a text prompt.",
        discussion: """
            Writes into the output directory: ranked/ (the edits at the photo's full resolution, best \
            first, named by rank and CLIP distance; outside the mask every pixel is the original's), \
            contact_sheet.png (source | mask | results with their distances) and report.json \
            (settings, seed, per-sample distances, timings). Defaults are those of the reference \
            implementation (omriav/blended-diffusion).

            Model files are read from the model cache unless given: get them with
              blend models download 256x256_diffusion_uncond
              blend models download ViT-B-16
              blend models download clip-vocab
            (and vgg16, lpips-vgg for --method local-clip).
            """)

    @Argument(help: ArgumentHelp("The photo to edit (PNG or JPEG).", valueName: "image"))
    var image: String

    @Option(help: ArgumentHelp("Mask image of the region to change: white (> 0.5) edits, black keeps. Same aspect ratio as the photo.", valueName: "file"))
    var mask: String

    @Option(help: ArgumentHelp("What the masked region should become, e.g. \"a red ball\".", valueName: "text"))
    var prompt: String

    @Option(help: ArgumentHelp("Output directory.", valueName: "dir"))
    var out = "output"

    @Option(help: "Number of edits to make (the reference makes 4 x 8).")
    var samples = 32

    @Option(help: "Edits made together in one diffusion run.")
    var batch = 4

    @Option(help: ArgumentHelp("Timestep respacing of the 1000-step process: a count (\"100\"), a comma list, or ddimN.", valueName: "spacing"))
    var steps = "100"

    @Option(help: "Steps skipped at the start: higher keeps more of the source's layout.")
    var skip = 25

    @Flag(help: "Sample with DDIM (score conditioning) instead of DDPM.")
    var ddim = false

    @Option(help: "Random seed: the same seed gives the same edits.")
    var seed: UInt64 = 404

    @Flag(help: "Edit outside the mask instead (background replacement).")
    var invertMask = false

    @Option(help: ArgumentHelp("blended (Blended Diffusion) or local-clip (the paper's baseline: no blending, background losses).", valueName: "method"))
    var method: EditMethod = .blended

    @Option(help: "Weight of the CLIP guidance.")
    var clipLambda: Float = 1000

    @Option(help: "Weight of the range loss that keeps values in [-1, 1].")
    var rangeLambda: Float = 50

    @Option(help: "Weight of the LPIPS background loss (local-clip only).")
    var lpipsLambda: Float = 1000

    @Option(help: "Weight of the L2 background loss (local-clip only).")
    var l2Lambda: Float = 10000

    @Option(help: "Images CLIP sees per sample and step: one plain resize plus N-1 random warps.")
    var augmentations = 8

    @Flag(inversion: .prefixedNo, help: "Paste the clean source background back at the end (blended only).")
    var enforceBackground = true

    @Option(help: ArgumentHelp("Diffusion checkpoint (default: 256x256_diffusion_uncond.pt in the model cache).", valueName: "file"))
    var diffusionModel: String?

    @Option(help: ArgumentHelp("JSON config for a diffusion checkpoint that is not an official one (guided-diffusion flag names).", valueName: "file"))
    var diffusionConfig: String?

    @Option(help: ArgumentHelp("CLIP checkpoint (default: ViT-B-16.pt in the model cache).", valueName: "file"))
    var clipModel: String?

    @Option(help: ArgumentHelp("CLIP's BPE vocabulary (default: bpe_simple_vocab_16e6.txt.gz in the model cache).", valueName: "file"))
    var clipVocab: String?

    @Option(help: ArgumentHelp("Model cache directory (default: $BLEND_MODELS_DIR, else $XDG_CACHE_HOME/blend/models, else ~/.cache/blend/models).", valueName: "dir"))
    var modelsDir: String?

    @Flag(help: "Also save every sample's x0 prediction at a fifth of the steps, in intermediates/.")
    var saveIntermediates = false

    @Flag(name: .shortAndLong, help: "Print only errors.")
    var quiet = false

    func validate() throws {
        if prompt.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("the prompt is empty: say what the masked region should become")
        }
        if samples < 1 || batch < 1 { throw ValidationError("--samples and --batch must be at least 1") }
        if augmentations < 1 { throw ValidationError("--augmentations must be at least 1") }
    }

    func request() throws -> EditRequest {
        var settings = EditSettings(prompt: prompt)
        settings.method = method
        settings.timestepRespacing = steps
        settings.skipTimesteps = skip
        settings.ddim = ddim
        settings.samples = samples
        settings.batchSize = min(batch, samples)
        settings.seed = seed
        settings.clipGuidanceLambda = clipLambda
        settings.rangeLambda = rangeLambda
        settings.lpipsSimLambda = lpipsLambda
        settings.l2SimLambda = l2Lambda
        settings.augmentations = augmentations
        settings.invertMask = invertMask
        settings.enforceBackground = enforceBackground
        let files = modelsDir.map { ModelFiles(directory: URL(fileURLWithPath: $0, isDirectory: true)) } ?? .standard()
        var models = EditModelPaths.standard(files)
        if let diffusionModel { models.diffusion = diffusionModel }
        if let clipModel { models.clip = clipModel }
        if let clipVocab { models.clipVocabulary = clipVocab }
        if let diffusionConfig {
            do {
                models.diffusionConfig = try JSONDecoder().decode(UNetConfig.self, from: Data(contentsOf: URL(fileURLWithPath: diffusionConfig)))
            } catch {
                throw ValidationError("cannot read the diffusion config \(diffusionConfig): \(error)")
            }
        }
        var request = EditRequest(imagePath: image, maskPath: mask, outputDirectory: out, settings: settings, models: models)
        request.saveIntermediates = saveIntermediates
        return request
    }

    func run() throws {
        let request = try request()
        let bar = ProgressBar(label: "editing", plainStep: 0)
        var editStart = Date()
        let report = try EditPipeline.run(request) { event in
            guard !quiet else { return }
            switch event {
            case .checkedInputs:
                break
            case .loadingModels:
                FileHandle.standardError.write(Data("loading models...\n".utf8))
            case let .loadedModels(seconds):
                FileHandle.standardError.write(Data(String(format: "models loaded in %.1f s\n", seconds).utf8))
                editStart = Date()
            case let .step(p):
                let done = Double(p.completedSteps), total = Double(p.totalSteps)
                let elapsed = Date().timeIntervalSince(editStart)
                let eta = done > 0 ? elapsed / done * (total - done) : .nan
                bar.show(fraction: done / total,
                         detail: "step \(p.step)/\(p.steps) of run \(p.iteration + 1)/\(p.iterations), ETA \(duration(eta)), clip loss \(String(format: "%.3f", p.clipLoss))")
            case .wroteOutputs:
                bar.finish()
            }
        }
        guard !quiet else { return }
        print("wrote \(report.samples.count) edits to \(request.outputDirectory)/ranked (best: \(report.samples.first.map { String(format: "%.4f", $0.distance) } ?? "-"))")
        print("contact sheet: \(request.outputDirectory)/contact_sheet.png, report: \(request.outputDirectory)/report.json")
    }
}

extension EditMethod: ExpressibleByArgument {}
