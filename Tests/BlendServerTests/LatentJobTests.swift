import BlendCheckpoint
import BlendEditor
import BlendImage
import BlendModels
import BlendPipeline
import BlendPipelineTestSupport
import Foundation
import HummingbirdTesting
import Testing
@testable import BlendServer

/// `method: latent` jobs on the tiny Stable Diffusion model (a diffusers folder), ranked by the
/// tiny CLIP: the same pipeline as `blend edit --method latent`.
@Suite struct LatentJobTests {
    static let latentSettings = #"{"method": "latent", "steps": 4, "samples": 2, "negativePrompt": "blurry", "guidanceScale": 5}"#

    @Test func aLatentJobRunsEndToEnd() async throws {
        try await withServer(configure: { $0.models = sharedTinySD.editPaths("sd1", .diffusers, clip: $0.models) }) { fixture, _, client in
            try await client.waitForModels()
            let status = try await client.json("/api/status").object
            #expect(((status["models"] as? [String: Any])?["missingForLatent"] as? [Any])?.isEmpty == true)
            let created = try await client.post(.job(photo: fixture.photo, mask: fixture.mask, settings: Self.latentSettings))
            #expect(created.status == .created, "\(created.text)")
            let job = try JSONSerialization.jsonObject(with: Data(buffer: created.body)) as? [String: Any]
            let id = try #require(job?["id"] as? String)
            #expect(job?["modelSize"] as? Int == 16)
            let settings = try #require(job?["settings"] as? [String: Any])
            #expect(settings["method"] as? String == "latent" && settings["steps"] as? Int == 4 && settings["batch"] as? Int == 1)
            #expect(settings["scheduler"] as? String == "dpm++2m" && settings["strength"] as? Double == 0.75)
            let finished = try await client.waitForJob(id)
            #expect(finished["state"] as? String == "finished", "\(finished)")
            let results = try #require(finished["results"] as? [[String: Any]])
            #expect(results.count == 2)
            let photo = try RGBImage(encoded: fixture.photo)
            let mask = try EditMask(image: RGBImage(encoded: fixture.mask))
            let response = try await client.execute(uri: try #require(results[0]["url"] as? String), method: .get)
            let image = try RGBImage(encoded: Array(buffer: response.body))
            for i in 0..<1200 where !mask.isEdited[i] { #expect(image.pixels[3 * i..<3 * i + 3] == photo.pixels[3 * i..<3 * i + 3]) }
            let report = try await client.json("/api/jobs/\(id)/report").object
            let latent = report["latent"] as? [String: Any]
            #expect((latent?["options"] as? [String: Any])?["negative_prompt"] as? String == "blurry")
            #expect((latent?["options"] as? [String: Any])?["guidance_scale"] as? Double == 5)
        }
    }

    @Test func latentSettingsHaveTheCLIsDefaultsAndBadOnesAre400() async throws {
        let latent = try JobIntake.decodeSettings(Array(#"{"method": "latent"}"#.utf8))
        #expect(latent.steps == "25" && latent.samples == 4 && latent.batch == 1 && latent.latent == LatentOptions())
        let given = try JobIntake.decodeSettings(Array(#"{"method": "latent", "steps": 30, "scheduler": "ddim", "strength": 0.5}"#.utf8))
        #expect(given.latent.steps == 30 && given.latent.scheduler == .ddim && given.latent.strength == 0.5)
        for bad in [#"{"method": "latent", "steps": "ddim50"}"#, #"{"method": "latent", "strength": 2}"#,
                    #"{"method": "latent", "guidanceScale": -1}"#, #"{"method": "latent", "scheduler": "euler"}"#,
                    #"{"method": "latent", "steps": 0}"#] {
            #expect(throws: ServerError.self, "\(bad)") { try JobIntake.decodeSettings(Array(bad.utf8)) }
        }
    }

    /// `reconstructBackground` (`--reconstruct-background`): off by default, carried into the
    /// pipeline's options, the job's settings and its report.json; bad values are a 400 that
    /// names the setting and its range.
    @Test func backgroundReconstructionTravelsToTheReportAndBadValuesAre400() async throws {
        #expect(try JobIntake.decodeSettings(Array(#"{"method": "latent"}"#.utf8)).latent.backgroundReconstructionSteps == 0)
        let given = try JobIntake.decodeSettings(Array(#"{"method": "latent", "reconstructBackground": 12}"#.utf8))
        #expect(given.latent.backgroundReconstructionSteps == 12)
        for (bad, words) in [(#"{"method": "latent", "reconstructBackground": -1}"#, "reconstructBackground must be from 0 to 10000"),
                             (#"{"method": "latent", "reconstructBackground": 10001}"#, "reconstructBackground must be from 0 to 10000"),
                             (#"{"method": "latent", "reconstructBackground": 2.5}"#, "reconstructBackground must be a whole number, got 2.5"),
                             (#"{"method": "latent", "reconstructBackground": "many"}"#, "reconstructBackground has the wrong type")] {
            do {
                _ = try JobIntake.decodeSettings(Array(bad.utf8))
                Issue.record("\(bad) was accepted")
            } catch let error as ServerError {
                #expect(error.statusCode == 400 && error.description.contains(words), "\(bad): \(error.description)")
            }
        }
        try await withServer(configure: { $0.models = sharedTinySD.editPaths("sd1", .diffusers, clip: $0.models) }) { fixture, _, client in
            try await client.waitForModels()
            let refused = try await client.post(.job(photo: fixture.photo, mask: fixture.mask,
                                                     settings: #"{"method": "latent", "reconstructBackground": -3}"#))
            #expect(refused.status == .badRequest && refused.message.contains("reconstructBackground must be from 0 to 10000"),
                    "\(refused.message)")
            let settings = #"{"method": "latent", "steps": 4, "samples": 1, "reconstructBackground": 2}"#
            let created = try await client.post(.job(photo: fixture.photo, mask: fixture.mask, settings: settings))
            #expect(created.status == .created, "\(created.text)")
            let job = try JSONSerialization.jsonObject(with: Data(buffer: created.body)) as? [String: Any]
            let id = try #require(job?["id"] as? String)
            #expect((job?["settings"] as? [String: Any])?["reconstructBackground"] as? Int == 2)
            let finished = try await client.waitForJob(id)
            #expect(finished["state"] as? String == "finished", "\(finished)")
            let report = try await client.json("/api/jobs/\(id)/report").object
            let options = (report["latent"] as? [String: Any])?["options"] as? [String: Any]
            #expect(options?["reconstruct_background"] as? Int == 2)
            // The last progress was the reconstruction's last step.
            let progress = finished["progress"] as? [String: Any]
            #expect(progress?["reconstructionSample"] as? Int == 0 && progress?["reconstructionStep"] as? Int == 2
                    && progress?["reconstructionSteps"] as? Int == 2, "\(progress ?? [:])")
            // Its ETA counts the reconstruction (timed by then): nothing is left out.
            #expect(progress?["etaExcludesReconstruction"] as? Bool == false && progress?["etaSeconds"] is Double, "\(progress ?? [:])")
        }
    }

    @Test func anAbsentSDModelDisablesOnlyTheLatentMethodAndNamesItsDownload() async throws {
        let absent = FileManager.default.temporaryDirectory.appendingPathComponent("blend-no-sd-\(UUID().uuidString)/v1-5-pruned-emaonly.safetensors").path
        try await withServer(configure: {
            $0.models = sharedTinySD.editPaths("sd1", .diffusers, clip: $0.models)
            $0.models.stableDiffusion = absent
        }) { fixture, _, client in
            try await client.waitForModels()
            let models = try await client.json("/api/status").object["models"] as? [String: Any]
            let missing = models?["missingForLatent"] as? [[String: Any]]
            #expect(missing?.first?["command"] as? String == "blend models download stable-diffusion-v1-5")
            let refused = try await client.post(.job(photo: fixture.photo, mask: fixture.mask, settings: Self.latentSettings))
            #expect(refused.status == .serviceUnavailable && refused.message.contains("blend models download stable-diffusion-v1-5"),
                    "\(refused.message)")
            // The pixel method still takes jobs.
            let pixel = try await client.post(.job(photo: fixture.photo, mask: fixture.mask))
            #expect(pixel.status == .created, "\(pixel.message)")
        }
    }

    @Test func anAbsentPixelUNetDisablesOnlyThePixelMethodsAndNamesItsDownload() async throws {
        let absent = FileManager.default.temporaryDirectory.appendingPathComponent("blend-no-unet-\(UUID().uuidString)/256x256_diffusion_uncond.pt").path
        try await withServer(configure: {
            $0.models = sharedTinySD.editPaths("sd1", .diffusers, clip: $0.models)
            $0.models.diffusion = absent
        }) { fixture, _, client in
            try await client.waitForModels()
            let models = try #require(try await client.json("/api/status").object["models"] as? [String: Any])
            #expect(models["state"] as? String == "ready")
            let missing = models["missingForPixel"] as? [[String: Any]]
            #expect(missing?.first?["command"] as? String == "blend models download 256x256_diffusion_uncond")
            #expect((models["missingForLatent"] as? [Any])?.isEmpty == true)
            let refused = try await client.post(.job(photo: fixture.photo, mask: fixture.mask))
            #expect(refused.status == .serviceUnavailable && refused.message.contains("blend models download 256x256_diffusion_uncond")
                    && refused.message.contains("latent method"), "\(refused.message)")
            // The latent method still takes jobs, and they finish.
            let created = try await client.post(.job(photo: fixture.photo, mask: fixture.mask, settings: Self.latentSettings))
            #expect(created.status == .created, "\(created.message)")
            let job = try JSONSerialization.jsonObject(with: Data(buffer: created.body)) as? [String: Any]
            let finished = try await client.waitForJob(try #require(job?["id"] as? String))
            #expect(finished["state"] as? String == "finished", "\(finished)")
        }
    }
}
