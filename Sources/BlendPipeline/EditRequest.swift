import BlendDiffusion
import BlendEditor
import BlendImage
import BlendModels
import BlendTensor
import Foundation

/// The model files an edit reads.
public struct EditModelPaths: Codable, Equatable, Sendable {
    public var diffusion: String
    /// A JSON config for a diffusion checkpoint that is not an official one.
    public var diffusionConfig: UNetConfig?
    public var clip: String
    public var clipVocabulary: String
    /// LPIPS, for the local-CLIP baseline only.
    public var vgg16: String
    public var lpipsLinear: String
    /// The Stable Diffusion model of the latent method: a CompVis single file (`.safetensors`,
    /// `.ckpt`) or a diffusers folder.
    public var stableDiffusion: String
    /// For a single file whose networks differ from SD's usual shapes: a diffusers folder whose
    /// `unet/`, `vae/`, `text_encoder/` `config.json` describe them (`--sd-config`).
    public var stableDiffusionConfig: String?
    /// The model cache these paths default into (`--models-dir`): its files under official
    /// names are checked against the published sizes, as `blend models list` does (a wrong one
    /// is refused). Nil: no such check.
    public var cacheDirectory: String?

    public init(diffusion: String, diffusionConfig: UNetConfig? = nil, clip: String, clipVocabulary: String,
                vgg16: String, lpipsLinear: String, stableDiffusion: String = "", stableDiffusionConfig: String? = nil) {
        self.stableDiffusion = stableDiffusion
        self.stableDiffusionConfig = stableDiffusionConfig
        self.diffusion = diffusion
        self.diffusionConfig = diffusionConfig
        self.clip = clip
        self.clipVocabulary = clipVocabulary
        self.vgg16 = vgg16
        self.lpipsLinear = lpipsLinear
    }

    /// The official files in the model cache (`blend models download ...`).
    public static func standard(_ files: ModelFiles = .standard()) -> EditModelPaths {
        var paths = EditModelPaths(diffusion: files.diffusion256, diffusionConfig: nil, clip: files.clipViTB16,
                                   clipVocabulary: files.clipVocabulary, vgg16: files.vgg16, lpipsLinear: files.lpipsLinear,
                                   stableDiffusion: files.stableDiffusion15)
        paths.cacheDirectory = files.directory.path
        return paths
    }
}

/// The options of the latent method (Blended Latent Diffusion on a Stable Diffusion model),
/// described once: the same struct is `blend edit`'s latent options (``descriptions``: flag and
/// help), the web API's latent settings (its JSON keys are the flags in camel case: `steps`,
/// `scheduler`, `strength`, `guidanceScale`, `negativePrompt`, `predictionType`, `init`,
/// `blendLevel`, `maskDilations`, `reconstructBackground`), job.json's, and report.json's
/// `latent.options`. Defaults: issue #11 and SD's usual sampling (DPM-Solver++(2M), 25 steps,
/// strength 0.75, guidance 7.5).
public struct LatentOptions: Codable, Equatable, Sendable {
    /// `--scheduler`: DPM-Solver++(2M) or DDIM (η = 0).
    public var scheduler: LatentSolverKind = .dpmSolverPlusPlus2M
    /// `--steps`: solver steps over the whole schedule (1 to 1000); `strength` of them run.
    public var steps: Int = 25
    /// `--strength` in (0, 1]: the share of the steps that run, from the source latent noised
    /// to where they start (img2img's rule; 0.75 is the official 25 % skip).
    public var strength: Double = 0.75
    /// `--guidance-scale` ≥ 0: classifier-free guidance; at most 1 runs the prompt alone.
    public var guidanceScale: Float = 7.5
    /// `--negative-prompt`: the unconditional context's text ("" is SD's empty prompt).
    public var negativePrompt: String = ""
    /// `--prediction-type`: overrides what the model's files say (nil: the folder's scheduler
    /// config, or ε for single files except SD 2.x files named 768, which are v).
    public var predictionType: PredictionType? = nil
    /// `--init`: the first latent from the noised source (the paper) or pure noise (the official script).
    public var initialLatent: LatentInit = .source
    /// `--blend-level`: the background noised to the level just reached (the paper) or one too high (the script).
    public var blendLevel: BlendLevel = .same
    /// `--mask-dilations` 0…64: progressive mask shrinking for thin masks (0: off).
    public var maskDilations: Int = 0
    /// `--reconstruct-background` 0…10000: Adam steps on each decoded sample's latent so that
    /// the decoded image matches the photo outside the mask (BLD §4.2,
    /// ``BackgroundReconstruction``; each step is a VAE decoder forward and backward). 0: off.
    public var backgroundReconstructionSteps: Int = 0

