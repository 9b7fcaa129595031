import BlendDiffusion
import BlendEditor
import BlendImage
import BlendPipeline
import Foundation

/// Where a job is in its life. `interrupted` is a job that was queued or running when the
/// server stopped; it can be resumed, as can a cancelled or failed one.
public enum JobState: String, Codable, Sendable, CaseIterable {
    case queued, running, finished, cancelled, failed, interrupted

    /// No more work will happen without a resume.
    public var isTerminal: Bool { self != .queued && self != .running }
    public var isResumable: Bool { self == .interrupted || self == .cancelled || self == .failed }
}

/// The edit settings of a job, under the CLI's option names in camel case (`blend edit --help`).
/// Every field is optional in a request; a missing one takes the CLI's default. The settings
/// every method shares are this type's own; each method's options are its settings type,
/// read from and written into the same flat object: ``PixelOptions`` (`steps`, `skip`, `ddim`,
/// `clipLambda`, `rangeLambda`, `augmentations`, `lpipsLambda`, `l2Lambda`) and
/// ``LatentOptions`` (`scheduler`, `strength`, `guidanceScale`, `negativePrompt`,
/// `predictionType`, `init`, `blendLevel`, `maskDilations`, `reconstructBackground`). `steps`
/// belongs to the job's method: a respacing for the pixel methods (default "100"), a whole number
/// of solver steps for the latent method (default 25, which also makes `samples` and `batch`
/// default to 4 and 1).
public struct JobSettings: Codable, Sendable, Equatable {
    public var method: EditMethod
    public var samples: Int
    public var batch: Int
    /// The seed used. A request may send `"random"` or -1 for a random one, recorded here, and
    /// any seed as a string of digits; from 2^53 up it is written as one (JavaScript numbers
    /// would round it).
    public var seed: UInt64
    public var invertMask: Bool
    public var enforceBackground: Bool
    /// A mask pixel edits where it is above this share of white (`--mask-threshold`).
    public var maskThreshold: Float
    /// `auto`, `full` or `X,Y,W,H` in photo pixels (`--region`).
    public var region: String
    /// Context around the mask's box for `region: auto`, in photo pixels; null for the default.
    public var regionPadding: Int?
    /// Width of the fade from the edit into the photo, in photo pixels (`--feather`).
    public var feather: Int
    /// Which channel of the mask image is the mask: `auto`, `brightness` or `alpha` (`--mask-from`).
    public var maskFrom: MaskChannel
    /// Keep a long prompt's first 75 tokens instead of refusing it (`--truncate-prompt`).
    public var truncatePrompt: Bool
    /// The pixel methods' options (used when `method` is `blended` or `local-clip`).
    public var pixel: PixelOptions
    /// The latent method's options (used when `method` is `latent`).
    public var latent: LatentOptions

    /// The job's `steps` as the API writes it: the pixel methods' respacing, or the latent
    /// method's solver steps.
    public var steps: String { method == .latent ? String(latent.steps) : pixel.timestepRespacing }

    /// The CLI's defaults.
    public init() { self.init(EditSettings(prompt: ""), MaskOptions()) }

    public init(_ s: EditSettings, _ mask: MaskOptions = MaskOptions()) {
        maskThreshold = mask.threshold
        region = mask.region.description
        regionPadding = mask.regionPadding
        feather = mask.feather
        maskFrom = mask.channel
        truncatePrompt = false
        method = s.method
        samples = s.samples
        batch = s.batchSize
        seed = s.seed
        invertMask = s.invertMask
        enforceBackground = s.enforceBackground
        pixel = s.pixel
        latent = LatentOptions()
    }

    /// The pipeline's settings for `prompt` (for a latent job, the pixel methods' at their
    /// defaults, as `blend edit` leaves them).
    public func editSettings(prompt: String) -> EditSettings {
        var s = EditSettings(prompt: prompt)
        s.method = method
        s.samples = samples
        s.batchSize = min(batch, samples)
        s.seed = seed
        s.invertMask = invertMask
        s.enforceBackground = enforceBackground
        s.pixel = pixel
        return s.withUnusedAtDefaults
    }

    /// The pipeline's request for these settings (the server's limits and precision aside).
    public func editRequest(prompt: String, imagePath: String, maskPath: String?, outputDirectory: String,
                            models: EditModelPaths) -> EditRequest {
        var request = EditRequest(imagePath: imagePath, maskPath: maskPath, outputDirectory: outputDirectory,
                                  settings: editSettings(prompt: prompt), models: models)
        request.maskOptions = maskOptions
        request.truncatePrompt = truncatePrompt
        if method == .latent { request.latent = latent }
        // Notices name the settings as the API and the page do.
        request.wording = .api
        return request
    }

