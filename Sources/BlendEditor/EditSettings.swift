// Errors and notices carry SettingMessage values, so a library user has the type with this module.
@_exported import BlendMessages
import BlendDiffusion

/// Which editing method to run.
public enum EditMethod: String, Codable, Sendable, CaseIterable {
    /// Blended Diffusion: CLIP-guided diffusion inside the mask, blended at every step
    /// with the source noised to the same level outside it.
    case blended
    /// The paper's "local CLIP-guided diffusion" baseline: no blending; the background
    /// is held by an MSE + LPIPS loss instead.
    case localClip = "local-clip"
    /// Blended Latent Diffusion (Avrahami, Fried & Lischinski, SIGGRAPH 2023): blending in
    /// Stable Diffusion's latent space, without gradients (``BlendedLatentDiffusionEditor``).
    case latent

    /// Reads the method's value, or `pixel`, the name `blend edit --method` and the docs use
    /// for Blended Diffusion (its value is `blended`).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let value = try container.decode(String.self)
        guard let method = EditMethod(name: value) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "unknown method \"\(value)\"")
        }
        self = method
    }

    /// The method one of ``acceptedNames`` names; nil for any other text.
    public init?(name: String) {
        guard let method = name == "pixel" ? .blended : EditMethod(rawValue: name) else { return nil }
        self = method
    }

    /// The values a front end accepts: `pixel` (the same as `blended`) and each method's value.
    public static let acceptedNames = ["pixel"] + allCases.map(\.rawValue)

    /// The methods on guided-diffusion's pixel UNet, which ``PixelOptions`` configures.
    public static let pixelMethods: Set<EditMethod> = [.blended, .localClip]
    /// The methods that paste the clean background back (``EditSettings/enforceBackground``);
    /// the local-CLIP baseline holds it by its losses instead.
    /// They need a mask that leaves some background to paste; the baseline edits the whole
    /// region and takes a mask that marks every pixel.
    public static let enforceBackgroundMethods: Set<EditMethod> = [.blended, .latent]

    /// The method's name in messages: `pixel` for Blended Diffusion on the command line (its
    /// `--method` value; `blended` is taken too), `pixel (blended)` for the API, whose value is
    /// `blended`; the others by their value.
    public func name(in wording: SettingMessage.Wording) -> String {
        switch (self, wording) {
        case (.blended, .commandLine): return "pixel"
        case (.blended, .api): return "pixel (blended)"
        default: return rawValue
        }
    }
}

/// The options of the pixel methods (Blended Diffusion and the local-CLIP baseline), described
/// once: the same struct is `blend edit`'s pixel option group (``descriptions``: flag, help and
/// the methods each belongs to), the web API's pixel settings (its JSON keys are the flags in
/// camel case: `steps`, `skip`, `ddim`, `clipLambda`, `rangeLambda`, `augmentations`,
/// `lpipsLambda`, `l2Lambda`), job.json's and report.json's `settings.pixel`. The defaults are
/// the reference implementation's (omriav/blended-diffusion `optimization/arguments.py`).
public struct PixelOptions: Codable, Equatable, Sendable {
    /// `--steps`: timestep respacing of the 1000-step process ("100", "ddim50", a comma list;
    /// guided-diffusion `respace.py`).
    public var timestepRespacing: String = "100"
    /// `--skip`: steps skipped at the start: the edit starts from the source noised to step T − skip.
    public var skipTimesteps: Int = 25
    /// `--ddim`: deterministic DDIM sampling (score conditioning) instead of DDPM (mean conditioning).
    public var ddim: Bool = false
    /// `--clip-lambda` ≥ 0: weight of the CLIP spherical-distance guidance (Blended Diffusion §4.1).
    public var clipGuidanceLambda: Float = 1000
    /// `--range-lambda` ≥ 0: weight of the loss that keeps x0 in [−1, 1].
    public var rangeLambda: Float = 50
    /// `--augmentations` ≥ 1: images CLIP sees per sample and step: one plain resize plus
    /// `augmentations − 1` warped copies (§4.2, extending augmentations).
    public var augmentations: Int = 8
    /// `--lpips-lambda`, `--l2-lambda` ≥ 0: the local-CLIP baseline's background losses (§4.1).
    public var lpipsSimLambda: Float = 1000
    public var l2SimLambda: Float = 10000

    public init() {}

    /// The JSON keys: the CLI flags in camel case.
    public enum CodingKeys: String, CodingKey, CaseIterable {
        case timestepRespacing = "steps"
        case skipTimesteps = "skip"
        case ddim
        case clipGuidanceLambda = "clipLambda"
        case rangeLambda, augmentations
        case lpipsSimLambda = "lpipsLambda"
        case l2SimLambda = "l2Lambda"
    }

