import ArgumentParser
import Testing
import BlendEditor
import BlendImage
import Foundation
import BlendPipeline
import BlendTensor
@testable import BlendCLI
import BlendConcurrency

/// Held by `ctrlCAsksTheRunToStop`, whose SIGINT would stop a whole command run going on at the
/// same time (`latentEditRunsThroughTheCommand`), and by that run.
let commandRunLock = PThreadMutex<Void>(())

@Suite struct EditCommandTests {
    @Test func defaultsAreTheReferences() throws {
        let command = try Edit.parse(["photo.png", "--mask", "mask.png", "--prompt", "a red ball"])
        let request = try command.request()
        var expected = EditSettings(prompt: "a red ball")
        expected.batchSize = 4
        #expect(request.settings == expected)
        #expect(request.settings.samples == 32 && request.settings.iterations == 8)
        #expect(request.settings.pixel.timestepRespacing == "100" && request.settings.pixel.skipTimesteps == 25)
        #expect(request.settings.pixel.clipGuidanceLambda == 1000 && request.settings.pixel.rangeLambda == 50)
        #expect(request.settings.pixel.augmentations == 8 && request.settings.seed == 404)
        #expect(request.outputDirectory == "output")
        #expect(request.models.diffusion.hasSuffix("256x256_diffusion_uncond.pt"))
        #expect(request.models.clip.hasSuffix("ViT-B-16.pt"))
        #expect(request.precision == .fp32)
    }

    @Test func everyDocumentedFlagParses() throws {
        let command = try Edit.parse([
            "photo.jpg", "--mask", "m.png", "--prompt", "a stone wall", "--out", "dir", "--samples", "3", "--batch", "2",
            "--steps", "ddim50", "--skip", "10", "--ddim", "--seed", "7", "--invert-mask", "--method", "local-clip",
            "--clip-lambda", "500", "--range-lambda", "25", "--augmentations", "4", "--diffusion-model", "d.pt",
            "--clip-model", "c.pt", "--clip-vocab", "v.gz", "--save-intermediates",
        ])
        let request = try command.request()
        #expect(request.settings.method == .localClip && request.settings.pixel.ddim && request.settings.invertMask)
        #expect(request.settings.samples == 3 && request.settings.batchSize == 2 && request.settings.seed == 7)
        #expect(request.settings.pixel.timestepRespacing == "ddim50" && request.settings.pixel.skipTimesteps == 10)
        #expect(request.settings.pixel.clipGuidanceLambda == 500 && request.settings.pixel.rangeLambda == 25)
        #expect(request.saveIntermediates)
        // Paste-back is the pixel and latent methods' (local-clip never pastes).
        #expect(try !Edit.parse(["photo.jpg", "--prompt", "x", "--no-enforce-background"]).request().settings.enforceBackground)
        #expect(request.models.diffusion == "d.pt" && request.models.clip == "c.pt" && request.models.clipVocabulary == "v.gz")
        #expect(request.outputDirectory == "dir")
        #expect(try Edit.parse(["p.png", "--prompt", "x", "--precision", "bf16"]).request().precision == .bf16)
    }

