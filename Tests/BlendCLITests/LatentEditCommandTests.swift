import ArgumentParser
import Foundation
import Testing
import BlendCheckpoint
import BlendDiffusion
import BlendEditor
import BlendModels
import BlendPipeline
import BlendPipelineTestSupport
@testable import BlendCLI

@Suite struct LatentEditCommandTests {
    let base = ["photo.png", "--mask", "m.png", "--prompt", "a red ball"]

    @Test func latentDefaults() throws {
        let request = try Edit.parse(base + ["--method", "latent"]).request()
        #expect(request.settings.method == .latent)
        #expect(request.latent == LatentOptions())
        #expect(request.latent.scheduler == .dpmSolverPlusPlus2M && request.latent.steps == 25 && request.latent.strength == 0.75)
        #expect(request.latent.guidanceScale == 7.5 && request.latent.negativePrompt == "" && request.latent.predictionType == nil)
        #expect(request.latent.initialLatent == .source && request.latent.blendLevel == .same && request.latent.maskDilations == 0)
        #expect(request.settings.samples == 4 && request.settings.batchSize == 1 && request.settings.seed == 404)
        #expect(request.models.stableDiffusion.hasSuffix("/v1-5-pruned-emaonly.safetensors") && request.models.stableDiffusionConfig == nil)
        // pixel is the default method's name; its defaults are unchanged.
        let pixel = try Edit.parse(base + ["--method", "pixel"]).request()
        #expect(pixel.settings == (try Edit.parse(base).request().settings) && pixel.settings.method == .blended)
        #expect(pixel.settings.samples == 32 && pixel.settings.pixel.timestepRespacing == "100")
    }

    @Test func everyLatentFlagParses() throws {
        let request = try Edit.parse(base + [
            "--method", "latent", "--sd-model", "sd/", "--sd-config", "cfg/", "--scheduler", "ddim", "--steps", "30",
            "--strength", "0.6", "--guidance-scale", "5", "--negative-prompt", "blurry", "--prediction-type", "v",
            "--init", "noise", "--blend-level", "next", "--mask-dilations", "2", "--reconstruct-background", "5",
            "--samples", "3", "--batch", "2",
            "--models-dir", "/m", "--clip-model", "c.pt",
        ]).request()
        var expected = LatentOptions()
        expected.scheduler = .ddim
        expected.steps = 30
        expected.strength = 0.6
        expected.guidanceScale = 5
        expected.negativePrompt = "blurry"
        expected.predictionType = .vPrediction
        expected.initialLatent = .noise
        expected.blendLevel = .next
        expected.maskDilations = 2
        expected.backgroundReconstructionSteps = 5
        #expect(request.latent == expected)
        #expect(request.models.stableDiffusion == "sd/" && request.models.stableDiffusionConfig == "cfg/" && request.models.clip == "c.pt")
        #expect(request.settings.samples == 3 && request.settings.batchSize == 2)
        #expect(try Edit.parse(base + ["--method", "latent", "--prediction-type", "epsilon"]).request().latent.predictionType == .epsilon)
        #expect(try Edit.parse(["p.png", "--prompt", "x", "--method", "latent", "--models-dir", "/m"]).request().models.stableDiffusion
            == "/m/v1-5-pruned-emaonly.safetensors")
    }

    @Test func optionsOfTheOtherMethodAreRefusedInOneLine() throws {
        func message(_ arguments: [String]) -> String {
            do {
                _ = try Edit.parse(base + arguments)
                Issue.record("\(arguments) was accepted")
                return ""
            } catch {
                return Edit.message(for: error)
            }
        }
        for pixelOnly in [["--skip", "10"], ["--ddim"], ["--clip-lambda", "5"], ["--range-lambda", "5"],
                          ["--augmentations", "2"], ["--save-intermediates"], ["--diffusion-model", "d.pt"],
                          ["--diffusion-config", "c.json"]] {
            let text = message(["--method", "latent"] + pixelOnly)
            #expect(text.contains(pixelOnly[0]) && text.contains("pixel methods (--method pixel or local-clip)") && !text.contains("\n"), "\(text)")
        }
        for localClipOnly in [["--lpips-lambda", "5"], ["--l2-lambda", "5"]] {
            for method in ["latent", "pixel"] {
                let text = message(["--method", method] + localClipOnly)
                #expect(text.contains(localClipOnly[0]) && text.contains("--method local-clip, not of --method \(method)")
                        && !text.contains("\n"), "\(text)")
            }
        }
        for latentOnly in [["--sd-model", "sd"], ["--sd-config", "c"], ["--scheduler", "ddim"], ["--strength", "0.5"],
                           ["--guidance-scale", "3"], ["--negative-prompt", "x"], ["--prediction-type", "v"], ["--init", "noise"],
                           ["--blend-level", "next"], ["--mask-dilations", "1"], ["--reconstruct-background", "3"]] {
            for method in [[], ["--method", "local-clip"]] {
                let text = message(method + latentOnly)
                #expect(text.contains(latentOnly[0]) && text.contains("--method latent") && !text.contains("\n"), "\(text)")
            }
        }
        #expect(message(["--method", "latent", "--steps", "ddim50"]).contains("--steps"))
        #expect(message(["--method", "latent", "--scheduler", "euler"]).contains("scheduler"))
        #expect(message(["--method", "latent", "--prediction-type", "x0"]).contains("prediction-type"))
    }

}

