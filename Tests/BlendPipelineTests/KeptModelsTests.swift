import Foundation
import Testing
import BlendModels
@testable import BlendPipeline
import BlendPipelineTestSupport

@Suite struct KeptModelsTests {
    @Test func keepsAModelPerFileUntilTheFileChanges() throws {
        let models = try TinyModelFiles.scratch()
        defer { models.remove() }
        let path = models.directory.appendingPathComponent("unet.bin").path
        try Data("weights".utf8).write(to: URL(fileURLWithPath: path))
        let unet = try ModelLoader.unet(path: models.paths.diffusion, config: models.paths.diffusionConfig)
        var loads = 0
        func load(_ note: (String) -> Void) throws -> UNetModel {
            loads += 1
            note("used the EMA weights")
            return unet
        }
        let store = KeptModels()
        var notes: [String] = []
        // Off: every call loads.
        for _ in 0..<2 { _ = try store.unet(path: path, config: nil, note: { notes.append($0) }, load: load) }
        #expect(loads == 2)
        store.enable()
        for _ in 0..<3 { _ = try store.unet(path: path, config: nil, note: { notes.append($0) }, load: load) }
        #expect(loads == 3)
        // What the loader said is said again for the kept model.
        #expect(notes == Array(repeating: "used the EMA weights", count: 5))
        // Another config, or a changed file, is loaded anew and replaces the kept model.
        _ = try store.unet(path: path, config: TinyModelFiles.unetConfig, note: { _ in }, load: load)
        #expect(loads == 4)
        try Data("new weights".utf8).write(to: URL(fileURLWithPath: path))
        _ = try store.unet(path: path, config: TinyModelFiles.unetConfig, note: { _ in }, load: load)
        #expect(loads == 5)
        _ = try store.unet(path: path, config: TinyModelFiles.unetConfig, note: { _ in }, load: load)
        #expect(loads == 5)
        store.forgetAll()
        _ = try store.unet(path: path, config: TinyModelFiles.unetConfig, note: { _ in }, load: load)
        #expect(loads == 6)
        // A missing file is never kept.
        _ = try store.unet(path: path + ".missing", config: nil, note: { _ in }, load: load)
        _ = try store.unet(path: path + ".missing", config: nil, note: { _ in }, load: load)
        #expect(loads == 8)
    }

    /// A long-running server edits with one Stable Diffusion model many times: it is read once
    /// per file or folder and loading options.
    @Test func keepsTheStableDiffusionModelPerPathAndOptions() throws {
        let sd = sharedTinySD
        let store = KeptModels()
        store.enable()
        var loads = 0
        func get(_ path: String, _ options: StableDiffusionLoadOptions) throws -> StableDiffusionModels {
            try store.stableDiffusion(path: path, options: options, note: { _ in }) { note in
                loads += 1
                return try StableDiffusionLoader.load(path: path, options: options, note: note)
            }
        }
        let folder = StableDiffusionLoadOptions()
        _ = try get(sd.folder("sd1"), folder)
        _ = try get(sd.folder("sd1"), folder)
        #expect(loads == 1)
        _ = try get(sd.folder("sd1"), StableDiffusionLoadOptions(predictionType: .vPrediction))
        #expect(loads == 2)
        let single = StableDiffusionLoadOptions(configFolder: sd.folder("sd1"))
        _ = try get(sd.singleFile("sd1"), single)
        _ = try get(sd.singleFile("sd1"), single)
        #expect(loads == 3)
        store.forgetAll()
        _ = try get(sd.singleFile("sd1"), single)
        #expect(loads == 4)
    }
}
