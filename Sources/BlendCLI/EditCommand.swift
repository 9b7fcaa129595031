import ArgumentParser
import BlendDiffusion
import BlendEditor
import BlendImage
import BlendModels
import BlendPipeline
import BlendTensor
import Foundation
import Synchronization

/// `blend edit`: Blended Diffusion (pixel) or Blended Latent Diffusion (latent) on a photo, a mask and a prompt.
struct Edit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Edit the masked region of a photo to match a text prompt.",
        discussion: """
            Each run writes into its own folder OUT/runs/<id>/, and OUT/latest points at the newest \
            finished one: samples/ (each edit at the photo's full resolution, written as soon as it \
            is done), ranked/ (the same, best first, named by rank and CLIP distance; outside the \
            mask every pixel is the original's), contact_sheet.png and report.json (settings, seed, \
            region, per-sample distances, timings). An interrupted run keeps its finished samples: \
            run the same command with --resume to make only the rest.

            Methods (--method): pixel (Blended Diffusion at 256x256: guided-diffusion's UNet steered \
            by CLIP gradients; slow; defaults of the reference, omriav/blended-diffusion), latent \
            (Blended Latent Diffusion at 512x512, or 768 for v-models, on a Stable Diffusion 1.x/2.x \
            checkpoint, no gradients, much faster; --sd-model, --scheduler, --strength, \
            --guidance-scale, --negative-prompt ...), local-clip (the paper's baseline, on the pixel \
            method's models). Each option's help names the methods it applies to when it does not \
            apply to all; given with another method it is refused. Every method ranks its results \
            with CLIP ViT-B/16.

            Masks: white (above --mask-threshold, default 50 %) edits, black keeps; a mask whose \
            transparency is the drawing (uniform colours, or a photo with the region erased) edits \
            its transparent pixels instead (--mask-from chooses); with no --mask, a photo's own \
            transparent area is edited. A mask of another pixel size with the photo's aspect ratio \
            is resized to the photo.

            Model files are read from the model cache unless given: get them with
              blend models download 256x256_diffusion_uncond
              blend models download ViT-B-16
              blend models download clip-vocab
            (and vgg16, lpips-vgg for --method local-clip; stable-diffusion-v1-5 for --method latent).
            A missing file is named with the others the method needs, each with its download and the \
            option that gives its path; every setting is checked before the model files.

            Exit status: 0 done; 64 a usage error (an unknown option, a bad value, an option of \
            another method: nothing was read); 1 a failure at run time (a missing or unreadable photo, \
            mask or model file, an unusable mask, an output folder in use, too little memory); 130 \
            interrupted (Ctrl-C; finished samples are kept for --resume).
            """)

    @Argument(help: ArgumentHelp("The photo to edit (PNG or JPEG).", valueName: "image"))
    var image: String

    @Option(help: ArgumentHelp("Mask image of the region to change: white edits, black keeps (or transparent edits, where its transparency is the drawing; see --mask-from). Same aspect ratio as the photo. Default: the photo's transparent area.", valueName: "file"))
    var mask: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Share of white above which a mask pixel is edited (0 = any non-black pixel, the reference's rule).", valueName: "0..1"))
    var maskThreshold: Float = 0.5

    @Option(help: ArgumentHelp("Part of the photo the model edits: auto (the mask's box with context, as a square), full (the whole photo), or X,Y,W,H in photo pixels.", valueName: "region"))
    var region: EditRegion = .auto

    @Option(parsing: .unconditional, help: ArgumentHelp("Context around the mask's box for --region auto, in photo pixels (default: a quarter of the box's longer side).", valueName: "px"))
    var regionPadding: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("Fade the edit into the photo over this many pixels inside the mask (0: hard edge; shorter where a marked area is narrower than twice this). Outside the mask the photo is never changed.", valueName: "px"))
    var feather = 4

    @Option(help: ArgumentHelp("Which channel of a mask image with transparency is the mask: auto (its transparency where that is the drawing, else its brightness), brightness (white edits), alpha (transparent edits).", valueName: "auto|brightness|alpha"))
    var maskFrom: MaskChannel = .auto

    @Option(help: ArgumentHelp("What the masked region should become, e.g. \"a red ball\".", valueName: "text"))
    var prompt: String

    @Option(help: ArgumentHelp("Output directory.", valueName: "dir"))
    var out = "output"

    @Option(parsing: .unconditional, help: ArgumentHelp("Number of edits to make (default: 32 for pixel, as the reference's 4 x 8; 4 for latent).", valueName: "n"))
    var samples: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("Edits made together in one diffusion run (default: 4 for pixel, 1 for latent).", valueName: "n"))
    var batch: Int?

    @Option(help: ArgumentHelp("pixel and local-clip: " + PixelOptions.description(.timestepRespacing).help
        + " latent: " + LatentOptions.help(.steps), valueName: "steps"))
    var steps: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Random seed: the same seed gives the same edits; random (or -1) picks one (printed and recorded).", valueName: "n|random"))
    var seed: SeedChoice = .fixed(404)

    @Flag(help: "Edit outside the mask instead (background replacement).")
    var invertMask = false

    @Option(help: ArgumentHelp("pixel (Blended Diffusion; also called blended), latent (Blended Latent Diffusion on Stable Diffusion), or local-clip (the paper's baseline: no blending, background losses).", valueName: "method"))
    var method: EditMethod = .blended

    @Flag(inversion: .prefixedNo, help: "Paste the clean source background back at the end (pixel and latent; default: on; local-clip never pastes).")
    var enforceBackground: Bool?

    @Option(help: ArgumentHelp("Arithmetic of the diffusion model's convolutions: fp32 (the reference) or bf16 (faster on CPUs with AVX512_BF16 or AMX; elsewhere fp32 is used, with a note). Recorded in report.json.", valueName: "fp32|bf16"))
    var precision: ComputePrecision = .fp32

    @OptionGroup(title: "Pixel methods (--method pixel, local-clip)") var pixel: PixelOptionGroup

    @OptionGroup(title: "Latent method (--method latent)") var latent: LatentOptionGroup

    @OptionGroup var modelFiles: ModelFileOptions

    @OptionGroup var threadOptions: ThreadOptions

    @Option(parsing: .unconditional, help: ArgumentHelp("Largest photo or mask, in megapixels: a bigger one is refused from its header before it is decoded.", valueName: "MP"))
    var maxMegapixels = 100

    @Flag(help: "Start even when the memory available is clearly less than the edit is estimated to need.")
    var skipMemoryCheck = false

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
        if (samples ?? 1) < 1 || (batch ?? 1) < 1 { throw ValidationError("--samples and --batch must be at least 1") }
        try checkMethodOptions()
        try validateMegapixels(maxMegapixels)
        // Every value's range and combination, before any file is read: a bad value is a usage
        // error (exit 64), also where the photo or the model files are missing.
        do {
            try EditPipeline.validateSettings(try request())
        } catch let error as EditError {
            throw ValidationError(String(describing: error))
        } catch let error as MaskError {
            throw ValidationError(String(describing: error))
        }
    }

    /// `--method`'s name for `method` as the help spells it (Blended Diffusion is `pixel`).
    static func name(of method: EditMethod) -> String { method.name(in: .commandLine) }

    /// Refuses an option that does not apply to the chosen method, naming the methods it
    /// belongs to (one line: the first such option).
    func checkMethodOptions() throws {
        let pixelMethods = EditMethod.pixelMethods, latentMethod: Set<EditMethod> = [.latent]
        // Which method each option belongs to: the option groups (the settings types) say.
        let options: [(name: String, given: Bool, methods: Set<EditMethod>)] =
            pixel.givenFlags.map { ($0.flag, true, $0.methods) } + latent.givenFlags.map { ($0, true, latentMethod) } + [
            ("--diffusion-model", modelFiles.diffusionModel != nil, pixelMethods),
            ("--diffusion-config", modelFiles.diffusionConfig != nil, pixelMethods),
            (enforceBackground == false ? "--no-enforce-background" : "--enforce-background", enforceBackground != nil, EditMethod.enforceBackgroundMethods),
            ("--sd-model", modelFiles.sdModel != nil, latentMethod), ("--sd-config", modelFiles.sdConfig != nil, latentMethod),
        ]
        if let option = options.first(where: { $0.given && !$0.methods.contains(method) }) {
            let owners = EditMethod.allCases.filter(option.methods.contains).map(Self.name(of:))
            let owner = option.methods == pixelMethods ? "the pixel methods (--method pixel or local-clip)"
                : "--method " + owners.joined(separator: " or ")
            throw ValidationError("\(option.name) is an option of \(owner), not of --method \(Self.name(of: method)):"
                + " leave it out, or use --method \(owners[0])")
        }
        if method == .latent, let steps, Int(steps) == nil {
            throw ValidationError("--steps must be a whole number of solver steps (1 to 1000) for --method latent, got \(steps)")
        }
    }

    func request() throws -> EditRequest {
        let latent = method == .latent
        var settings = EditSettings(prompt: prompt)
        settings.method = method
        let samples = samples ?? (latent ? 4 : 32)
        settings.samples = samples
        settings.batchSize = min(batch ?? (latent ? 1 : 4), samples)
        if case let .fixed(value) = seed { settings.seed = value }
        settings.invertMask = invertMask
        settings.enforceBackground = enforceBackground ?? true
        if !latent { settings.pixel = pixel.options(steps: steps) }
        var request = EditRequest(imagePath: image, maskPath: mask, outputDirectory: out, settings: settings, models: try modelFiles.paths())
        if latent { request.latent = self.latent.options(steps: steps) }
        request.saveIntermediates = pixel.saveIntermediates
        request.maskOptions = MaskOptions(threshold: maskThreshold, region: region, regionPadding: regionPadding, feather: feather,
                                          channel: maskFrom)
        request.resume = resume
        request.truncatePrompt = truncatePrompt
        request.randomSeed = seed == .random
        request.precision = precision
        request.maximumPixels = maxMegapixels * 1_000_000
        request.checksMemory = !skipMemoryCheck
        return request
    }

    func run() throws {
        threadOptions.apply()
        let request = try request()
        let bar = ProgressBar(label: "editing", plainStep: 0)
        var estimate = EditTimeEstimate()
        var runDirectory: String?
        var finished = 0
        var barFraction = 0.0
        let interrupt = InterruptSignal.install()
        defer { interrupt.uninstall() }
        /// The time left; "+ background reconstruction" until a reconstruction step was timed.
        func eta() -> String {
            duration(estimate.secondsLeft ?? .nan) + (estimate.reconstructionUntimed ? " + background reconstruction" : "")
        }
        func say(_ text: String) {
            guard !quiet else { return }
            FileHandle.standardError.write(Data((text + "\n").utf8))
        }
        let report: EditReport
        do {
            report = try EditPipeline.run(request) { event in
                if interrupt.isSet { throw CancellationError() }
                estimate.observe(event)
                switch event {
                case .checkedInputs, .loadingModels:
                    if case .loadingModels = event { say("loading models... (\(ThreadOptions.summary))") }
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
                case let .step(p):
                    guard !quiet else { return }
                    let loss = p.guidance.map { ", clip loss \(String(format: "%.3f", $0.clip))" } ?? ""
                    barFraction = Double(p.completedSteps) / Double(p.totalSteps)
                    bar.show(fraction: barFraction,
                             detail: "step \(p.step)/\(p.steps) of run \(p.iteration + 1)/\(p.iterations), ETA \(eta())\(loss)")
                case let .reconstructionStep(r):
                    guard !quiet else { return }
                    bar.show(fraction: barFraction, detail: "reconstructing the background of sample \(r.sample + 1):"
                        + " step \(r.step)/\(r.steps), loss \(String(format: "%.4f", r.loss)), ETA \(eta())")
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
        print("wrote \(report.samples.count) edit\(report.samples.count == 1 ? "" : "s") to \(latest)/ranked (best: \(report.samples.first.map { String(format: "%.4f", $0.distance) } ?? "-"))")
        print("contact sheet: \(latest)/contact_sheet.png, report: \(latest)/report.json (run \(report.runId))")
    }
}

extension EditMethod: ExpressibleByArgument {
    /// `pixel` is the user-facing name of Blended Diffusion (`blended`).
    public init?(argument: String) {
        self.init(name: argument)
    }

    public static var allValueStrings: [String] { EditMethod.acceptedNames }
}

extension LatentSolverKind: ExpressibleByArgument {}
extension LatentInit: ExpressibleByArgument {}
extension BlendLevel: ExpressibleByArgument {}

extension PredictionType: ExpressibleByArgument {
    public init?(argument: String) {
        switch argument {
        case "epsilon", "eps": self = .epsilon
        case "v", "v_prediction", "v-prediction": self = .vPrediction
        default: return nil
        }
    }

    public static var allValueStrings: [String] { ["epsilon", "v"] }
}

/// `--precision`: fp32 or bf16 (bf16-rounded, which only measures bf16's accuracy, is not offered).
extension ComputePrecision: ExpressibleByArgument {
    public init?(argument: String) {
        guard let value = ComputePrecision(rawValue: argument), value != .bf16Rounded else { return nil }
        self = value
    }

    public static var allValueStrings: [String] { [ComputePrecision.fp32.rawValue, ComputePrecision.bf16.rawValue] }
}
extension EditRegion: ExpressibleByArgument {}
extension MaskChannel: ExpressibleByArgument {}

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
