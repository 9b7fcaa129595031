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
        for pixelOnly in ["pixel", "timestep_respacing", "skip_timesteps", "ddim", "clip_guidance_lambda", "range_lambda",
                          "lpips_sim_lambda", "l2_sim_lambda", "augmentations", "skip", "clip_lambda"] {
            #expect(cliSettings[pixelOnly] == nil, "\(pixelOnly)")
        }
        // A pixel run's report keeps them.
        var pixel = try Edit.parse([photo, "--mask", mask, "--prompt", "a red ball", "--samples", "1", "--steps", "10", "--skip", "7",
                                    "--augmentations", "2", "--out", models.directory.appendingPathComponent("pixel").path]).request()
        pixel.models = models.paths
        pixel.checksMemory = false
        let pixelSettings = try #require((try reportObject(EditPipeline.run(pixel))["settings"] as? [String: Any])?["pixel"] as? [String: Any])
        #expect(pixelSettings["skip"] as? Int == 7 && pixelSettings["augmentations"] as? Int == 2 && pixelSettings["steps"] as? String == "10")
        #expect(Set(pixelSettings.keys) == Set(PixelOptions.CodingKeys.allCases.map { snakeCase($0.rawValue) }))
    }

    @Test func everyPixelOptionIsAnAPISettingAFlagAndAPageField() throws {
        let page = String(decoding: PageAssets.assets.first { $0.path == "/app.js" }?.bytes ?? [], as: UTF8.self)
        let help = Edit.helpMessage()
        for (key, flag, text, methods) in PixelOptions.descriptions {
            #expect(SettingName(key).flag == flag, "\(key.rawValue)")
            #expect(!text.isEmpty && !methods.isEmpty && !methods.contains(.latent))
            #expect(JobSettings.allKeys.contains(key.rawValue))
            #expect(help.contains(flag), "blend edit --help has no \(flag)")
            #expect(page.contains("\(key.rawValue): [\"set-"), "the page has no field for \(key.rawValue)")
        }
        // The same values through the flags and through the API's JSON.
        let cli = try Edit.parse(["p.png", "--prompt", "x", "--method", "local-clip", "--steps", "ddim20", "--skip", "5", "--ddim",
                                  "--clip-lambda", "3", "--range-lambda", "4", "--augmentations", "2", "--lpips-lambda", "5",
                                  "--l2-lambda", "6"]).request().settings.pixel
        let api = try JobIntake.decodeSettings(Array(#"{"method": "local-clip", "steps": "ddim20", "skip": 5, "ddim": true, "clipLambda": 3, "rangeLambda": 4, "augmentations": 2, "lpipsLambda": 5, "l2Lambda": 6}"#.utf8)).pixel
        #expect(cli == api && cli.skipTimesteps == 5 && cli.l2SimLambda == 6)
        // Older job.json files (flat pixel settings under their old names) still decode.
        let old = try EditPipeline.decodeJSON(EditSettings.self, from: Data(#"{"prompt": "x", "skip_timesteps": 9, "clip_guidance_lambda": 2, "timestep_respacing": "50"}"#.utf8))
        #expect(old.pixel.skipTimesteps == 9 && old.pixel.clipGuidanceLambda == 2 && old.pixel.timestepRespacing == "50")
    }

    @Test func settingErrorsNameFlagsOnTheCommandLineAndFieldsInTheAPI() throws {
        var options = PixelOptions()
        options.skipTimesteps = 200
        #expect(throws: EditError.self) { try options.validate() }
        do {
            try options.validate()
        } catch let error as EditError {
            #expect(error.text(.commandLine) == "invalid setting: --skip (200) must be at least 0 and less than the number of steps (100)")
            #expect(error.text(.api) == "skip (200) must be at least 0 and less than the number of steps (100)")
        }
        var latent = LatentOptions()
        latent.steps = 4
        latent.strength = 0.1
        do {
            try latent.validate()
            Issue.record("expected an error")
        } catch let error as EditError {
            #expect(error.text(.commandLine).hasSuffix("--strength 0.1 of 4 steps leaves no step to run: raise --strength or --steps"))
            #expect(error.text(.api) == "strength set to 0.1 of 4 steps leaves no step to run: raise strength or steps")
        }
        let message: SettingMessage = "\(turnOn: "truncatePrompt"), or \(turnOff: "invertMask")"
        #expect(message.text(.commandLine) == "pass --truncate-prompt, or drop --invert-mask")
        #expect(message.text(.api) == "turn on \"truncate prompt\", or turn off \"invert mask\"")
        #expect(SettingName("l2Lambda").flag == "--l2-lambda" && SettingName("reconstructBackground").flag == "--reconstruct-background")
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

    @Test func theReadmesSettingsTableListsEveryMethodsOptions() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let table = try #require(readme.components(separatedBy: "this table is checked").dropFirst().first)
        let rows = table.split(separator: "\n").drop { !$0.hasPrefix("|") }.prefix { $0.hasPrefix("|") }.dropFirst(2)
        let keys = JobSettings.allKeys
        /// The settings a row's first cell names (backticked words that are setting keys).
        func settings(_ row: Substring) -> Set<String> {
            let cell = row.split(separator: "|", omittingEmptySubsequences: true).first ?? ""
            return Set(cell.split(separator: "`").enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }.filter(keys.contains))
        }
        let listed = rows.map(settings)
        #expect(listed.count == 4)
        guard listed.count == 4 else { return }
        let shared = Set(JobSettings.CodingKeys.allCases.map(\.rawValue)).subtracting(["steps"])
        #expect(listed[0].union(listed[1]) == shared)
        #expect(listed[2] == Set(PixelOptions.CodingKeys.allCases.map(\.rawValue)))
        #expect(listed[3] == Set(LatentOptions.CodingKeys.allCases.map(\.rawValue)))
        #expect(listed.reduce(Set()) { $0.union($1) } == keys)
    }

    /// The object as JSON text with sorted keys, to compare two objects.
    func canonical(_ object: [String: Any]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    func snakeCase(_ key: String) -> String {
        key.reduce(into: "") { out, c in if c.isUppercase { out += "_" + c.lowercased() } else { out.append(c) } }
    }
}
