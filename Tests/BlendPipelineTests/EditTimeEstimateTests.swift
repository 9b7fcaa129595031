import BlendEditor
import BlendImage
import BlendTensor
import Foundation
import Testing
@testable import BlendPipeline

/// The ETA of the CLI and the server: diffusion and background-reconstruction steps timed apart.
@Suite struct EditTimeEstimateTests {
    let start = Date(timeIntervalSinceReferenceDate: 1_000_000)

    func plan(samples: Int, reconstructionSteps: Int) -> EditPlan {
        EditPlan(runDirectory: "/tmp/run", region: PixelBox(x: 0, y: 0, width: 8, height: 8), modelSize: 8, editedFraction: 0.5,
                 seed: 1, resumedSamples: [], totalSamples: samples, reconstructionSteps: reconstructionSteps)
    }

    func step(_ iteration: Int, of iterations: Int, _ step: Int, of steps: Int) throws -> EditEvent {
        let empty = try Tensor.zeros([1, 1, 1, 1])
        return .step(EditProgress(iteration: iteration, iterations: iterations, step: step, steps: steps, sampleIndices: [iteration],
                                  reported: SamplerStep(timestep: 0, sample: empty, prediction: empty)))
    }

    func reconstruction(sample: Int, _ step: Int, of steps: Int) -> EditEvent {
        .reconstructionStep(ReconstructionProgress(sample: sample, step: step, steps: steps, loss: 0))
    }

    func finished(_ index: Int) -> EditEvent {
        .sampleFinished(FinishedSample(index: index, file: "/tmp/run/samples/\(index).png", distance: 1, finished: index + 1, total: 2))
    }

    @Test func nothingIsEstimatedBeforeTheFirstStep() throws {
        var estimate = EditTimeEstimate()
        estimate.observe(.planned(plan(samples: 1, reconstructionSteps: 0)), at: start)
        estimate.observe(.loadedModels(seconds: 3), at: start)
        #expect(estimate.secondsLeft == nil && estimate.secondsPerStep == nil && !estimate.reconstructionUntimed)
    }

    @Test func diffusionStepsAloneGiveTheRemainingStepsAtTheMeasuredRate() throws {
        var estimate = EditTimeEstimate()
        estimate.observe(.planned(plan(samples: 2, reconstructionSteps: 0)), at: start)
        // Loading the models does not count.
        estimate.observe(.loadedModels(seconds: 30), at: start.addingTimeInterval(30))
        estimate.observe(try step(0, of: 2, 1, of: 5), at: start.addingTimeInterval(32))
        estimate.observe(try step(0, of: 2, 2, of: 5), at: start.addingTimeInterval(34))
        #expect(estimate.secondsPerStep == 2)
        #expect(estimate.secondsLeft == 16)  // 8 of 10 steps at 2 s
        #expect(!estimate.reconstructionUntimed && estimate.reconstructionStepsLeft == 0)
    }

    @Test func reconstructionIsTimedApartAndSaidToBeMissingUntilTimed() throws {
        // Two samples of one batch each: 4 steps at 1 s, then 3 reconstruction steps at 10 s.
        var estimate = EditTimeEstimate()
        var t = 0.0
        func at(_ dt: Double) -> Date { t += dt; return start.addingTimeInterval(t) }
        estimate.observe(.planned(plan(samples: 2, reconstructionSteps: 6)), at: at(0))
        estimate.observe(.loadedModels(seconds: 1), at: at(0))
        for s in 1...4 { estimate.observe(try step(0, of: 2, s, of: 4), at: at(1)) }
        // Before any reconstruction step: the diffusion steps only, and the front end is told.
        #expect(estimate.secondsLeft == 4)
        #expect(estimate.reconstructionUntimed && estimate.reconstructionStepsLeft == 6)
        for s in 1...3 { estimate.observe(reconstruction(sample: 0, s, of: 3), at: at(10)) }
        estimate.observe(finished(0), at: at(10))
        // Sample 0's reconstruction took 40 s over its 3 steps (setup, steps, the last one
        // ending with the finished sample): 13.3 s per step, 3 steps left.
        #expect(!estimate.reconstructionUntimed && estimate.reconstructionStepsLeft == 3)
        let perReconstruction = try #require(estimate.secondsPerReconstructionStep)
        #expect(abs(perReconstruction - 40.0 / 3) < 1e-9)
        // The diffusion rate stays 1 s per step: the reconstruction did not inflate it.
        #expect(estimate.secondsPerStep == 1)
        #expect(abs(try #require(estimate.secondsLeft) - (4 + 40)) < 1e-9)
        // Sample 1: its steps, then its reconstruction; at the end nothing is left.
        for s in 1...4 { estimate.observe(try step(1, of: 2, s, of: 4), at: at(1)) }
        #expect(abs(try #require(estimate.secondsLeft) - 40) < 1e-9)
        for s in 1...3 { estimate.observe(reconstruction(sample: 1, s, of: 3), at: at(10)) }
        estimate.observe(finished(1), at: at(10))
        #expect(estimate.secondsLeft == 0 && estimate.reconstructionStepsLeft == 0)
    }
}