    /// The pipeline's mask options (`region` was checked when the job was made).
    public var maskOptions: MaskOptions {
        MaskOptions(threshold: maskThreshold, region: EditRegion(region) ?? .auto, regionPadding: regionPadding, feather: feather,
                    channel: maskFrom)
    }

    /// The settings every method shares (and `steps`, written by the job's method).
    enum CodingKeys: String, CodingKey, CaseIterable {
        case method, samples, batch, steps, seed, invertMask, enforceBackground
        case maskThreshold, region, regionPadding, feather, maskFrom, truncatePrompt
    }

    /// The accepted values of each setting that takes one of a few names, for the error on
    /// any other (`predictionType` names its own, as it also takes `v`).
    static let choices: [String: [String]] = [
        CodingKeys.method.rawValue: EditMethod.acceptedNames,
        CodingKeys.maskFrom.rawValue: MaskChannel.allCases.map(\.rawValue),
        LatentOptions.CodingKeys.scheduler.rawValue: LatentSolverKind.allCases.map(\.rawValue),
        LatentOptions.CodingKeys.initialLatent.rawValue: LatentInit.allCases.map(\.rawValue),
        LatentOptions.CodingKeys.blendLevel.rawValue: BlendLevel.allCases.map(\.rawValue),
    ]

    /// Every key a settings object may have: the shared ones and every method's options'.
    static var allKeys: Set<String> {
        Set(CodingKeys.allCases.map(\.rawValue)).union(PixelOptions.CodingKeys.allCases.map(\.rawValue))
            .union(LatentOptions.CodingKeys.allCases.map(\.rawValue))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(method, forKey: .method)
        try c.encode(samples, forKey: .samples)
        try c.encode(batch, forKey: .batch)
        // The latent method's steps are a number, the pixel methods' a respacing ("100", "ddim50").
        if method == .latent { try c.encode(latent.steps, forKey: .steps) } else { try c.encode(steps, forKey: .steps) }
        // As a string from 2^53 up, where the page's JavaScript numbers would round it.
        try EditSettings.encode(seed: seed, to: &c, forKey: .seed)
        try c.encode(invertMask, forKey: .invertMask)
        try c.encode(enforceBackground, forKey: .enforceBackground)
        try c.encode(maskThreshold, forKey: .maskThreshold)
        try c.encode(region, forKey: .region)
        try c.encode(regionPadding, forKey: .regionPadding)   // null: the default padding
        try c.encode(feather, forKey: .feather)
        try c.encode(maskFrom, forKey: .maskFrom)
        try c.encode(truncatePrompt, forKey: .truncatePrompt)
        try pixel.encode(to: encoder, includingSteps: false)
        try latent.encode(to: encoder, includingSteps: false)
    }

    /// Reads a (possibly partial) settings object; absent fields keep the CLI's defaults.
    public init(from decoder: any Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        method = try c.decodeIfPresent(EditMethod.self, forKey: .method) ?? method
        samples = try c.decodeIfPresent(Int.self, forKey: .samples) ?? samples
        batch = try c.decodeIfPresent(Int.self, forKey: .batch) ?? batch
        if c.contains(.seed) {
            let text: String
            if let value = try? c.decode(UInt64.self, forKey: .seed) {
                text = String(value)
            } else if let value = try? c.decode(Int64.self, forKey: .seed) {
                text = String(value)
            } else {
                text = (try? c.decode(String.self, forKey: .seed)) ?? ""
            }
            if text == "random" || text == "-1" {
                seed = EditSettings.randomSeed()
            } else if let value = UInt64(text) {
                seed = value
            } else {
                throw DecodingError.dataCorruptedError(forKey: .seed, in: c,
                                                       debugDescription: "seed must be a whole number >= 0, or \"random\" (or -1) for a random one")
            }
        }
        invertMask = try c.decodeIfPresent(Bool.self, forKey: .invertMask) ?? invertMask
        enforceBackground = try c.decodeIfPresent(Bool.self, forKey: .enforceBackground) ?? enforceBackground
        maskThreshold = try c.decodeIfPresent(Float.self, forKey: .maskThreshold) ?? maskThreshold
        if let text = try c.decodeIfPresent(String.self, forKey: .region) {
            guard EditRegion(text) != nil else {
                throw DecodingError.dataCorruptedError(forKey: .region, in: c,
                                                       debugDescription: "region must be auto, full or X,Y,W,H in photo pixels, got \"\(text)\"")
            }
            region = text
        }
        regionPadding = try c.decodeIfPresent(Int.self, forKey: .regionPadding) ?? regionPadding
        feather = try c.decodeIfPresent(Int.self, forKey: .feather) ?? feather
        maskFrom = try c.decodeIfPresent(MaskChannel.self, forKey: .maskFrom) ?? maskFrom
        truncatePrompt = try c.decodeIfPresent(Bool.self, forKey: .truncatePrompt) ?? truncatePrompt
        pixel = try PixelOptions(from: decoder, readingSteps: method != .latent)
        latent = try LatentOptions(from: decoder, readingSteps: method == .latent)
        if method == .latent {
            if !c.contains(.samples) { samples = 4 }
            if !c.contains(.batch) { batch = 1 }
        }
    }
}