    /// Each option's command-line flag, help and the methods it applies to, in ``CodingKeys``
    /// order: `blend edit`'s pixel option group, its method check and the API's notices about
    /// unused settings are made from these.
    public static let descriptions: [(key: CodingKeys, flag: String, help: String, methods: Set<EditMethod>)] = [
        (.timestepRespacing, "--steps", "Timestep respacing of the 1000-step process, a count, a comma list or ddimN (default: 100).",
         EditMethod.pixelMethods),
        (.skipTimesteps, "--skip", "Steps skipped at the start: higher keeps more of the source's layout (default: 25).",
         EditMethod.pixelMethods),
        (.ddim, "--ddim", "Sample with DDIM (score conditioning) instead of DDPM.", EditMethod.pixelMethods),
        (.clipGuidanceLambda, "--clip-lambda", "Weight of the CLIP guidance (default: 1000).", EditMethod.pixelMethods),
        (.rangeLambda, "--range-lambda", "Weight of the range loss that keeps values in [-1, 1] (default: 50).",
         EditMethod.pixelMethods),
        (.augmentations, "--augmentations", "Images CLIP sees per sample and step: one plain resize plus N-1 random warps (default: 8).",
         EditMethod.pixelMethods),
        (.lpipsSimLambda, "--lpips-lambda", "local-clip only: weight of the LPIPS background loss (default: 1000).", [.localClip]),
        (.l2SimLambda, "--l2-lambda", "local-clip only: weight of the L2 background loss (default: 10000).", [.localClip]),
    ]

    /// The options with `key` back at its default.
    public mutating func reset(_ key: CodingKeys) {
        let defaults = PixelOptions()
        switch key {
        case .timestepRespacing: timestepRespacing = defaults.timestepRespacing
        case .skipTimesteps: skipTimesteps = defaults.skipTimesteps
        case .ddim: ddim = defaults.ddim
        case .clipGuidanceLambda: clipGuidanceLambda = defaults.clipGuidanceLambda
        case .rangeLambda: rangeLambda = defaults.rangeLambda
        case .augmentations: augmentations = defaults.augmentations
        case .lpipsSimLambda: lpipsSimLambda = defaults.lpipsSimLambda
        case .l2SimLambda: l2SimLambda = defaults.l2SimLambda
        }
    }

    /// The description of `key` (``descriptions``).
    public static func description(_ key: CodingKeys) -> (flag: String, help: String, methods: Set<EditMethod>) {
        let d = descriptions.first { $0.key == key }!
        return (d.flag, d.help, d.methods)
    }

    /// The respaced timesteps' count (guided-diffusion `space_timesteps`).
    /// - Throws: `EditError.invalidSetting` when `timestepRespacing` cannot be read or used.
    public func stepCount() throws -> Int {
        do {
            return try spacedTimesteps(original: 1000, spec: timestepRespacing).count
        } catch {
            throw EditError.invalidSetting("\(setting: CodingKeys.timestepRespacing) \(timestepRespacing) cannot be used: \(error)")
        }
    }

    /// - Throws: `EditError.invalidSetting` naming the option and its range.
    public func validate() throws {
        let totalSteps = try stepCount()
        guard skipTimesteps >= 0, skipTimesteps < totalSteps else {
            throw EditError.invalidSetting("\(setting: CodingKeys.skipTimesteps) (\(skipTimesteps)) must be at least 0 and less than the number of steps (\(totalSteps))")
        }
        guard augmentations >= 1 else {
            throw EditError.invalidSetting("\(setting: CodingKeys.augmentations) must be at least 1 (the plain resize); got \(augmentations)")
        }
        for (key, value) in [(CodingKeys.clipGuidanceLambda, clipGuidanceLambda), (.rangeLambda, rangeLambda),
                             (.lpipsSimLambda, lpipsSimLambda), (.l2SimLambda, l2SimLambda)] where !(value >= 0 && value.isFinite) {
            throw EditError.invalidSetting("\(setting: key) must be a finite number >= 0, got \(value)")
        }
    }
}

extension PixelOptions {
    /// Decodes the options from a JSON object that may hold other settings too (the API's flat
    /// `settings`); an option left out takes its default, `steps` may be a string or a number.
    public init(from decoder: any Decoder) throws {
        try self.init(from: decoder, readingSteps: true)
    }

