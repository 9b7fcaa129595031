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
}

/// Everything that shapes an edit. The defaults are the reference implementation's
/// (omriav/blended-diffusion `optimization/arguments.py`).
public struct EditSettings: Codable, Equatable, Sendable {
    public var prompt: String
    public var method: EditMethod = .blended
    /// Timestep respacing of the 1000-step process ("100", "ddim50", ...).
    public var timestepRespacing: String = "100"
    /// Steps skipped at the start: the edit starts from the source noised to step T − skip.
    public var skipTimesteps: Int = 25
    /// Deterministic DDIM sampling (score conditioning) instead of DDPM (mean conditioning).
    public var ddim: Bool = false
    /// Edits in all, made `batchSize` at a time (the reference's batch_size 4 × iterations_num 8).
    public var samples: Int = 32
    public var batchSize: Int = 4
    /// Diffusion runs: the last one may be smaller than `batchSize`.
    public var iterations: Int { (samples + batchSize - 1) / max(batchSize, 1) }
    public var seed: UInt64 = 404
    public var clipGuidanceLambda: Float = 1000
    public var rangeLambda: Float = 50
    /// Background losses of the local-CLIP baseline.
    public var lpipsSimLambda: Float = 1000
    public var l2SimLambda: Float = 10000
    /// Images CLIP sees per sample and step: one plain resize plus `augmentations − 1` warped copies.
    public var augmentations: Int = 8
    /// Edit outside the mask instead of inside (background replacement).
    public var invertMask: Bool = false
    /// Paste the clean source background back at the end (Blended Diffusion only).
    public var enforceBackground: Bool = true

    public init(prompt: String) { self.prompt = prompt }

    /// Throws a clear error for settings no run can use.
    public func validate(totalSteps: Int) throws {
        guard skipTimesteps >= 0, skipTimesteps < totalSteps else {
            throw EditError.invalidSetting("skip (\(skipTimesteps)) must be at least 0 and less than the number of steps (\(totalSteps))")
        }
        guard batchSize >= 1, samples >= 1 else {
            throw EditError.invalidSetting("the number of samples and the batch size must be at least 1 (got \(samples) and \(batchSize))")
        }
        guard augmentations >= 1 else {
            throw EditError.invalidSetting("augmentations must be at least 1 (the plain resize); got \(augmentations)")
        }
        for (name, value) in [("clip lambda", clipGuidanceLambda), ("range lambda", rangeLambda),
                              ("LPIPS lambda", lpipsSimLambda), ("L2 lambda", l2SimLambda)] where !(value >= 0 && value.isFinite) {
            throw EditError.invalidSetting("\(name) must be a finite number >= 0, got \(value)")
        }
    }
}

extension EditSettings {
    enum CodingKeys: String, CodingKey {
        case prompt, method, timestepRespacing, skipTimesteps, ddim, samples, batchSize, seed
        case clipGuidanceLambda, rangeLambda, lpipsSimLambda, l2SimLambda, augmentations, invertMask, enforceBackground
    }

    /// The settings with those `method` does not use at their defaults, so that two runs of
    /// the latent method compare equal whatever pixel-method values they were given.
    public var withUnusedAtDefaults: EditSettings {
        guard method == .latent else { return self }
        var s = EditSettings(prompt: prompt)
        s.method = method
        s.samples = samples
        s.batchSize = batchSize
        s.seed = seed
        s.invertMask = invertMask
        s.enforceBackground = enforceBackground
        return s
    }

    /// Writes the settings `method` uses: a latent run's have none of the pixel methods'.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(prompt, forKey: .prompt)
        try c.encode(method, forKey: .method)
        try c.encode(samples, forKey: .samples)
        try c.encode(batchSize, forKey: .batchSize)
        try c.encode(seed, forKey: .seed)
        try c.encode(invertMask, forKey: .invertMask)
        try c.encode(enforceBackground, forKey: .enforceBackground)
        guard method != .latent else { return }
        try c.encode(timestepRespacing, forKey: .timestepRespacing)
        try c.encode(skipTimesteps, forKey: .skipTimesteps)
        try c.encode(ddim, forKey: .ddim)
        try c.encode(clipGuidanceLambda, forKey: .clipGuidanceLambda)
        try c.encode(rangeLambda, forKey: .rangeLambda)
        try c.encode(lpipsSimLambda, forKey: .lpipsSimLambda)
        try c.encode(l2SimLambda, forKey: .l2SimLambda)
        try c.encode(augmentations, forKey: .augmentations)
    }

    /// Reads what ``encode(to:)`` wrote (and the full settings older versions wrote for every
    /// method); a setting left out takes its default.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(prompt: try c.decode(String.self, forKey: .prompt))
        method = try c.decodeIfPresent(EditMethod.self, forKey: .method) ?? method
        timestepRespacing = try c.decodeIfPresent(String.self, forKey: .timestepRespacing) ?? timestepRespacing
        skipTimesteps = try c.decodeIfPresent(Int.self, forKey: .skipTimesteps) ?? skipTimesteps
        ddim = try c.decodeIfPresent(Bool.self, forKey: .ddim) ?? ddim
        samples = try c.decodeIfPresent(Int.self, forKey: .samples) ?? samples
        batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? batchSize
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? seed
        clipGuidanceLambda = try c.decodeIfPresent(Float.self, forKey: .clipGuidanceLambda) ?? clipGuidanceLambda
        rangeLambda = try c.decodeIfPresent(Float.self, forKey: .rangeLambda) ?? rangeLambda
        lpipsSimLambda = try c.decodeIfPresent(Float.self, forKey: .lpipsSimLambda) ?? lpipsSimLambda
        l2SimLambda = try c.decodeIfPresent(Float.self, forKey: .l2SimLambda) ?? l2SimLambda
        augmentations = try c.decodeIfPresent(Int.self, forKey: .augmentations) ?? augmentations
        invertMask = try c.decodeIfPresent(Bool.self, forKey: .invertMask) ?? invertMask
        enforceBackground = try c.decodeIfPresent(Bool.self, forKey: .enforceBackground) ?? enforceBackground
    }
}

/// Errors of an edit, phrased for the person running it.
public enum EditError: Error, Equatable, CustomStringConvertible {
    case invalidSetting(String)
    case badInput(String)
    case cancelled

    public var description: String {
        switch self {
        case let .invalidSetting(message): return "invalid setting: \(message)"
        case let .badInput(message): return message
        case .cancelled: return "the edit was cancelled"
        }
    }
}
