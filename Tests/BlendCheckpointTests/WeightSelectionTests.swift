import Foundation
import Testing
import BlendTensor
@testable import BlendCheckpoint

/// Training checkpoints as users have them: the weights are found, the EMA preferred.
@Suite struct WeightSelectionTests {
    private func load(_ name: String) throws -> Checkpoint { try CheckpointFile.load(path: Fixtures.path("wrapped/\(name)")) }
    private let plainNames = ["linear.weight", "linear.bias", "norm.weight", "norm.bias", "norm.running_mean",
                              "norm.running_var", "norm.num_batches_tracked"]

    @Test func ddpWeightsWithEMAAndOptimizerGiveTheCompletedEMA() throws {
        let file = try load("training_ddp_ema.pt")
        let weights = try file.modelWeights()
        #expect(weights.entries.map(\.name) == plainNames)
        let selection = try #require(weights.selection)
        #expect(selection.usedEMA && selection.keyPath == ["ema"] && selection.leftOut == ["model", "optimizer"])
        #expect(selection.completedFrom?.key == "model" && selection.completedFrom?.count == 3)
        #expect(selection.description.contains("EMA") && selection.description.contains("optimizer"))
        // Parameters from the EMA (the raw weights + 100), buffers from the raw weights.
        for name in ["linear.weight", "linear.bias", "norm.weight", "norm.bias"] {
            let ema = try weights.tensor(named: name), raw = try file.tensor(named: "model.module.\(name)")
            #expect(ema.scalars == raw.scalars.map { $0 + 100 }, "\(name)")
        }
        #expect(try weights.tensor(named: "norm.running_mean").scalars == file.tensor(named: "model.module.norm.running_mean").scalars)
        #expect(try weights.integers(named: "norm.num_batches_tracked") == [1])
        // Idempotent, and the file's own names stay available.
        #expect(try weights.modelWeights().entries.map(\.name) == plainNames)
        #expect(file.selection == nil && file.contains("optimizer.state.0.exp_avg"))
    }

    @Test func lightningCheckpointIsUnwrappedTwice() throws {
        let weights = try load("lightning.ckpt").modelWeights()
        #expect(weights.entries.map(\.name) == plainNames)
        let selection = try #require(weights.selection)
        #expect(!selection.usedEMA && selection.keyPath == ["state_dict", "model"] && selection.leftOut == ["optimizer_states"])
        #expect(try weights.tensor(named: "linear.weight").scalars == [0, 1, 2, 3, 4, 5])
    }

    @Test func ambiguousAndWeightlessFilesNameTheirKeys() throws {
        #expect(throws: CheckpointError.ambiguousWeights(file: Fixtures.path("wrapped/two_models.pt"), keys: ["model", "state_dict"])) {
            try load("two_models.pt").modelWeights()
        }
        do {
            _ = try load("optimizer_only.pt").modelWeights()
            Issue.record("accepted")
        } catch let error as CheckpointError {
            #expect(error == .noModelWeights(file: Fixtures.path("wrapped/optimizer_only.pt"), keys: ["optimizer"]))
            #expect(error.description.contains("only training state (optimizer)"))
        }
    }

    @Test func plainStateDictsAreLeftAlone() throws {
        for name in ["state_dict_zip.pt", "module_state_dict.pt", "scripted.pt", "tensors.safetensors"] {
            let file = try CheckpointFile.load(path: Fixtures.path(name))
            let weights = try file.modelWeights()
            #expect(weights.selection == nil && weights === file, "\(name)")
        }
        // The real networks' own names: never mistaken for wrappers.
        let architectures = Fixtures.directory.appendingPathComponent("architectures")
        for file in try FileManager.default.contentsOfDirectory(atPath: architectures.path) {
            let names = try String(contentsOf: architectures.appendingPathComponent(file), encoding: .utf8)
                .split(separator: "\n").map { String($0.split(separator: " ")[0]) }
            #expect(try WeightUnwrapping.select(names) == nil, "\(file)")
        }
    }

    @Test func namingRules() throws {
        func select(_ names: [String]) throws -> [String]? { try WeightUnwrapping.select(names)?.tensors.map(\.name) }
        // DataParallel; torch.compile; both inside a state_dict.
        #expect(try select(["module.a.weight", "module.b"]) == ["a.weight", "b"])
        #expect(try select(["state_dict._orig_mod.module.a", "state_dict._orig_mod.module.b"]) == ["a", "b"])
        // A Stable Diffusion checkpoint: `state_dict` only; its model parts are not wrappers.
        #expect(try select(["state_dict.model.diffusion_model.x", "state_dict.first_stage_model.y", "state_dict.cond_stage_model.z",
                            "state_dict.model_ema.decay"]) == ["model.diffusion_model.x", "first_stage_model.y", "cond_stage_model.z", "model_ema.decay"])
        // An EMA whose names are not among the raw ones is taken alone.
        #expect(try select(["model.a", "model.b", "ema.c"]) == ["c"])
        // Training scalars beside a plain state dict do not make it a wrapper.
        #expect(try select(["a.weight", "b.weight", "epoch"]) == nil)
        #expect(try select(["model.a", "epoch"]) == ["a"])
        #expect(throws: WeightUnwrapping.Failure.ambiguous(keys: ["ema", "model_ema"])) { try select(["ema.a", "model_ema.a"]) }
    }
}
