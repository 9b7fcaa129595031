import ArgumentParser
import BlendDiffusion
import BlendEditor
import BlendPipeline

/// `blend edit`'s options of the latent method, grouped under their own heading in `--help`.
/// Flags and help come from ``LatentOptions/descriptions`` (the options' one description, which
/// the web API and report.json share); `--steps` is every method's and lives on the command.
struct LatentOptionGroup: ParsableArguments {
    static func flag(_ key: LatentOptions.CodingKeys) -> String {
        String(LatentOptions.descriptions.first { $0.key == key }!.flag.dropFirst(2))
    }

    static func help(_ key: LatentOptions.CodingKeys, _ value: String) -> ArgumentHelp {
        ArgumentHelp(LatentOptions.help(key), valueName: value)
    }

    @Option(name: .customLong(flag(.scheduler)), help: help(.scheduler, "name"))
    var scheduler: LatentSolverKind?

    @Option(name: .customLong(flag(.strength)), parsing: .unconditional, help: help(.strength, "s"))
    var strength: Double?

    @Option(name: .customLong(flag(.guidanceScale)), parsing: .unconditional, help: help(.guidanceScale, "x"))
    var guidanceScale: Float?

    @Option(name: .customLong(flag(.negativePrompt)), help: help(.negativePrompt, "text"))
    var negativePrompt: String?

    @Option(name: .customLong(flag(.predictionType)), help: help(.predictionType, "type"))
    var predictionType: PredictionType?

    @Option(name: .customLong(flag(.initialLatent)), help: help(.initialLatent, "from"))
    var initialLatent: LatentInit?

    @Option(name: .customLong(flag(.blendLevel)), help: help(.blendLevel, "level"))
    var blendLevel: BlendLevel?

    @Option(name: .customLong(flag(.maskDilations)), parsing: .unconditional, help: help(.maskDilations, "n"))
    var maskDilations: Int?

    @Option(name: .customLong(flag(.backgroundReconstructionSteps)), parsing: .unconditional,
            help: help(.backgroundReconstructionSteps, "steps"))
    var reconstructBackground: Int?

    /// The options given on the command line, as their flags.
    var givenFlags: [String] {
        let given: [(LatentOptions.CodingKeys, Bool)] = [
            (.scheduler, scheduler != nil), (.strength, strength != nil), (.guidanceScale, guidanceScale != nil),
            (.negativePrompt, negativePrompt != nil), (.predictionType, predictionType != nil),
            (.initialLatent, initialLatent != nil), (.blendLevel, blendLevel != nil), (.maskDilations, maskDilations != nil),
            (.backgroundReconstructionSteps, reconstructBackground != nil),
        ]
        return given.filter(\.1).map { "--" + Self.flag($0.0) }
    }

    /// The options with what was given (`steps`: the command's `--steps`, a whole number).
    func options(steps: String?) -> LatentOptions {
        var options = LatentOptions()
        if let steps { options.steps = Int(steps) ?? options.steps }
        options.scheduler = scheduler ?? options.scheduler
        options.strength = strength ?? options.strength
        options.guidanceScale = guidanceScale ?? options.guidanceScale
        options.negativePrompt = negativePrompt ?? options.negativePrompt
        options.predictionType = predictionType
        options.initialLatent = initialLatent ?? options.initialLatent
        options.blendLevel = blendLevel ?? options.blendLevel
        options.maskDilations = maskDilations ?? options.maskDilations
        options.backgroundReconstructionSteps = reconstructBackground ?? options.backgroundReconstructionSteps
        return options
    }
}

/// `blend edit`'s options of the pixel methods (Blended Diffusion and the local-CLIP
/// baseline), grouped under their own heading in `--help`; defaults are ``EditSettings``'.
struct PixelOptionGroup: ParsableArguments {
    @Option(parsing: .unconditional, help: ArgumentHelp("Steps skipped at the start: higher keeps more of the source's layout (default: 25).", valueName: "n"))
    var skip: Int?

    @Flag(help: "Sample with DDIM (score conditioning) instead of DDPM.")
    var ddim = false

    @Option(parsing: .unconditional, help: ArgumentHelp("Weight of the CLIP guidance (default: 1000).", valueName: "x"))
    var clipLambda: Float?

    @Option(parsing: .unconditional, help: ArgumentHelp("Weight of the range loss that keeps values in [-1, 1] (default: 50).", valueName: "x"))
    var rangeLambda: Float?

    @Option(parsing: .unconditional, help: ArgumentHelp("Images CLIP sees per sample and step: one plain resize plus N-1 random warps (default: 8).", valueName: "n"))
    var augmentations: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("local-clip only: weight of the LPIPS background loss (default: 1000).", valueName: "x"))
    var lpipsLambda: Float?

    @Option(parsing: .unconditional, help: ArgumentHelp("local-clip only: weight of the L2 background loss (default: 10000).", valueName: "x"))
    var l2Lambda: Float?

    @Flag(help: "Also save every sample's x0 prediction at a fifth of the steps, in intermediates/.")
    var saveIntermediates = false

    /// The options given, as their flags, with the methods each belongs to.
    var givenFlags: [(flag: String, methods: Set<EditMethod>)] {
        let pixel: Set<EditMethod> = [.blended, .localClip]
        let given: [(String, Bool, Set<EditMethod>)] = [
            ("--skip", skip != nil, pixel), ("--ddim", ddim, pixel), ("--clip-lambda", clipLambda != nil, pixel),
            ("--range-lambda", rangeLambda != nil, pixel), ("--augmentations", augmentations != nil, pixel),
            ("--lpips-lambda", lpipsLambda != nil, [.localClip]), ("--l2-lambda", l2Lambda != nil, [.localClip]),
            ("--save-intermediates", saveIntermediates, pixel),
        ]
        return given.filter(\.1).map { ($0.0, $0.2) }
    }

    /// `settings` with what was given (`steps`: the command's `--steps`, a respacing).
    func apply(to settings: inout EditSettings, steps: String?) {
        settings.timestepRespacing = steps ?? settings.timestepRespacing
        settings.skipTimesteps = skip ?? settings.skipTimesteps
        settings.ddim = ddim
        settings.clipGuidanceLambda = clipLambda ?? settings.clipGuidanceLambda
        settings.rangeLambda = rangeLambda ?? settings.rangeLambda
        settings.lpipsSimLambda = lpipsLambda ?? settings.lpipsSimLambda
        settings.l2SimLambda = l2Lambda ?? settings.l2SimLambda
        settings.augmentations = augmentations ?? settings.augmentations
    }
}

/// `--seed`: a whole number, or `random` (also `-1`, as older versions took it) for one drawn
/// at the start, printed and recorded.
enum SeedChoice: ExpressibleByArgument, Equatable {
    case fixed(UInt64)
    case random

    init?(argument: String) {
        if argument == "random" || argument == "-1" {
            self = .random
        } else if let value = UInt64(argument) {
            self = .fixed(value)
        } else {
            return nil
        }
    }

    var defaultValueDescription: String {
        switch self {
        case let .fixed(value): return String(value)
        case .random: return "random"
        }
    }
}