/// The photo of a job, as uploaded.
public struct JobPhoto: Codable, Sendable, Equatable {
    /// The file in the job's folder (`photo.png` or `photo.jpg`).
    public var file: String
    /// The name it had on the user's machine, for display.
    public var name: String
    /// Upright size (Exif orientation applied), which every result has.
    public var width: Int
    public var height: Int
}

/// One finished edit (listed as soon as it is written, before the others are done).
public struct JobResult: Codable, Sendable, Equatable {
    /// The sample's number (0-based): its noise depends only on the seed and this.
    public var index: Int
    /// 1 = best (lowest CLIP distance) among the results so far.
    public var rank: Int
    /// CLIP distance of the edited region to the prompt: lower matches better; null when the
    /// sample diverged (not a finite number), ranked last.
    public var distance: Float?
    /// Path under the job's folder.
    public var file: String
    /// Where the API serves it at full resolution; stable while the ranks change.
    public var url: String

    /// Ranks `results` by distance (non-finite last, then by index).
    static func ranked(_ results: [JobResult]) -> [JobResult] {
        results.sorted { ($0.distance ?? .infinity, $0.index) < ($1.distance ?? .infinity, $1.index) }
            .enumerated().map { rank, result in
                var result = result
                result.rank = rank + 1
                return result
            }
    }
}

/// A loss or distance for JSON: nil unless finite (JSON has no NaN or infinity).
func finite(_ value: Float) -> Float? { value.isFinite ? value : nil }

/// How far a running job is.
public struct JobProgress: Codable, Sendable, Equatable {
    public var job: String
    /// 0-based diffusion run (batch) and its count.
    public var iteration: Int
    public var iterations: Int
    /// Steps done in this run, and per run.
    public var step: Int
    public var steps: Int
    public var completedSteps: Int
    public var totalSteps: Int
    public var elapsedSeconds: Double
    /// Estimated seconds to the end of the edit (null until a step has finished); diffusion and
    /// background-reconstruction steps are timed apart (``EditTimeEstimate``).
    public var etaSeconds: Double?
    /// True while background-reconstruction steps are still to come and none has been timed:
    /// `etaSeconds` leaves them out then.
    public var etaExcludesReconstruction: Bool? = nil
    public var secondsPerStep: Double?
    public var clipLoss: Float?
    public var rangeLoss: Float?
    /// While a latent sample's background is reconstructed (after its last step): the sample's
    /// number, the Adam step (1-based) and the steps in all; null otherwise.
    public var reconstructionSample: Int? = nil
    public var reconstructionStep: Int? = nil
    public var reconstructionSteps: Int? = nil
}

extension JobProgress {
    /// Writes every field, the empty ones as `null` (as documented), not left out.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(job, forKey: .job)
        try c.encode(iteration, forKey: .iteration)
        try c.encode(iterations, forKey: .iterations)
        try c.encode(step, forKey: .step)
        try c.encode(steps, forKey: .steps)
        try c.encode(completedSteps, forKey: .completedSteps)
        try c.encode(totalSteps, forKey: .totalSteps)
        try c.encode(elapsedSeconds, forKey: .elapsedSeconds)
        try c.encode(etaSeconds, forKey: .etaSeconds)
        try c.encode(etaExcludesReconstruction, forKey: .etaExcludesReconstruction)
        try c.encode(secondsPerStep, forKey: .secondsPerStep)
        try c.encode(clipLoss, forKey: .clipLoss)
        try c.encode(rangeLoss, forKey: .rangeLoss)
        try c.encode(reconstructionSample, forKey: .reconstructionSample)
        try c.encode(reconstructionStep, forKey: .reconstructionStep)
        try c.encode(reconstructionSteps, forKey: .reconstructionSteps)
    }
}

