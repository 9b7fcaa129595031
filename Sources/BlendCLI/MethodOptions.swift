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
/// baseline), grouped under their own heading in `--help`. Flags, help and the methods each
/// belongs to come from ``PixelOptions/descriptions``; `--steps` is every method's and lives on
/// the command.
struct PixelOptionGroup: ParsableArguments {
    static func flag(_ key: PixelOptions.CodingKeys) -> String { String(PixelOptions.description(key).flag.dropFirst(2)) }

    static func help(_ key: PixelOptions.CodingKeys, _ value: String) -> ArgumentHelp {
        ArgumentHelp(PixelOptions.description(key).help, valueName: value)
    }

    @Option(name: .customLong(flag(.skipTimesteps)), parsing: .unconditional, help: help(.skipTimesteps, "n"))
    var skip: Int?

    @Flag(name: .customLong(flag(.ddim)), help: ArgumentHelp(PixelOptions.description(.ddim).help))
    var ddim = false

    @Option(name: .customLong(flag(.clipGuidanceLambda)), parsing: .unconditional, help: help(.clipGuidanceLambda, "x"))
    var clipLambda: Float?

    @Option(name: .customLong(flag(.rangeLambda)), parsing: .unconditional, help: help(.rangeLambda, "x"))
    var rangeLambda: Float?

    @Option(name: .customLong(flag(.augmentations)), parsing: .unconditional, help: help(.augmentations, "n"))
    var augmentations: Int?

    @Option(name: .customLong(flag(.lpipsSimLambda)), parsing: .unconditional, help: help(.lpipsSimLambda, "x"))
    var lpipsLambda: Float?

    @Option(name: .customLong(flag(.l2SimLambda)), parsing: .unconditional, help: help(.l2SimLambda, "x"))
    var l2Lambda: Float?

    @Flag(help: "Also save every sample's x0 prediction at a fifth of the steps, in intermediates/.")
    var saveIntermediates = false

    /// The options given, as their flags, with the methods each belongs to.
    var givenFlags: [(flag: String, methods: Set<EditMethod>)] {
        let given: [(PixelOptions.CodingKeys, Bool)] = [
            (.skipTimesteps, skip != nil), (.ddim, ddim), (.clipGuidanceLambda, clipLambda != nil), (.rangeLambda, rangeLambda != nil),
            (.augmentations, augmentations != nil), (.lpipsSimLambda, lpipsLambda != nil), (.l2SimLambda, l2Lambda != nil),
        ]
        let options = given.filter(\.1).map { (PixelOptions.description($0.0).flag, PixelOptions.description($0.0).methods) }
        return options + (saveIntermediates ? [("--save-intermediates", EditMethod.pixelMethods)] : [])
    }

    /// The options with what was given (`steps`: the command's `--steps`, a respacing).
    func options(steps: String?) -> PixelOptions {
        var options = PixelOptions()
        options.timestepRespacing = steps ?? options.timestepRespacing
        options.skipTimesteps = skip ?? options.skipTimesteps
        options.ddim = ddim
        options.clipGuidanceLambda = clipLambda ?? options.clipGuidanceLambda
        options.rangeLambda = rangeLambda ?? options.rangeLambda
        options.augmentations = augmentations ?? options.augmentations
        options.lpipsSimLambda = lpipsLambda ?? options.lpipsSimLambda
        options.l2SimLambda = l2Lambda ?? options.l2SimLambda
        return options
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
