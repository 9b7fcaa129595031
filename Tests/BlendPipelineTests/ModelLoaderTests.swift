import Foundation
import Testing
import BlendCheckpoint
import BlendModels
import BlendPipeline
import BlendPipelineTestSupport
import BlendTensor

/// Model files as users have them: training checkpoints, JSON configs with mistakes.
@Suite struct ModelLoaderTests {
    /// The tiny UNet's weights saved as a training loop does: DataParallel raw weights (doubled,
    /// so they differ), the EMA, and optimizer state.
    @Test func trainingCheckpointLoadsItsEMAAndSaysSo() throws {
        let models = try TinyModelFiles()
        defer { models.remove() }
        let plain = try CheckpointFile.load(path: models.paths.diffusion).tensors()
        var wrapped: [SafetensorsTensor] = []
        for (name, tensor) in plain.sorted(by: { $0.key < $1.key }) {
            wrapped.append(try SafetensorsTensor(name: "model.module.\(name)", tensor: tensor * 2))
            wrapped.append(try SafetensorsTensor(name: "ema.\(name)", tensor: tensor))
        }
        wrapped.append(try SafetensorsTensor(name: "optimizer.state.0.exp_avg", tensor: try Tensor.ones([3])))
        let path = models.directory.appendingPathComponent("training.safetensors")
        try SafetensorsWriter.write(wrapped, to: path)

        var notes: [String] = []
        let fromTraining = try ModelLoader.unet(path: path.path, config: TinyModelFiles.unetConfig) { notes.append($0) }
        let reference = try ModelLoader.unet(path: models.paths.diffusion, config: TinyModelFiles.unetConfig)
        #expect(notes.count == 1 && notes[0].contains("EMA weights under `ema`") && notes[0].contains("not used: model, optimizer"))
        var rng = SplitMix64(seed: 4)
        let x = try Tensor.randomNormal([1, 3, 16, 16], using: &rng)
        #expect(try fromTraining(x, timesteps: [500]).scalars == reference(x, timesteps: [500]).scalars)
    }

    @Test func unknownFilesNameTheKeysTheirTensorsAreUnder() throws {
        let models = try TinyModelFiles()
        defer { models.remove() }
        let path = models.directory.appendingPathComponent("gan.safetensors")
        try SafetensorsWriter.write([
            try SafetensorsTensor(name: "generator.conv.weight", tensor: try Tensor.ones([2, 2])),
            try SafetensorsTensor(name: "discriminator.conv.weight", tensor: try Tensor.ones([2])),
            try SafetensorsTensor(name: "discriminator.conv.bias", tensor: try Tensor.ones([2])),
        ], to: path)
        do {
            _ = try ModelLoader.unet(path: path.path)
            Issue.record("accepted")
        } catch let error as ModelLoadingError {
            #expect(error.description.contains("its tensors are under: generator (1 tensor), discriminator (2 tensors)"))
        }
    }

    @Test func unknownShapesAskForAConfigUnderTheFrontEndsOption() throws {
        let models = try TinyModelFiles()
        defer { models.remove() }
        do {
            _ = try ModelLoader.unet(path: models.paths.diffusion)
            Issue.record("accepted")
        } catch let error as ModelLoadingError {
            guard case .ambiguousConfig = error else { Issue.record("wrong error \(error)"); return }
            #expect(error.description.contains("pass --diffusion-config with a JSON config"))
            #expect(error.description(configOption: "--config").contains("pass --config with a JSON config"))
            #expect(!error.description(configOption: "--config").contains("--diffusion-config"))
        }
    }

    @Test func malformedConfigsAreOneLineNamingTheKey() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("blend-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let good = #"{"image_size": 16, "num_channels": 32, "num_res_blocks": 1, "channel_mult": [1, 1], "attention_resolutions": [8], "num_head_channels": 16}"#
        func message(_ json: String) throws -> String {
            let file = directory.appendingPathComponent("c.json")
            try Data(json.utf8).write(to: file)
            do { _ = try ConfigFile.unet(path: file.path) } catch let error as ConfigFileError {
                #expect(!error.description.contains("\n") && error.description.hasPrefix("cannot read the config \(file.path): "))
                return error.detail
            }
            Issue.record("accepted \(json)")
            return ""
        }
        let file = directory.appendingPathComponent("good.json")
        try Data(good.utf8).write(to: file)
        #expect(try ConfigFile.unet(path: file.path) == TinyModelFiles.unetConfig)

        #expect(try message(good.replacingOccurrences(of: #""num_channels": 32"#, with: #""num_channels": "32""#)) == "`num_channels` should be a whole number")
        #expect(try message(good.replacingOccurrences(of: #""num_res_blocks": 1, "#, with: "")) == "the required key `num_res_blocks` is missing")
        #expect(try message(good.replacingOccurrences(of: "[1, 1]", with: #"[1, "x"]"#)) == "`channel_mult[1]` should be a number")
        #expect(try message(good.replacingOccurrences(of: #""num_res_blocks": 1"#, with: #""num_res_blocks": null"#)) == "`num_res_blocks` is null; it should be a whole number")
        #expect(try message("[1, 2]") == "the file holds no JSON object of settings")
        #expect(try message(#"{"image_size": 16,"#).hasPrefix("it is not valid JSON"))
        #expect(throws: ConfigFileError.self) { try ConfigFile.unet(path: directory.appendingPathComponent("absent.json").path) }
    }
}
