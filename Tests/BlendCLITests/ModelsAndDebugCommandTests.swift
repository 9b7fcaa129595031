import ArgumentParser
import Foundation
import Testing
import BlendCheckpoint
import BlendModels
import BlendTensor
@testable import BlendCLI

@Suite struct ModelsAndDebugCommandTests {
    @Test func stringsFromFilesCannotDriveTheTerminal() {
        // CSI colour, BEL, an OSC title change, C1 CSI, a bidi override: all shown, none passed through.
        #expect(terminalSafe("a\u{1B}[31mred\u{07}") == "a\\u{1b}[31mred\\u{7}")
        #expect(terminalSafe("\u{1B}]0;pwned\u{07}") == "\\u{1b}]0;pwned\\u{7}")
        #expect(terminalSafe("x\u{9B}2Jy\u{202E}txt.exe") == "x\\u{9b}2Jy\\u{202e}txt.exe")
        #expect(terminalSafe("line\nnext\ttab\r") == "line\\nnext\\ttab\\r")
        #expect(terminalSafe("ünïcode ✓ 日本") == "ünïcode ✓ 日本")
        let long = String(repeating: "m", count: 300)
        #expect(terminalSafe(long, limit: 200) == String(repeating: "m", count: 200) + "… (100 more characters)")
        #expect(terminalSafe(long, limit: 300) == long)
        #expect(terminalSafe(String(repeating: "\u{1B}", count: 3), limit: 2) == "\\u{1b}\\u{1b}… (1 more characters)")
    }

    @Test func debugUNetAsksForItsOwnConfigOption() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("blend-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // A small UNet that matches none of the official presets.
        let config = UNetConfig(imageSize: 16, modelChannels: 32, numResBlocks: 1, channelMult: [1, 1],
                                attentionResolutions: [8], numHeadChannels: 16)
        var made: [SafetensorsTensor] = []
        _ = try UNetModel(config: config, weights: ModelWeights(synthesizing: { key, shape in
            let t = try Tensor(shape: shape, repeating: 0.01)
            made.append(try SafetensorsTensor(name: key, tensor: t))
            return t
        }, modelName: "tiny"))
        let model = directory.appendingPathComponent("small_unet.safetensors")
        try SafetensorsWriter.write(made, to: model)
        let command = try Debug.UNet.parse(["--model", model.path, "--timesteps", "1", "--input", "x.safetensors", "--out", "y.safetensors"])
        do {
            try command.run()
            Issue.record("ran without a config")
        } catch let error as CommandFailure {
            #expect(error.description.contains("pass --config with a JSON config") && !error.description.contains("--diffusion-config"))
        }
        // A malformed config: one line naming the key.
        let json = directory.appendingPathComponent("bad.json")
        try Data(#"{"image_size": "big"}"#.utf8).write(to: json)
        let configured = try Debug.UNet.parse(["--model", model.path, "--config", json.path, "--timesteps", "1", "--input", "x", "--out", "y"])
        #expect(throws: (any Error).self) { try configured.run() }
        do { try configured.run() } catch {
            #expect("\(error)" == "cannot read the config \(json.path): `image_size` should be a whole number")
        }
    }
}