@Suite struct LatentEditCommandRunTests {
    /// The whole command, as a user runs it, on the tiny SD model in both layouts.
    @Test(arguments: [StableDiffusionKeyLayout.compVis, .diffusers])
    func latentEditRunsThroughTheCommand(layout: StableDiffusionKeyLayout) throws {
        let models = try TinyModelFiles.scratch()
        defer { models.remove() }
        let (photo, mask) = try writePhotoAndMask(in: models.directory)
        let out = models.directory.appendingPathComponent("out")
        let sd = sharedTinySD
        var arguments = [photo, "--mask", mask, "--prompt", "a red ball", "--method", "latent", "--sd-model", sd.path("sd1", layout),
                         "--clip-model", models.paths.clip, "--clip-vocab", TinyStableDiffusion.vocabulary, "--steps", "4",
                         "--samples", "2", "--out", out.path, "--quiet"]
        if layout == .compVis { arguments += ["--sd-config", sd.folder("sd1")] }
        let command = try Edit.parse(arguments)
        // Not while `ctrlCAsksTheRunToStop` raises SIGINT.
        try commandRunLock.withLock { _ in try command.run() }
        let latest = out.appendingPathComponent("latest")
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: latest.appendingPathComponent("report.json"))) as? [String: Any]
        #expect((report?["samples"] as? [Any])?.count == 2)
        #expect((report?["settings"] as? [String: Any])?["method"] as? String == "latent")
        #expect(try FileManager.default.contentsOfDirectory(atPath: latest.appendingPathComponent("ranked").path).count == 2)
        #expect(FileManager.default.fileExists(atPath: latest.appendingPathComponent("contact_sheet.png").path))
    }
}

@Suite struct StableDiffusionDownloadTests {
    /// `--sd-model`'s default is the file `blend models download stable-diffusion-v1-5` writes
    /// (a missing one names that command: `LatentEditPipelineTests`).
    @Test func theDefaultSDModelIsTheDownloadableSD15File() throws {
        let sd15 = try #require(ModelRegistry.model(named: "stable-diffusion-v1-5"))
        #expect(sd15.fileName == "v1-5-pruned-emaonly.safetensors" && sd15.size == .exactly(4_265_146_304))
        #expect(sd15.url.host == "huggingface.co" && sd15.url.lastPathComponent == sd15.fileName)
        let defaultPath = ModelFiles(directory: URL(fileURLWithPath: "/m")).stableDiffusion15
        #expect(defaultPath == "/m/" + sd15.fileName)
        let sd21 = try #require(ModelRegistry.model(named: "v2-1_512-ema-pruned.safetensors"))
        #expect(sd21.name == "stable-diffusion-2-1-base" && sd21.url.path.contains("stabilityai/stable-diffusion-2-1-base"))
    }
}