extension JobResult {
    /// Writes every field; `distance` is `null` for a diverged sample, not left out.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(index, forKey: .index)
        try c.encode(rank, forKey: .rank)
        try c.encode(distance, forKey: .distance)
        try c.encode(file, forKey: .file)
        try c.encode(url, forKey: .url)
    }
}

/// A job as the API returns it and as `job.json` stores it.
public struct JobRecord: Codable, Sendable, Equatable {
    public var id: String
    public var state: JobState
    public var prompt: String
    public var settings: JobSettings
    public var photo: JobPhoto
    /// The mask file in the job's folder; null when the photo's transparent area is the mask.
    public var mask: String?
    /// Share of the photo's pixels the mask marks for editing (after `invertMask`), 0...1.
    public var maskFraction: Double
    /// The part of the photo the model edits (`X,Y,W,H`) and the model's square size.
    public var region: String
    public var modelSize: Int
    /// Notes and warnings about the inputs and the run (a suspicious mask, a truncated prompt,
    /// a resumed run), as the pipeline words them.
    public var notices: [String] = []
    public var createdAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    /// Ranked, best first; while the job runs, the samples finished so far.
    public var results: [JobResult]
    /// The run's folder under the job's folder (`out/runs/<id>`), once it exists.
    public var runDirectory: String?
    /// What went wrong, for `failed` (and why a job stopped, for `interrupted`).
    public var error: String?
    /// The last progress seen (kept after the job stops, so the page can say how far it got).
    public var progress: JobProgress?
    /// Times the job was started (1 for a job never resumed).
    public var runs: Int = 0
    /// Grows by one with every change of the record, so that a client holding two copies (an
    /// answer to a request and a `job` event that crossed it) keeps the newer one.
    public var revision: Int = 0
}

extension JobRecord {
    enum CodingKeys: String, CodingKey {
        case id, state, prompt, settings, photo, mask, maskFraction, region, modelSize, notices, createdAt, startedAt, finishedAt
        case results, runDirectory, error, progress, runs, revision
    }

    /// Writes every field, the empty ones as `null` (not left out), so that a client sees the
    /// same keys for every job: `error` is null until the job fails.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(state, forKey: .state)
        try c.encode(prompt, forKey: .prompt)
        try c.encode(settings, forKey: .settings)
        try c.encode(photo, forKey: .photo)
        try c.encode(mask, forKey: .mask)
        try c.encode(maskFraction, forKey: .maskFraction)
        try c.encode(region, forKey: .region)
        try c.encode(modelSize, forKey: .modelSize)
        try c.encode(notices, forKey: .notices)
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(startedAt, forKey: .startedAt)
        try c.encode(finishedAt, forKey: .finishedAt)
        try c.encode(results, forKey: .results)
        try c.encode(runDirectory, forKey: .runDirectory)
        try c.encode(error, forKey: .error)
        try c.encode(progress, forKey: .progress)
        try c.encode(runs, forKey: .runs)
        try c.encode(revision, forKey: .revision)
    }

    /// Reads `job.json`; the fields added after the first release (`notices`, `runs`,
    /// `revision`) may be missing from records written before them.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        state = try c.decode(JobState.self, forKey: .state)
        prompt = try c.decode(String.self, forKey: .prompt)
        settings = try c.decode(JobSettings.self, forKey: .settings)
        photo = try c.decode(JobPhoto.self, forKey: .photo)
        mask = try c.decodeIfPresent(String.self, forKey: .mask)
        maskFraction = try c.decode(Double.self, forKey: .maskFraction)
        region = try c.decode(String.self, forKey: .region)
        modelSize = try c.decode(Int.self, forKey: .modelSize)
        notices = try c.decodeIfPresent([String].self, forKey: .notices) ?? []
        createdAt = try c.decode(Date.self, forKey: .createdAt)
        startedAt = try c.decodeIfPresent(Date.self, forKey: .startedAt)
        finishedAt = try c.decodeIfPresent(Date.self, forKey: .finishedAt)
        results = try c.decode([JobResult].self, forKey: .results)
        runDirectory = try c.decodeIfPresent(String.self, forKey: .runDirectory)
        error = try c.decodeIfPresent(String.self, forKey: .error)
        progress = try c.decodeIfPresent(JobProgress.self, forKey: .progress)
        runs = try c.decodeIfPresent(Int.self, forKey: .runs) ?? 0
        revision = try c.decodeIfPresent(Int.self, forKey: .revision) ?? 0
    }
}