    public init() {}

    /// The JSON keys: the CLI flags in camel case.
    public enum CodingKeys: String, CodingKey, CaseIterable {
        case scheduler, steps, strength, guidanceScale, negativePrompt, predictionType
        case initialLatent = "init"
        case blendLevel, maskDilations
        case backgroundReconstructionSteps = "reconstructBackground"
    }

    /// Each option's command-line flag and help, in ``CodingKeys`` order: `blend edit`'s latent
    /// option group and the method check are made from these, the API's field names are the keys.
    public static let descriptions: [(key: CodingKeys, flag: String, help: String)] = [
        (.scheduler, "--scheduler", "The solver, dpm++2m (DPM-Solver++(2M)) or ddim (eta 0) (default: dpm++2m)."),
        (.steps, "--steps", "Solver steps over the whole schedule, 1 to 1000, of which --strength run (default: 25)."),
        (.strength, "--strength", "Share of the steps that run, from the source noised to where they start; lower keeps more of the source (0 < s <= 1; default: 0.75)."),
        (.guidanceScale, "--guidance-scale", "Classifier-free guidance scale, 0 to 100; at most 1 follows the prompt alone (default: 7.5)."),
        (.negativePrompt, "--negative-prompt", "What the edit should not look like (default: none, SD's empty prompt)."),
        (.predictionType, "--prediction-type", "What the UNet predicts, epsilon or v (default: the folder's scheduler config; for single files epsilon, or v for SD 2.x files named 768)."),
        (.initialLatent, "--init", "The first latent, source (the source noised, the paper) or noise (pure noise, the official script) (default: source)."),
        (.blendLevel, "--blend-level", "The background's noise level after each step, same (the paper) or next (one level too high, the official script) (default: same)."),
        (.maskDilations, "--mask-dilations", "Progressive mask shrinking for thin masks, 0 to 64 dilations (default: 0, off)."),
        (.backgroundReconstructionSteps, "--reconstruct-background", "After decoding, STEPS Adam steps on each sample's latent so the decoded image matches the photo outside the mask (the paper's background reconstruction; each step a VAE decode and its backward, slow at 512²) (default: 0, off)."),
    ]

    /// The help of `key`'s flag (``descriptions``).
    public static func help(_ key: CodingKeys) -> String { descriptions.first { $0.key == key }!.help }

    /// - Throws: `EditError.invalidSetting` naming the option and its range.
    public func validate() throws {
        guard (1...1000).contains(steps) else {
            throw EditError.invalidSetting("\(setting: CodingKeys.steps) must be 1 to 1000 for the latent method, got \(steps)")
        }
        guard strength > 0, strength <= 1 else {
            throw EditError.invalidSetting("\(setting: CodingKeys.strength) must be greater than 0 and at most 1, got \(strength)")
        }
        guard Int(Double(steps) * strength) >= 1 else {
            throw EditError.invalidSetting("\(setting: SettingName(CodingKeys.strength), to: "\(strength)") of \(steps) steps leaves no step to run: raise \(setting: CodingKeys.strength) or \(setting: CodingKeys.steps)")
        }
        guard guidanceScale.isFinite, guidanceScale >= 0, guidanceScale <= 100 else {
            throw EditError.invalidSetting("\(setting: CodingKeys.guidanceScale) must be from 0 to 100, got \(guidanceScale)")
        }
        guard (0...64).contains(maskDilations) else {
            throw EditError.invalidSetting("\(setting: CodingKeys.maskDilations) must be from 0 to 64, got \(maskDilations)")
        }
        guard (0...10_000).contains(backgroundReconstructionSteps) else {
            throw EditError.invalidSetting("\(setting: CodingKeys.backgroundReconstructionSteps) must be from 0 to 10000 steps, got \(backgroundReconstructionSteps)")
        }
    }
}

