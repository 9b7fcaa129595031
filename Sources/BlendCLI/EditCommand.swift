import ArgumentParser
import BlendEditor
import BlendImage
import BlendModels
import BlendPipeline
import BlendTensor
import Foundation
import Synchronization

/// `blend edit`: Blended Diffusion on a photo, a mask and a prompt.
struct Edit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Edit the masked region of a photo to match a text prompt.",
        discussion: """
            Each run writes into its own folder OUT/runs/<id>/, and OUT/latest points at the newest \
            finished one: samples/ (each edit at the photo's full resolution, written as soon as it \
            is done), ranked/ (the same, best first, named by rank and CLIP distance; outside the \
            mask every pixel is the original's), contact_sheet.png and report.json (settings, seed, \
            region, per-sample distances, timings). An interrupted run keeps its finished samples: \
            run the same command with --resume to make only the rest. Defaults are those of the \
            reference implementation (omriav/blended-diffusion).

            Masks: white (above --mask-threshold, default 50 %) edits, black keeps; a mask with \
            transparency edits its transparent pixels instead; with no --mask, a photo's own \
            transparent area is edited. A mask of another pixel size with the photo's aspect ratio \
            is resized to the photo.

            Model files are read from the model cache unless given: get them with
              blend models download 256x256_diffusion_uncond
              blend models download ViT-B-16
              blend models download clip-vocab
            (and vgg16, lpips-vgg for --method local-clip).
            """)

    @Argument(help: ArgumentHelp("The photo to edit (PNG or JPEG).", valueName: "image"))
    var image: String

    @Option(help: ArgumentHelp("Mask image of the region to change: white edits, black keeps (or transparent edits, if it has transparency). Same aspect ratio as the photo. Default: the photo's transparent area.", valueName: "file"))
    var mask: String?

    @Option(help: ArgumentHelp("Share of white above which a mask pixel is edited (0 = any non-black pixel, the reference's rule).", valueName: "0..1"))
    var maskThreshold: Float = 0.5

    @Option(help: ArgumentHelp("Part of the photo the model edits: auto (the mask's box with context, as a square), full (the whole photo), or X,Y,W,H in photo pixels.", valueName: "region"))
    var region: EditRegion = .auto

    @Option(help: ArgumentHelp("Context around the mask's box for --region auto, in photo pixels (default: a quarter of the box's longer side).", valueName: "px"))
    var regionPadding: Int?

    @Option(help: ArgumentHelp("Fade the edit into the photo over this many pixels inside the mask (0: hard edge). Outside the mask the photo is never changed.", valueName: "px"))
    var feather = 4

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

    @Option(parsing: .unconditional, help: ArgumentHelp("Random seed: the same seed gives the same edits; -1 picks a random one (printed and recorded).", valueName: "n"))
    var seed = "404"

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

    @Option(help: ArgumentHelp("Arithmetic of the diffusion model's convolutions: fp32 (the reference) or bf16 (faster on CPUs with AVX512_BF16 or AMX; elsewhere fp32 is used, with a note). Recorded in report.json.", valueName: "fp32|bf16"))
    var precision: ComputePrecision = .fp32

    @Flag(help: "Also save every sample's x0 prediction at a fifth of the steps, in intermediates/.")
    var saveIntermediates = false

    @Flag(help: "Continue the interrupted run of the same command in --out: keep its finished samples, make the rest.")
    var resume = false

    @Flag(help: "Keep the first 75 tokens of a prompt longer than CLIP reads, instead of stopping.")
    var truncatePrompt = false

    @Flag(name: .shortAndLong, help: "Print only errors.")
    var quiet = false

    func validate() throws {
        if prompt.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("the prompt is empty: say what the masked region should become")
        }
        if samples < 1 || batch < 1 { throw ValidationError("--samples and --batch must be at least 1") }
        if augmentations < 1 { throw ValidationError("--augmentations must be at least 1") }
        if seed != "-1" && UInt64(seed) == nil {
            throw ValidationError("--seed must be a whole number from 0 to \(UInt64.max), or -1 for a random seed; got \(seed)")
        }
    }

    func request() throws -> EditRequest {
        var settings = EditSettings(prompt: prompt)
        settings.method = method
        settings.timestepRespacing = steps
        settings.skipTimesteps = skip
        settings.ddim = ddim
        settings.samples = samples
        settings.batchSize = min(batch, samples)
        settings.seed = UInt64(seed) ?? 0
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
                models.diffusionConfig = try ConfigFile.unet(path: diffusionConfig)
            } catch let error as ConfigFileError {
                throw ValidationError("\(error) (--diffusion-config)")
            }
        }
        var request = EditRequest(imagePath: image, maskPath: mask, outputDirectory: out, settings: settings, models: models)
        request.saveIntermediates = saveIntermediates
        request.maskOptions = MaskOptions(threshold: maskThreshold, region: region, regionPadding: regionPadding, feather: feather)
        request.resume = resume
        request.truncatePrompt = truncatePrompt
        request.randomSeed = seed == "-1"
        request.precision = precision
        return request
    }

    func run() throws {
        let request = try request()
        let bar = ProgressBar(label: "editing", plainStep: 0)
        var editStart = Date()
        var runDirectory: String?
        var finished = 0
        let interrupt = InterruptSignal.install()
        defer { interrupt.uninstall() }
        func say(_ text: String) {
            guard !quiet else { return }
            FileHandle.standardError.write(Data((text + "\n").utf8))
        }
        let report: EditReport
        do {
            report = try EditPipeline.run(request) { event in
                if interrupt.isSet { throw CancellationError() }
                switch event {
                case .checkedInputs, .loadingModels:
                    if case .loadingModels = event { say("loading models...") }
                case let .notice(text):
                    // Warnings show even with --quiet.
                    if !quiet || text.hasPrefix("warning") { FileHandle.standardError.write(Data((text + "\n").utf8)) }
                case let .planned(plan):
                    runDirectory = plan.runDirectory
                    finished = plan.resumedSamples.count
                    let r = plan.region
                    say("editing the \(r.width)x\(r.height) region at (\(r.x), \(r.y)) at the model's \(plan.modelSize)x\(plan.modelSize);"
                        + " seed \(plan.seed); run folder \(plan.runDirectory)")
                case let .loadedModels(seconds):
                    say(String(format: "models loaded in %.1f s", seconds))
                    editStart = Date()
                case let .step(p):
                    guard !quiet else { return }
                    let done = Double(p.completedSteps), total = Double(p.totalSteps)
                    let elapsed = Date().timeIntervalSince(editStart)
                    let eta = done > 0 ? elapsed / done * (total - done) : .nan
                    bar.show(fraction: done / total,
                             detail: "step \(p.step)/\(p.steps) of run \(p.iteration + 1)/\(p.iterations), ETA \(duration(eta)), clip loss \(String(format: "%.3f", p.clipLoss))")
                case let .sampleFinished(sample):
                    finished = sample.finished
                case .wroteOutputs:
                    if !quiet { bar.finish() }
                }
            }
        } catch is CancellationError {
            if !quiet { bar.finish() }
            let kept = finished > 0 && runDirectory != nil
                ? "\(finished) finished sample(s) kept in \(runDirectory!); run the same command with --resume to continue"
                : "nothing was kept"
            FileHandle.standardError.write(Data("interrupted: \(kept)\n".utf8))
            throw ExitCode(130)
        }
        guard !quiet else { return }
        let latest = URL(fileURLWithPath: request.outputDirectory).appendingPathComponent("latest").path
        print("wrote \(report.samples.count) edits to \(latest)/ranked (best: \(report.samples.first.map { String(format: "%.4f", $0.distance) } ?? "-"))")
        print("contact sheet: \(latest)/contact_sheet.png, report: \(latest)/report.json (run \(report.runId))")
    }
}