    @Test func photoOptionsParse() throws {
        let defaults = try Edit.parse(["photo.png", "--prompt", "a red ball"]).request()
        #expect(defaults.maskPath == nil && defaults.maskOptions == MaskOptions())
        #expect(defaults.maskOptions.threshold == 0.5 && defaults.maskOptions.region == .auto && defaults.maskOptions.feather == 4)
        #expect(!defaults.resume && !defaults.truncatePrompt && !defaults.randomSeed)
        let request = try Edit.parse([
            "photo.png", "--mask", "m.png", "--prompt", "x", "--mask-threshold", "0.25", "--region", "10,20,300,200",
            "--region-padding", "12", "--feather", "0", "--resume", "--truncate-prompt", "--seed", "-1",
        ]).request()
        #expect(request.maskOptions == MaskOptions(threshold: 0.25, region: .box(PixelBox(x: 10, y: 20, width: 300, height: 200)),
                                                   regionPadding: 12, feather: 0))
        #expect(request.resume && request.truncatePrompt && request.randomSeed)
        #expect(try Edit.parse(["p.png", "--prompt", "x", "--region", "full"]).request().maskOptions.region == .full)
        #expect(try Edit.parse(["p.png", "--prompt", "x", "--seed", "18446744073709551615"]).request().settings.seed == .max)
    }

    @Test func ctrlCAsksTheRunToStop() throws {
        commandRunLock.withLock { _ in
            let signal = InterruptSignal.install()
            defer { signal.uninstall() }
            #expect(!signal.isSet)
            kill(getpid(), SIGINT)
            for _ in 0..<200 where !signal.isSet { usleep(10_000) }
            #expect(signal.isSet)
        }
    }

    /// A negative number is a value, not an option: it reaches the option's range check (it
    /// used to be "Missing value for '--batch <n>'").
    @Test func negativeNumbersReachTheirRangeChecks() throws {
        for option in ["--batch", "--samples", "--augmentations"] {
            do {
                _ = try Edit.parse(["photo.png", "--prompt", "x", option, "-1"])
                Issue.record("\(option) -1 was accepted")
            } catch {
                #expect(Edit.message(for: error).contains("must be at least 1"), "\(option): \(Edit.message(for: error))")
            }
        }
        do {
            _ = try Edit.parse(["photo.png", "--prompt", "x", "--feather", "-3"])
            Issue.record("--feather -3 was accepted")
        } catch {
            #expect(Edit.message(for: error).contains("feather must be 0 to 1000"), "\(Edit.message(for: error))")
        }
        // --seed: a number, or random (-1 as older versions took it); anything else is a usage error.
        #expect(try Edit.parse(["photo.png", "--prompt", "x", "--seed", "-1"]).seed == .random)
        #expect(try Edit.parse(["photo.png", "--prompt", "x", "--seed", "random"]).request().randomSeed)
        let fixed = try Edit.parse(["photo.png", "--prompt", "x", "--seed", "7"]).request()
        #expect(!fixed.randomSeed && fixed.settings.seed == 7)
        for bad in ["-2", "seven", "1.5"] {
            do {
                _ = try Edit.parse(["photo.png", "--prompt", "x", "--seed", bad])
                Issue.record("--seed \(bad) was accepted")
            } catch {
                #expect(Edit.message(for: error).contains("--seed"), "\(Edit.message(for: error))")
            }
        }
    }

    @Test func theVersionIsTheOneReportsRecord() {
        #expect(Blend.configuration.version == EditPipeline.version)
    }

    @Test func badArgumentsAreClearErrors() {
        #expect(throws: (any Error).self) { try Edit.parse(["photo.png", "--mask", "m.png", "--prompt", "  "]) }
        #expect(throws: (any Error).self) { try Edit.parse(["photo.png", "--mask", "m.png", "--prompt", "x", "--samples", "0"]) }
        #expect(throws: (any Error).self) { try Edit.parse(["photo.png", "--mask", "m.png", "--prompt", "x", "--method", "magic"]) }
        #expect(throws: (any Error).self) { try Edit.parse(["photo.png", "--mask", "m.png", "--prompt", "x", "--seed", "-2"]) }
        #expect(throws: (any Error).self) { try Edit.parse(["photo.png", "--mask", "m.png", "--prompt", "x", "--region", "1,2,3"]) }
        #expect(throws: (any Error).self) { try Edit.parse(["photo.png", "--prompt", "x", "--region", "0,0,0,5"]) }
        // bf16-rounded only measures accuracy: not offered on the command line.
        #expect(throws: (any Error).self) { try Edit.parse(["photo.png", "--prompt", "x", "--precision", "bf16-rounded"]) }
        #expect(throws: (any Error).self) { try Edit.parse(["photo.png", "--prompt", "x", "--precision", "fp16"]) }
        let message = Edit.message(for: ValidationError("the prompt is empty: say what the masked region should become"))
        #expect(message.contains("prompt is empty"))
    }

    @Test func maxMegapixelsReachesTheDecodersAndRefusesBadValues() throws {
        #expect(try Edit.parse(["p.png", "--prompt", "x"]).request().maximumPixels == 100_000_000)
        #expect(try Edit.parse(["p.png", "--prompt", "x"]).request().checksMemory)
        #expect(try !Edit.parse(["p.png", "--prompt", "x", "--skip-memory-check"]).request().checksMemory)
        #expect(try Edit.parse(["p.png", "--prompt", "x", "--max-megapixels", "12"]).request().maximumPixels == 12_000_000)
        #expect(try Edit.parse(["p.png", "--prompt", "x", "--max-megapixels", "10000"]).request().maximumPixels == 10_000_000_000)
        for bad in ["0", "-5", "10001", "1.5", "lots", "99999999999999999999"] {
            #expect(throws: (any Error).self, "--max-megapixels \(bad)") { try Edit.parse(["p.png", "--prompt", "x", "--max-megapixels", bad]) }
        }
        do {
            _ = try Edit.parse(["p.png", "--prompt", "x", "--max-megapixels", "0"])
        } catch {
            #expect(Edit.message(for: error).contains("--max-megapixels must be 1 to 10000"))
        }
    }

    /// A malformed `--diffusion-config` is one line naming the key and the flag, not a `DecodingError` dump.
    @Test func malformedDiffusionConfigIsOneLineNamingTheKey() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("blend-bad-config-\(getpid()).json")
        try Data(#"{"image_size": 64, "num_channels": 32}"#.utf8).write(to: path)
        defer { try? FileManager.default.removeItem(at: path) }
        do {
            // Refused while the options are parsed (a usage error), before any other file is read.
            _ = try Edit.parse(["photo.png", "--mask", "m.png", "--prompt", "x", "--diffusion-config", path.path])
            Issue.record("a malformed config was accepted")
        } catch {
            let message = Edit.message(for: error)
            #expect(message.contains("`num_res_blocks` is missing"))
            #expect(message.contains("--diffusion-config"))
            #expect(!message.contains("\n") && !message.contains("DecodingError"))
            #expect(Edit.exitCode(for: error) == ExitCode(64))
        }
    }
}
