/// Where the latent edit's first sample comes from.
public enum LatentInit: String, Codable, Sendable, CaseIterable {
    /// The source latent noised to the first step's timestep (the paper; img2img pipelines).
    case source
    /// Pure Gaussian noise, as the official SD script (`text_editing_SD2.py`) starts.
    case noise
}

/// The noise level of the source latent blended in outside the mask after each step.
public enum BlendLevel: String, Codable, Sendable, CaseIterable {
    /// The level the step has just reached (the paper: "noised to the same level").
    case same
    /// The level the step started from: the official SD script noises the source with the
    /// step's own timestep `t` after stepping to the next, lower level — one level too high.
    case next
}

/// Which step blending starts at.
public enum BlendStart: Codable, Equatable, Sendable {
    /// img2img's rule (diffusers' `get_timesteps`): run the last `int(steps·s)` steps, s in (0, 1].
    case strength(Double)
    /// The official script's rule: skip the first `int(steps·p)` steps, p in [0, 1)
    /// (`blending_start_percentage`, 0.25 there).
    case skipFraction(Double)
}

/// Everything that shapes a Blended Latent Diffusion edit besides the models and the solver.
/// The defaults follow the paper and issue #11 (strength 0.75, i.e. the official 25 % skip;
/// guidance 7.5).
public struct LatentEditSettings: Codable, Equatable, Sendable {
    public var start: BlendStart = .strength(0.75)
    /// Classifier-free guidance scale; at most 1 runs the conditional model alone (diffusers'
    /// `do_classifier_free_guidance = guidance_scale > 1`).
    public var guidanceScale: Float = 7.5
    public var initialLatent: LatentInit = .source
    public var blendLevel: BlendLevel = .same
    /// Progressive mask shrinking (the paper's "progressive mask shrinking" for thin masks; `--mask_dilation_iterations`
    /// of the official LDM code): 0 blends with the true mask throughout; k > 0 starts with the
    /// mask dilated by a (2k+1)² square and shrinks it through (2k−1)², …, 3², to the true mask,
    /// in k + 1 stretches of about equal length (the LDM sampler's `i // (steps // (k + 1) + 1)`).
    public var maskDilations: Int = 0
    /// Edits in all, denoised `batchSize` at a time (classifier-free guidance doubles the batch).
    public var samples: Int = 1
    public var batchSize: Int = 1
    public var seed: UInt64 = 404
    /// Adam steps of the optional background reconstruction after decoding (the paper's §4.2,
    /// ``BackgroundReconstruction``; `--reconstruct-background STEPS`); 0 = off.
    public var backgroundReconstructionSteps: Int = 0

    public init() {}

    /// Throws `EditError.invalidSetting` for settings no run can use.
    public func validate() throws {
        guard guidanceScale.isFinite, guidanceScale >= 0 else {
            throw EditError.invalidSetting("the guidance scale must be a finite number >= 0, got \(guidanceScale)")
        }
        guard samples >= 1, batchSize >= 1 else {
            throw EditError.invalidSetting("the number of samples and the batch size must be at least 1 (got \(samples) and \(batchSize))")
        }
        guard maskDilations >= 0, maskDilations <= 64 else {
            throw EditError.invalidSetting("mask dilations must be from 0 to 64, got \(maskDilations)")
        }
        try BackgroundReconstruction(steps: backgroundReconstructionSteps).validate()
        switch start {
        case let .strength(s) where !(s > 0 && s <= 1):
            throw EditError.invalidSetting("strength must be greater than 0 and at most 1, got \(s)")
        case let .skipFraction(p) where !(p >= 0 && p < 1):
            throw EditError.invalidSetting("the skipped fraction of steps must be at least 0 and below 1, got \(p)")
        default:
            break
        }
    }
}