extension LatentOptions {
    /// Decodes the options from a JSON object that may hold other settings too (the API's
    /// flat `settings`, a saved job.json). An option left out takes its default; `steps` may be
    /// a number or a string of one; `predictionType` may be `v` (as the flag takes it); the
    /// names of versions before the options were described once (`initialLatent`,
    /// `backgroundReconstructionSteps`) are still read, so older runs resume.
    public init(from decoder: any Decoder) throws {
        try self.init(from: decoder, readingSteps: true)
    }

    /// As ``init(from:)``; without `readingSteps` a `steps` in the object is another method's
    /// (the pixel methods' respacing, e.g. "ddim50") and the default is kept.
    public init(from decoder: any Decoder, readingSteps: Bool) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let legacy = try decoder.container(keyedBy: LegacyKeys.self)
        let d = LatentOptions()
        scheduler = try c.decodeIfPresent(LatentSolverKind.self, forKey: .scheduler) ?? d.scheduler
        if !readingSteps {
            steps = d.steps
        } else if let text = try? c.decodeIfPresent(String.self, forKey: .steps) {
            guard let count = Int(text) else {
                throw DecodingError.dataCorruptedError(forKey: .steps, in: c,
                    debugDescription: "steps must be a whole number of solver steps (1 to 1000) for the latent method, got \"\(text)\"")
            }
            steps = count
        } else {
            steps = try c.decodeIfPresent(Int.self, forKey: .steps) ?? d.steps
        }
        strength = try c.decodeIfPresent(Double.self, forKey: .strength) ?? d.strength
        guidanceScale = try c.decodeIfPresent(Float.self, forKey: .guidanceScale) ?? d.guidanceScale
        negativePrompt = try c.decodeIfPresent(String.self, forKey: .negativePrompt) ?? d.negativePrompt
        if let text = try c.decodeIfPresent(String.self, forKey: .predictionType) {
            guard let type = text == "v" ? PredictionType.vPrediction : PredictionType(rawValue: text) else {
                throw DecodingError.dataCorruptedError(forKey: .predictionType, in: c,
                    debugDescription: "predictionType must be epsilon or v (v_prediction), got \"\(text)\"")
            }
            predictionType = type
        }
        initialLatent = try c.decodeIfPresent(LatentInit.self, forKey: .initialLatent)
            ?? legacy.decodeIfPresent(LatentInit.self, forKey: .initialLatent) ?? d.initialLatent
        blendLevel = try c.decodeIfPresent(BlendLevel.self, forKey: .blendLevel) ?? d.blendLevel
        maskDilations = try c.decodeIfPresent(Int.self, forKey: .maskDilations) ?? d.maskDilations
        backgroundReconstructionSteps = try c.decodeIfPresent(Int.self, forKey: .backgroundReconstructionSteps)
            ?? legacy.decodeIfPresent(Int.self, forKey: .backgroundReconstructionSteps) ?? d.backgroundReconstructionSteps
    }

    /// Writes every option, `predictionType` as null when the files decide.
    public func encode(to encoder: any Encoder) throws {
        try encode(to: encoder, includingSteps: true)
    }

    /// As ``encode(to:)``; without `includingSteps` into an object whose `steps` another
    /// field writes (the API's settings, where `steps` is shared with the pixel methods).
    public func encode(to encoder: any Encoder, includingSteps: Bool) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(scheduler, forKey: .scheduler)
        if includingSteps { try c.encode(steps, forKey: .steps) }
        try c.encode(strength, forKey: .strength)
        try c.encode(guidanceScale, forKey: .guidanceScale)
        try c.encode(negativePrompt, forKey: .negativePrompt)
        try c.encode(predictionType, forKey: .predictionType)
        try c.encode(initialLatent, forKey: .initialLatent)
        try c.encode(blendLevel, forKey: .blendLevel)
        try c.encode(maskDilations, forKey: .maskDilations)
        try c.encode(backgroundReconstructionSteps, forKey: .backgroundReconstructionSteps)
    }

    private enum LegacyKeys: String, CodingKey {
        case initialLatent, backgroundReconstructionSteps
    }
}

