import BlendEditor
import Foundation

/// Where a job is in its life. `interrupted` is a job that was queued or running when the
/// server stopped; it can be resumed, as can a cancelled or failed one.
public enum JobState: String, Codable, Sendable, CaseIterable {
    case queued, running, finished, cancelled, failed, interrupted

    /// No more work will happen without a resume.
    public var isTerminal: Bool { self != .queued && self != .running }
    public var isResumable: Bool { self == .interrupted || self == .cancelled || self == .failed }
}

/// The edit settings of a job, under the CLI's option names (`blend edit --help`). Every
/// field is optional in a request; a missing one takes the CLI's default, which is
/// ``EditSettings``'s (the reference implementation's).
public struct JobSettings: Codable, Sendable, Equatable {
    public var method: EditMethod
    public var samples: Int
    public var batch: Int
    /// Timestep respacing: a count ("100"), a comma list, or "ddimN".
    public var steps: String
    public var skip: Int
    public var ddim: Bool
    /// The seed used. A request may send `"random"` or -1 for a random one, recorded here.
    public var seed: UInt64
    public var invertMask: Bool
    public var enforceBackground: Bool
    public var clipLambda: Float
    public var rangeLambda: Float
    public var lpipsLambda: Float
    public var l2Lambda: Float
    public var augmentations: Int

    /// The CLI's defaults.
    public init() { self.init(EditSettings(prompt: "")) }

    public init(_ s: EditSettings) {
        method = s.method
        samples = s.samples
        batch = s.batchSize
        steps = s.timestepRespacing
        skip = s.skipTimesteps
        ddim = s.ddim
        seed = s.seed
        invertMask = s.invertMask
        enforceBackground = s.enforceBackground
        clipLambda = s.clipGuidanceLambda
        rangeLambda = s.rangeLambda
        lpipsLambda = s.lpipsSimLambda
        l2Lambda = s.l2SimLambda
        augmentations = s.augmentations
    }

    /// The pipeline's settings for `prompt`.
    public func editSettings(prompt: String) -> EditSettings {
        var s = EditSettings(prompt: prompt)
        s.method = method
        s.samples = samples
        s.batchSize = min(batch, samples)
        s.timestepRespacing = steps
        s.skipTimesteps = skip
        s.ddim = ddim
        s.seed = seed
        s.invertMask = invertMask
        s.enforceBackground = enforceBackground
        s.clipGuidanceLambda = clipLambda
        s.rangeLambda = rangeLambda
        s.lpipsSimLambda = lpipsLambda
        s.l2SimLambda = l2Lambda
        s.augmentations = augmentations
        return s
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case method, samples, batch, steps, skip, ddim, seed, invertMask, enforceBackground
        case clipLambda, rangeLambda, lpipsLambda, l2Lambda, augmentations
    }

    /// Reads a (possibly partial) settings object; absent fields keep the CLI's defaults.
    public init(from decoder: any Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        method = try c.decodeIfPresent(EditMethod.self, forKey: .method) ?? method
        samples = try c.decodeIfPresent(Int.self, forKey: .samples) ?? samples
        batch = try c.decodeIfPresent(Int.self, forKey: .batch) ?? batch
        if let text = try? c.decodeIfPresent(String.self, forKey: .steps) {
            steps = text
        } else if let count = try c.decodeIfPresent(Int.self, forKey: .steps) {
            steps = String(count)
        }
        skip = try c.decodeIfPresent(Int.self, forKey: .skip) ?? skip
        ddim = try c.decodeIfPresent(Bool.self, forKey: .ddim) ?? ddim
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
                seed = Self.randomSeed()
            } else if let value = UInt64(text) {
                seed = value
            } else {
                throw DecodingError.dataCorruptedError(forKey: .seed, in: c,
                                                       debugDescription: "seed must be a whole number >= 0, or \"random\" (or -1) for a random one")
            }
        }
        invertMask = try c.decodeIfPresent(Bool.self, forKey: .invertMask) ?? invertMask
        enforceBackground = try c.decodeIfPresent(Bool.self, forKey: .enforceBackground) ?? enforceBackground
        clipLambda = try c.decodeIfPresent(Float.self, forKey: .clipLambda) ?? clipLambda
        rangeLambda = try c.decodeIfPresent(Float.self, forKey: .rangeLambda) ?? rangeLambda
        lpipsLambda = try c.decodeIfPresent(Float.self, forKey: .lpipsLambda) ?? lpipsLambda
        l2Lambda = try c.decodeIfPresent(Float.self, forKey: .l2Lambda) ?? l2Lambda
        augmentations = try c.decodeIfPresent(Int.self, forKey: .augmentations) ?? augmentations
    }

    /// A seed that fits the page's JavaScript numbers exactly (below 2^53).
    static func randomSeed() -> UInt64 { UInt64.random(in: 0..<(1 << 53)) }
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

/// One finished edit.
public struct JobResult: Codable, Sendable, Equatable {
    /// 1 = best (lowest CLIP distance).
    public var rank: Int
    /// CLIP distance of the masked result to the prompt: lower matches better.
    public var distance: Float
    /// Path under the job's folder.
    public var file: String
    /// Where the API serves it at full resolution.
    public var url: String
}

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
    /// Estimated seconds to the end of the edit (null until a step has finished).
    public var etaSeconds: Double?
    public var secondsPerStep: Double?
    public var clipLoss: Float
    public var rangeLoss: Float
}

/// A job as the API returns it and as `job.json` stores it.
public struct JobRecord: Codable, Sendable, Equatable {
    public var id: String
    public var state: JobState
    public var prompt: String
    public var settings: JobSettings
    public var photo: JobPhoto
    /// The mask file in the job's folder.
    public var mask: String
    /// Share of the photo's pixels the mask marks for editing (after `invertMask`), 0...1.
    public var maskFraction: Double
    public var createdAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    /// Ranked, best first.
    public var results: [JobResult]
    /// What went wrong, for `failed` (and why a job stopped, for `interrupted`).
    public var error: String?
    /// The last progress seen (kept after the job stops, so the page can say how far it got).
    public var progress: JobProgress?
    /// Times the job was started (1 for a job never resumed).
    public var runs: Int = 0
}