extension EditMethod: ExpressibleByArgument {}

/// `--precision`: fp32 or bf16 (bf16-rounded, which only measures bf16's accuracy, is not offered).
extension ComputePrecision: ExpressibleByArgument {
    public init?(argument: String) {
        guard let value = ComputePrecision(rawValue: argument), value != .bf16Rounded else { return nil }
        self = value
    }

    public static var allValueStrings: [String] { [ComputePrecision.fp32.rawValue, ComputePrecision.bf16.rawValue] }
}
extension EditRegion: ExpressibleByArgument {}

/// Ctrl-C during an edit: the first asks the run to stop after the current step (keeping
/// finished samples for --resume, releasing the output folder); a second one quits at once.
/// The handler only touches an atomic counter and write(2), which are safe in a signal handler.
final class InterruptSignal: Sendable {
    var isSet: Bool { interruptCount.load(ordering: .relaxed) > 0 }

    static func install() -> InterruptSignal {
        interruptCount.store(0, ordering: .relaxed)
        signal(SIGINT) { _ in
            if interruptCount.add(1, ordering: .relaxed).oldValue > 0 { _exit(130) }
            let message: StaticString = "\nstopping after this step (Ctrl-C again to quit at once)...\n"
            _ = write(2, message.utf8Start, message.utf8CodeUnitCount)
        }
        return InterruptSignal()
    }

    func uninstall() {
        signal(SIGINT, SIG_DFL)
    }
}

private let interruptCount = Atomic<Int>(0)