/// How the mask is read and the edit put back: plain values, the same for every front end.
public struct MaskOptions: Codable, Equatable, Sendable {
    /// A mask pixel is edited where its value is above this share of white (0 ≤ t < 1).
    /// 0 is the reference's rule (any non-black value edits). `--mask-threshold`.
    public var threshold: Float = 0.5
    /// The part of the photo the model sees (see ``EditRegion``). `--region`.
    public var region: EditRegion = .auto
    /// Context margin around the mask for `region == .auto`, in photo pixels; nil for
    /// ``EditRegion/defaultPadding(for:)``. `--region-padding`.
    public var regionPadding: Int? = nil
    /// Width in photo pixels of the fade from the edit into the photo, inside the mask
    /// (0: a hard edge). Shortened where a marked area is narrower than twice it
    /// (``pasteWeights(mask:soft:threshold:feather:)``). `--feather`.
    public var feather: Int = 4
    /// Which channel of a mask image is the mask: brightness, transparency, or ``MaskChannel/auto``
    /// (``SoftMask``'s rules). `--mask-from`.
    public var channel: MaskChannel = .auto

    public init(threshold: Float = 0.5, region: EditRegion = .auto, regionPadding: Int? = nil, feather: Int = 4,
                channel: MaskChannel = .auto) {
        self.threshold = threshold
        self.region = region
        self.regionPadding = regionPadding
        self.feather = feather
        self.channel = channel
    }

    /// Decodes a saved run's options (job.json); an option the run's version did not have
    /// takes its default, so older runs still resume.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = MaskOptions()
        threshold = try c.decodeIfPresent(Float.self, forKey: .threshold) ?? d.threshold
        region = try c.decodeIfPresent(EditRegion.self, forKey: .region) ?? d.region
        regionPadding = try c.decodeIfPresent(Int.self, forKey: .regionPadding)
        feather = try c.decodeIfPresent(Int.self, forKey: .feather) ?? d.feather
        channel = try c.decodeIfPresent(MaskChannel.self, forKey: .channel) ?? d.channel
    }

    /// - Throws: `EditError.invalidSetting` for values out of range.
    public func validate() throws {
        guard threshold >= 0, threshold < 1 else {
            throw EditError.invalidSetting("\(setting: "maskThreshold") must be at least 0 and below 1 (a share of white), got \(threshold)")
        }
        guard feather >= 0, feather <= 1000 else {
            throw EditError.invalidSetting("\(setting: "feather") must be 0 to 1000 pixels, got \(feather)")
        }
        if let regionPadding, regionPadding < 0 {
            throw EditError.invalidSetting("\(setting: "regionPadding") must be 0 or more pixels, got \(regionPadding)")
        }
    }
}