    /// As ``init(from:)``; without `readingSteps` a `steps` in the object is another method's
    /// (the latent method's solver steps) and the default is kept.
    public init(from decoder: any Decoder, readingSteps: Bool) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = PixelOptions()
        if !readingSteps {
            timestepRespacing = d.timestepRespacing
        } else if let text = try? c.decodeIfPresent(String.self, forKey: .timestepRespacing) {
            timestepRespacing = text
        } else {
            timestepRespacing = try c.decodeIfPresent(Int.self, forKey: .timestepRespacing).map(String.init) ?? d.timestepRespacing
        }
        skipTimesteps = try c.decodeIfPresent(Int.self, forKey: .skipTimesteps) ?? d.skipTimesteps
        ddim = try c.decodeIfPresent(Bool.self, forKey: .ddim) ?? d.ddim
        clipGuidanceLambda = try c.decodeIfPresent(Float.self, forKey: .clipGuidanceLambda) ?? d.clipGuidanceLambda
        rangeLambda = try c.decodeIfPresent(Float.self, forKey: .rangeLambda) ?? d.rangeLambda
        augmentations = try c.decodeIfPresent(Int.self, forKey: .augmentations) ?? d.augmentations
        lpipsSimLambda = try c.decodeIfPresent(Float.self, forKey: .lpipsSimLambda) ?? d.lpipsSimLambda
        l2SimLambda = try c.decodeIfPresent(Float.self, forKey: .l2SimLambda) ?? d.l2SimLambda
    }

    public func encode(to encoder: any Encoder) throws {
        try encode(to: encoder, includingSteps: true)
    }

    /// As ``encode(to:)``; without `includingSteps` into an object whose `steps` another field
    /// writes (the API's settings, where `steps` is shared with the latent method).
    public func encode(to encoder: any Encoder, includingSteps: Bool) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        if includingSteps { try c.encode(timestepRespacing, forKey: .timestepRespacing) }
        try c.encode(skipTimesteps, forKey: .skipTimesteps)
        try c.encode(ddim, forKey: .ddim)
        try c.encode(clipGuidanceLambda, forKey: .clipGuidanceLambda)
        try c.encode(rangeLambda, forKey: .rangeLambda)
        try c.encode(augmentations, forKey: .augmentations)
        try c.encode(lpipsSimLambda, forKey: .lpipsSimLambda)
        try c.encode(l2SimLambda, forKey: .l2SimLambda)
    }
}

/// Everything that shapes an edit besides the method's own options: the prompt, the method,
/// how many samples from which seed, and the mask's sense; the pixel methods' options are
/// ``pixel`` (the latent method's are the pipeline's `LatentOptions`).
public struct EditSettings: Codable, Equatable, Sendable {
    public var prompt: String
    public var method: EditMethod = .blended
    /// Edits in all, made `batchSize` at a time (the reference's batch_size 4 × iterations_num 8).
    public var samples: Int = 32
    public var batchSize: Int = 4
    /// Diffusion runs: the last one may be smaller than `batchSize`.
    public var iterations: Int { (samples + batchSize - 1) / max(batchSize, 1) }
    /// Any UInt64; the noise of sample i depends only on it and i.
    public var seed: UInt64 = 404

    /// Seeds at and above this, 2^53, are written as strings in the web API's JSON: JavaScript
    /// numbers (the page's) hold whole numbers exactly only below it.
    public static let exactJavaScriptSeedLimit: UInt64 = 1 << 53

    /// A random seed, below ``exactJavaScriptSeedLimit``, so that a seed `blend edit` picks can
    /// be typed into the page and one the page picks into `blend edit` alike.
    public static func randomSeed() -> UInt64 { UInt64.random(in: 0..<exactJavaScriptSeedLimit) }

    /// Writes `seed` as a number below ``exactJavaScriptSeedLimit``, as a string of digits
    /// from it up (report.json and the web API's JSON alike).
    public static func encode<Key: CodingKey>(seed: UInt64, to container: inout KeyedEncodingContainer<Key>, forKey key: Key) throws {
        if seed < exactJavaScriptSeedLimit { try container.encode(seed, forKey: key) } else { try container.encode(String(seed), forKey: key) }
    }
    /// Edit outside the mask instead of inside (background replacement).
    public var invertMask: Bool = false
    /// Paste the clean source background back at the end (Blended Diffusion and the latent method).
    public var enforceBackground: Bool = true
    /// The clean background is pasted back: `enforceBackground`, for a method that does so.
    public var pastesBackground: Bool { enforceBackground && EditMethod.enforceBackgroundMethods.contains(method) }
    /// The local-CLIP baseline's LPIPS background loss is on (its weight is not 0): the run
    /// needs the VGG16 and LPIPS files.
    public var usesLPIPS: Bool { method == .localClip && pixel.lpipsSimLambda != 0 }
    /// The pixel methods' options (unused by the latent method, and then not written).
    public var pixel = PixelOptions()

    public init(prompt: String) { self.prompt = prompt }

    /// Throws a clear error for settings no run can use.
    /// - Throws: `EditError.invalidSetting` naming the setting.
    public func validate() throws {
        guard batchSize >= 1, samples >= 1 else {
            throw EditError.invalidSetting("the number of samples and the batch size must be at least 1 (got \(samples) and \(batchSize))")
        }
        if method != .latent { try pixel.validate() }
    }
}

