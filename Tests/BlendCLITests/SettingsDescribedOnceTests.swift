import Foundation
import Testing
import BlendEditor
@testable import BlendPipeline
import BlendPipelineTestSupport
@testable import BlendCLI
@testable import BlendServer

/// The latent method's settings are one type (``LatentOptions``) for `blend edit`, the web API
/// and report.json (issue 21): the same flags and the same API fields record the same options,
/// and a latent report lists none of the pixel methods' settings.
@Suite(.serialized) struct SettingsDescribedOnceTests {
    func reportObject(_ report: EditReport) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: report.directory).appendingPathComponent("report.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test func aLatentJobPostedToTheAPIRecordsWhatBlendEditRecordsForTheSameFlags() throws {
        let models = try TinyModelFiles.scratch()
        defer { models.remove() }
        let (photo, mask) = try writePhotoAndMask(in: models.directory)
        let paths = sharedTinySD.editPaths("sd1", .compVis, clip: models.paths)

        // blend edit --method latent with the four options the API used to refuse, and more.
        var cli = try Edit.parse([photo, "--mask", mask, "--prompt", "a red ball", "--method", "latent", "--samples", "1",
                                  "--steps", "4", "--mask-dilations", "2", "--blend-level", "next", "--init", "noise",
                                  "--prediction-type", "v", "--strength", "0.5", "--guidance-scale", "5",
                                  "--negative-prompt", "blurry", "--seed", "9",
                                  "--out", models.directory.appendingPathComponent("cli").path]).request()
        cli.models = paths
        cli.checksMemory = false
        // The same as the API's settings JSON.
        let settings = try JobIntake.decodeSettings(Array(#"""
            {"method": "latent", "samples": 1, "steps": 4, "maskDilations": 2, "blendLevel": "next", "init": "noise",
             "predictionType": "v", "strength": 0.5, "guidanceScale": 5, "negativePrompt": "blurry", "seed": 9}
            """#.utf8))
        #expect(JobIntake.unusedSettings(settings).isEmpty)
        let api = settings.editRequest(prompt: "a red ball", imagePath: photo, maskPath: mask,
                                       outputDirectory: models.directory.appendingPathComponent("api").path, models: paths)
        #expect(api.latent == cli.latent && api.settings == cli.settings)

        let fromCLI = try reportObject(EditPipeline.run(cli)), fromAPI = try reportObject(EditPipeline.run(api))
        let cliLatent = try #require((fromCLI["latent"] as? [String: Any])?["options"] as? [String: Any])
        let apiLatent = try #require((fromAPI["latent"] as? [String: Any])?["options"] as? [String: Any])
        #expect(try canonical(cliLatent) == canonical(apiLatent))
        #expect(cliLatent["mask_dilations"] as? Int == 2 && cliLatent["blend_level"] as? String == "next"
            && cliLatent["init"] as? String == "noise" && cliLatent["prediction_type"] as? String == "v_prediction")
        #expect(Set(cliLatent.keys) == Set(LatentOptions.CodingKeys.allCases.map { snakeCase($0.rawValue) }))
        // The shared settings agree too, and list nothing of the pixel methods.
        let cliSettings = try #require(fromCLI["settings"] as? [String: Any]), apiSettings = try #require(fromAPI["settings"] as? [String: Any])
        #expect(try canonical(cliSettings) == canonical(apiSettings))
        for pixelOnly in ["timestep_respacing", "skip_timesteps", "ddim", "clip_guidance_lambda", "range_lambda",
                          "lpips_sim_lambda", "l2_sim_lambda", "augmentations"] {
            #expect(cliSettings[pixelOnly] == nil, "\(pixelOnly)")
        }
        // A pixel run's report keeps them.
        var pixel = try Edit.parse([photo, "--mask", mask, "--prompt", "a red ball", "--samples", "1", "--steps", "10", "--skip", "7",
                                    "--augmentations", "2", "--out", models.directory.appendingPathComponent("pixel").path]).request()
        pixel.models = models.paths
        pixel.checksMemory = false
        let pixelSettings = try #require(try reportObject(EditPipeline.run(pixel))["settings"] as? [String: Any])
        #expect(pixelSettings["skip_timesteps"] as? Int == 7 && pixelSettings["clip_guidance_lambda"] != nil)
    }

    @Test func everyLatentOptionIsAnAPISettingAndAFlag() throws {
        // Each option has one description: its API key is its flag in camel case, the page has
        // its field, and the API accepts it.
        let page = String(decoding: PageAssets.assets.first { $0.path == "/app.js" }?.bytes ?? [], as: UTF8.self)
        for (key, flag, help) in LatentOptions.descriptions {
            let camel = flag.dropFirst(2).split(separator: "-").enumerated()
                .map { $0.offset == 0 ? String($0.element) : $0.element.prefix(1).uppercased() + $0.element.dropFirst() }.joined()
            #expect(key.rawValue == camel, "\(flag)")
            #expect(!help.isEmpty)
            #expect(JobSettings.allKeys.contains(key.rawValue))
            #expect(page.contains("\(key.rawValue): [\"set-"), "the page has no field for \(key.rawValue)")
        }
        // Older job.json files (their own key names) still decode.
        let old = try EditPipeline.decodeJSON(LatentOptions.self, from: Data(#"{"initial_latent": "noise", "background_reconstruction_steps": 3}"#.utf8))
        #expect(old.initialLatent == .noise && old.backgroundReconstructionSteps == 3)
    }

    /// The object as JSON text with sorted keys, to compare two objects.
    func canonical(_ object: [String: Any]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    func snakeCase(_ key: String) -> String {
        key.reduce(into: "") { out, c in if c.isUppercase { out += "_" + c.lowercased() } else { out.append(c) } }
    }
}