/// One edit from files to files.
public struct EditRequest: Sendable {
    public var imagePath: String
    /// The mask image; nil to edit the photo's transparent area.
    public var maskPath: String?
    /// The output folder (see the layout in README "Outputs"): results go to
    /// `runs/<id>/`, and `latest` points at the newest finished run.
    public var outputDirectory: String
    public var settings: EditSettings
    public var maskOptions = MaskOptions()
    public var models: EditModelPaths
    /// The latent method's options (used when `settings.method == .latent`).
    public var latent = LatentOptions()
    /// Also write each sample's x0 prediction at a fifth of the steps, as the reference shows them.
    public var saveIntermediates: Bool = false
    /// Continue the unfinished run of the same inputs and settings in `outputDirectory`:
    /// keep its finished samples and make only the others. The result is the one an
    /// uninterrupted run would have given (the batch size may differ).
    public var resume: Bool = false
    /// Keep the prompt's first 75 tokens when it is longer than CLIP reads, instead of failing.
    public var truncatePrompt: Bool = false
    /// The largest photo or mask read, in pixels (`--max-megapixels`): checked from each
    /// file's header before any pixel is decoded (``ImageError/exceedsPixelLimit(source:width:height:limit:)``).
    public var maximumPixels: Int = ImageSize.defaultMaximumDecodedPixels
    /// Refuse the edit in ``EditPipeline/check(_:)`` (``MemoryError``) when the memory
    /// available is clearly below its estimate (``EditMemory``), rather than be killed part way.
    /// `blend edit` turns it on (`--skip-memory-check` turns it off).
    public var checksMemory: Bool = false
    /// The memory available, in bytes, for that check; nil reads MemAvailable from
    /// /proc/meminfo (tests give a value).
    public var availableMemoryBytes: Int? = nil
    /// Ignore `settings.seed` and draw a random one; it is announced (``EditEvent/notice(_:)``)
    /// and recorded in the report. A resumed run keeps the seed of the run it continues.
    public var randomSeed: Bool = false
    /// The arithmetic of the diffusion model's convolutions: fp32 (the reference) or bf16 (on
    /// CPUs without AVX512_BF16 or AMX the edit runs in fp32, with a notice saying so).
    public var precision: ComputePrecision = .fp32
    /// Whose words the notices name settings in: `blend edit`'s flags (`--mask-from alpha`)
    /// or the web API's fields (`maskFrom set to alpha`). Errors carry their
    /// ``SettingMessage`` and are worded by the front end that shows them.
    public var wording: SettingMessage.Wording = .commandLine
    /// For tests: called with a name before every file operation of the output folder.
    var fileOperationHook: (@Sendable (String) throws -> Void)? = nil

    public init(imagePath: String, maskPath: String?, outputDirectory: String, settings: EditSettings, models: EditModelPaths) {
        self.imagePath = imagePath
        self.maskPath = maskPath
        self.outputDirectory = outputDirectory
        self.settings = settings
        self.models = models
    }
}

/// What an edit is about to do, once its inputs are checked and its run folder exists.
public struct EditPlan: Sendable {
    /// The run's folder (absolute); it becomes `OUT/latest` when the run finishes.
    public var runDirectory: String
    /// The part of the photo the model edits, and the model's square size.
    public var region: PixelBox
    public var modelSize: Int
    /// The share of the photo's pixels marked for editing.
    public var editedFraction: Double
    public var seed: UInt64
    /// Sample numbers already finished by the run this one resumes.
    public var resumedSamples: [Int]
    public var totalSamples: Int
    /// Background-reconstruction steps this run takes in all: the latent method's
    /// `reconstructBackground` times the samples it still runs (0 for the other methods).
    public var reconstructionSteps: Int = 0
}

/// A sample written to disk.
public struct FinishedSample: Sendable {
    /// The sample's number (0-based): its noise depends only on the seed and this.
    public var index: Int
    /// Its file (absolute path) at the photo's resolution, in the run's `samples/`.
    public var file: String
    /// CLIP distance of the edited region to the prompt (lower is better).
    public var distance: Float
    /// Samples finished so far (resumed ones included), and in all.
    public var finished: Int
    public var total: Int
}