extension EditSettings {
    enum CodingKeys: String, CodingKey {
        case prompt, method, samples, batchSize, seed, invertMask, enforceBackground, pixel
    }

    /// The flat names of the pixel options in job.json files written before ``PixelOptions``.
    private enum LegacyKeys: String, CodingKey {
        case timestepRespacing, skipTimesteps, ddim, clipGuidanceLambda, rangeLambda, lpipsSimLambda, l2SimLambda, augmentations
    }

    /// The settings with those `method` does not use at their defaults (by
    /// ``PixelOptions/descriptions``' methods and ``EditMethod/enforceBackgroundMethods``), so
    /// that a run records only what it used and two runs compare equal whatever unused values
    /// they were given (the web API takes every field of the page for any method).
    public var withUnusedAtDefaults: EditSettings {
        var s = self
        for option in PixelOptions.descriptions where !option.methods.contains(method) { s.pixel.reset(option.key) }
        if !EditMethod.enforceBackgroundMethods.contains(method) { s.enforceBackground = EditSettings(prompt: "").enforceBackground }
        return s
    }

    /// Writes the settings `method` uses: a latent run's have none of the pixel methods'.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(prompt, forKey: .prompt)
        try c.encode(method, forKey: .method)
        try c.encode(samples, forKey: .samples)
        try c.encode(batchSize, forKey: .batchSize)
        // As a string from 2^53 up (report.json is served by the web API too).
        try Self.encode(seed: seed, to: &c, forKey: .seed)
        try c.encode(invertMask, forKey: .invertMask)
        try c.encode(enforceBackground, forKey: .enforceBackground)
        if method != .latent { try c.encode(pixel, forKey: .pixel) }
    }

    /// Reads what ``encode(to:)`` wrote, and the flat settings older versions wrote (for every
    /// method), so that their runs resume; a setting left out takes its default.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(prompt: try c.decode(String.self, forKey: .prompt))
        method = try c.decodeIfPresent(EditMethod.self, forKey: .method) ?? method
        samples = try c.decodeIfPresent(Int.self, forKey: .samples) ?? samples
        batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? batchSize
        if let digits = try? c.decodeIfPresent(String.self, forKey: .seed), let value = UInt64(digits) {
            seed = value
        } else {
            seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? seed
        }
        invertMask = try c.decodeIfPresent(Bool.self, forKey: .invertMask) ?? invertMask
        enforceBackground = try c.decodeIfPresent(Bool.self, forKey: .enforceBackground) ?? enforceBackground
        if let pixel = try c.decodeIfPresent(PixelOptions.self, forKey: .pixel) {
            self.pixel = pixel
        } else {
            let legacy = try decoder.container(keyedBy: LegacyKeys.self)
            pixel.timestepRespacing = try legacy.decodeIfPresent(String.self, forKey: .timestepRespacing) ?? pixel.timestepRespacing
            pixel.skipTimesteps = try legacy.decodeIfPresent(Int.self, forKey: .skipTimesteps) ?? pixel.skipTimesteps
            pixel.ddim = try legacy.decodeIfPresent(Bool.self, forKey: .ddim) ?? pixel.ddim
            pixel.clipGuidanceLambda = try legacy.decodeIfPresent(Float.self, forKey: .clipGuidanceLambda) ?? pixel.clipGuidanceLambda
            pixel.rangeLambda = try legacy.decodeIfPresent(Float.self, forKey: .rangeLambda) ?? pixel.rangeLambda
            pixel.lpipsSimLambda = try legacy.decodeIfPresent(Float.self, forKey: .lpipsSimLambda) ?? pixel.lpipsSimLambda
            pixel.l2SimLambda = try legacy.decodeIfPresent(Float.self, forKey: .l2SimLambda) ?? pixel.l2SimLambda
            pixel.augmentations = try legacy.decodeIfPresent(Int.self, forKey: .augmentations) ?? pixel.augmentations
        }
    }
}

/// Errors of an edit, phrased for the person running it: a message names settings as
/// ``SettingName``s, which each front end words as its own (``text(_:)``: `blend edit`'s flags,
/// the API's settings).
public enum EditError: Error, Equatable, CustomStringConvertible {
    /// A setting, or a combination of settings, no run can use.
    case invalidSetting(SettingMessage)
    /// An input (the photo, the mask, the prompt, a tensor) the edit cannot use.
    case badInput(SettingMessage)

    /// The error in `wording`'s words.
    public func text(_ wording: SettingMessage.Wording) -> String {
        switch self {
        case let .invalidSetting(message):
            return (wording == .commandLine ? "invalid setting: " : "") + message.text(wording)
        case let .badInput(message): return message.text(wording)
        }
    }

    public var description: String { text(.commandLine) }
}
