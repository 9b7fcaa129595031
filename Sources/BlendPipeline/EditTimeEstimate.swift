import Foundation

/// The time left of a running edit, from the pipeline's events as they arrive: what the CLI's
/// progress bar and the server's progress events show as the ETA.
///
/// Diffusion steps and background-reconstruction steps are timed apart because they cost
/// very different amounts: a reconstruction step of the latent method is a VAE decode and its
/// backward pass at 512² (several UNet steps' worth), so a single rate over both would be far
/// off before the first reconstruction and again after it. The time between two events counts
/// as the work of the later one (a step event comes when its step is done; a reconstruction
/// event comes before its Adam step, so its interval holds the previous Adam step), and the
/// time up to a finished sample (decode, paste, CLIP ranking, writing) counts with the phase
/// that preceded it. The clock starts when the models are loaded.
///
/// Until a reconstruction step has been timed, ``secondsLeft`` covers the diffusion steps only
/// and ``reconstructionUntimed`` says so; front ends then add "+ background reconstruction".
public struct EditTimeEstimate: Sendable {
    private var last: Date?
    private var diffusionSeconds = 0.0
    private var diffusionEvents = 0
    private var completedSteps = 0
    private var totalSteps = 0
    private var reconstructionSeconds = 0.0
    private var reconstructionEvents = 0
    private var reconstructionSteps = 0
    private var inReconstruction = false

    public init() {}

    /// Takes the next event of ``EditPipeline/run(_:events:)``, seen at `time`.
    public mutating func observe(_ event: EditEvent, at time: Date = Date()) {
        switch event {
        case let .planned(plan):
            reconstructionSteps = plan.reconstructionSteps
        case .loadedModels:
            last = time
        case let .step(progress):
            diffusionSeconds += elapsed(to: time)
            diffusionEvents += 1
            completedSteps = progress.completedSteps
            totalSteps = progress.totalSteps
            inReconstruction = false
        case .reconstructionStep:
            reconstructionSeconds += elapsed(to: time)
            reconstructionEvents += 1
            inReconstruction = true
        case .sampleFinished:
            if inReconstruction { reconstructionSeconds += elapsed(to: time) } else { diffusionSeconds += elapsed(to: time) }
            inReconstruction = false
        case .checkedInputs, .notice, .loadingModels, .wroteOutputs:
            break
        }
    }

    private mutating func elapsed(to time: Date) -> Double {
        defer { last = time }
        guard let last else { return 0 }
        return max(0, time.timeIntervalSince(last))
    }

    /// Seconds per diffusion step so far (with the per-sample work that follows the steps);
    /// nil before the first step.
    public var secondsPerStep: Double? { diffusionEvents > 0 ? diffusionSeconds / Double(diffusionEvents) : nil }

    /// Seconds per background-reconstruction step so far; nil before the first one.
    public var secondsPerReconstructionStep: Double? {
        reconstructionEvents > 0 ? reconstructionSeconds / Double(reconstructionEvents) : nil
    }

    /// Reconstruction steps planned but not yet taken.
    public var reconstructionStepsLeft: Int { max(0, reconstructionSteps - reconstructionEvents) }

    /// True while reconstruction steps are still to come and none has been timed yet:
    /// ``secondsLeft`` does not include them then.
    public var reconstructionUntimed: Bool { reconstructionStepsLeft > 0 && reconstructionEvents == 0 }

    /// Estimated seconds to the end of the edit (see the type's note); nil before the first
    /// diffusion step.
    public var secondsLeft: Double? {
        guard let perStep = secondsPerStep else { return nil }
        let diffusion = perStep * Double(max(0, totalSteps - completedSteps))
        let reconstruction = (secondsPerReconstructionStep ?? 0) * Double(reconstructionStepsLeft)
        return diffusion + reconstruction
    }
}