/// What the pipeline is doing, in order. The `events` callback of ``EditPipeline/run(_:events:)``
/// gets every one; a throw from it cancels the run at that point (see there).
public enum EditEvent: Sendable {
    /// Every input is read and checked; nothing has been created yet.
    case checkedInputs
    /// Something the user should know: the mask rule used, a suspicious mask, a
    /// truncated prompt, the random seed, a resumed or kept run.
    case notice(String)
    /// The run folder exists and the work is fixed.
    case planned(EditPlan)
    case loadingModels
    case loadedModels(seconds: Double)
    case step(EditProgress)
    /// A step of the latent method's background reconstruction of one sample (after its last
    /// solver step; `--reconstruct-background`).
    case reconstructionStep(ReconstructionProgress)
    /// One sample is on disk (file and a line in `progress.jsonl`).
    case sampleFinished(FinishedSample)
    /// The run is complete and `OUT/latest` points at it (`directory` is the run's folder).
    case wroteOutputs(directory: String)
}

/// What a latent run used, as `report.json` records it: the options and what the model
/// files resolved to.
public struct LatentReport: Codable, Sendable {
    public var options: LatentOptions
    /// The Stable Diffusion file or folder, and what it is (e.g. "SD 1.x, CompVis single file").
    public var stableDiffusion: String
    public var model: String
    /// The prediction type used (the option, else the files' default).
    public var predictionType: PredictionType
    /// The solver steps that ran (of `options.steps`).
    public var stepsRun: Int
}

/// What an edit wrote, and how it went: saved as `report.json` in the run's folder.
public struct EditReport: Codable, Sendable {
    public struct Sample: Codable, Sendable {
        public var rank: Int
        /// `ranked/NN_distance_D.png`, relative to the run folder.
        public var file: String
        /// The same image under `samples/`, named by its number.
        public var sampleFile: String
        public var index: Int
        public var distance: Float
    }
    public struct Timings: Codable, Sendable {
        public var loadModelsSeconds: Double
        public var editSeconds: Double
        public var secondsPerStep: Double
        public var totalSeconds: Double
    }
    public var prompt: String
    public var image: String
    public var imageSize: [Int]
    /// The mask file; nil when the photo's transparency was the mask.
    public var mask: String?
    /// Which mask rule applied: brightness, mask-transparency or photo-transparency.
    public var maskRule: SoftMask.Origin
    public var maskOptions: MaskOptions
    /// The share of the photo's pixels edited (after the threshold and any inversion).
    public var editedFraction: Double
    /// The part of the photo the model edited.
    public var region: PixelBox
    public var modelSize: Int
    public var settings: EditSettings
    /// The latent method's options; nil for the pixel methods.
    public var latent: LatentReport?
    public var models: [String: String]
    public var samples: [Sample]
    public var contactSheet: String
    public var notices: [String]
    /// The run's id (its folder under `runs/`) and its absolute path.
    public var runId: String
    public var directory: String
    /// Samples taken over from the interrupted run this one resumed.
    public var resumedSamples: Int
    public var timings: Timings
    public var blendVersion: String
    /// Bits per channel of the photo and of the samples written (16 for a 16-bit PNG, whose
    /// untouched pixels keep all 16); nil in reports of versions before 16-bit photos were kept.
    public var bitsPerChannel: Int? = nil
    /// The precision the convolutions ran in (bf16 asked for on a CPU without bf16 runs, and
    /// is recorded, as fp32); nil in reports of versions before the option.
    public var precision: ComputePrecision? = nil
    /// What computed the edit; nil in reports of versions before it was recorded.
    public var compute: ComputeReport? = nil
}

/// The machine side of an edit, for comparing runs: the results do not depend on the thread
/// count, but its speed does, and the BLAS kernels and instruction set tell which CPU code ran.
public struct ComputeReport: Codable, Sendable, Equatable {
    /// The engine's threads (`--threads`, `BLEND_NUM_THREADS` or the CPUs the process may use).
    public var threads: Int
    /// OpenBLAS's kernel family, e.g. "Haswell" (`OPENBLAS_CORETYPE` overrides it).
    public var blasKernels: String
    /// The instruction set oneDNN uses, e.g. "avx512_core_bf16".
    public var instructionSet: String

    /// This process's, in the calling task.
    public static var current: ComputeReport {
        ComputeReport(threads: EngineThreads.count, blasKernels: blasCoreName, instructionSet: ComputeLibrary.oneDNNInstructionSet)
    }
}
