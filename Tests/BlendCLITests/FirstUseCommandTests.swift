import ArgumentParser
import BlendCheckpoint
import BlendEditor
import BlendPipeline
import BlendPipelineTestSupport
import BlendServer
import Foundation
import Testing
@testable import BlendCLI

/// A newcomer's first runs: usage errors (exit 64) before anything is read, runtime failures
/// (exit 1) that name every missing file, options of another method refused by name, help that
/// names each option's methods, `models list` marks, the console of `blend serve`.
@Suite(.serialized) struct FirstUseCommandTests {
    func scratch() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("blend-first-use-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    /// Runs the `blend` binary; its exit status and standard error.
    func blend(_ arguments: [String]) throws -> (status: Int32, stderr: String) {
        let binary = KillResumeTests.blendBinary
        try #require(FileManager.default.isExecutableFile(atPath: binary), "no \(binary): build the CLI first (swift build)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        let errors = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        try process.run()
        let data = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func badValuesAreUsageErrorsBeforeAnyFileAndMissingFilesAreRuntimeFailuresNamedAtOnce() throws {
        let folder = try scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (photo, mask) = try writePhotoAndMask(in: folder)
        let empty = folder.appendingPathComponent("no-models").path
        let base = ["edit", photo, "--mask", mask, "--prompt", "a red ball", "--models-dir", empty, "--out", folder.appendingPathComponent("out").path]
        // Bad values: exit 64 (EX_USAGE), the value named, though no model file is there (and no photo for the first).
        for (arguments, named) in [(["edit", "/nonexistent/photo.png", "--prompt", "x", "--models-dir", empty, "--steps", "0"], "steps"),
                                   (base + ["--skip", "100"], "skip"), (base + ["--method", "latent", "--strength", "2"], "--strength"),
                                   (base + ["--mask-threshold", "1.5"], "threshold"),
                                   (base + ["--method", "latent", "--lpips-lambda", "5"], "--lpips-lambda"),
                                   (base + ["--no-such-option"], "no-such-option")] {
            let run = try blend(arguments)
            #expect(run.status == 64 && run.stderr.contains(named), "\(arguments): \(run.status) \(run.stderr)")
        }
        // Runtime failures: exit 1. A missing photo is named as such, before the model files.
        let noPhoto = try blend(["edit", "/nonexistent/photo.png", "--prompt", "x", "--models-dir", empty])
        #expect(noPhoto.status == 1 && noPhoto.stderr.contains("/nonexistent/photo.png") && !noPhoto.stderr.contains("model file"),
                "\(noPhoto.stderr)")
        // Every missing file of the method at once, each with its download and option.
        let noModels = try blend(base)
        #expect(noModels.status == 1, "\(noModels.stderr)")
        for (download, option) in [("clip-vocab", "--clip-vocab"), ("ViT-B-16", "--clip-model"), ("256x256_diffusion_uncond", "--diffusion-model")] {
            #expect(noModels.stderr.contains("blend models download \(download) (or give its path with \(option))"), "\(noModels.stderr)")
        }
        #expect(!noModels.stderr.contains("Usage") && !noModels.stderr.contains("USAGE"), "\(noModels.stderr)")
        let latent = try blend(base + ["--method", "latent"])
        #expect(latent.status == 1 && latent.stderr.contains("blend models download stable-diffusion-v1-5")
                && latent.stderr.contains("--sd-model") && !latent.stderr.contains("256x256"), "\(latent.stderr)")
        // The same codes in-process, and the help says them.
        #expect(Edit.exitCode(for: ValidationError("x")) == ExitCode(64))
        #expect(Edit.helpMessage(columns: 400).contains("64 a usage error") && Edit.helpMessage(columns: 400).contains("1 a failure at run time"))
        #expect(Blend.helpMessage(columns: 400).contains("64 a usage error") && Blend.helpMessage(columns: 400).contains("1 a failure at run time"))
    }

    @Test func optionsOfAnotherMethodAreRefusedAndTheHelpNamesEachOptionsMethods() throws {
        func refusal(_ arguments: [String]) -> String {
            do {
                _ = try Edit.parse(["p.png", "--prompt", "x"] + arguments)
                Issue.record("\(arguments) was accepted")
                return ""
            } catch {
                #expect(Edit.exitCode(for: error) == ExitCode(64))
                return Edit.message(for: error)
            }
        }
        #expect(refusal(["--lpips-lambda", "5"]).contains("--lpips-lambda is an option of --method local-clip, not of --method pixel"))
        #expect(refusal(["--method", "pixel", "--l2-lambda", "5"]).contains("--method local-clip"))
        #expect(refusal(["--method", "local-clip", "--no-enforce-background"])
            .contains("--no-enforce-background is an option of --method pixel or latent, not of --method local-clip"))
        #expect(refusal(["--method", "local-clip", "--enforce-background"]).contains("--enforce-background"))
        #expect(refusal(["--method", "local-clip", "--strength", "0.5"]).contains("--method latent, not of --method local-clip"))
        // What does apply is accepted.
        _ = try Edit.parse(["p.png", "--prompt", "x", "--method", "local-clip", "--lpips-lambda", "5", "--skip", "3", "--ddim"])
        _ = try Edit.parse(["p.png", "--prompt", "x", "--method", "latent", "--no-enforce-background"])
        #expect(try !Edit.parse(["p.png", "--prompt", "x", "--no-enforce-background"]).request().settings.enforceBackground)
        // Help: each method's options under its own heading (from the settings types), and
        // "local-clip only" where the pixel method does not take one; no "pixel only".
        let help = Edit.helpMessage(columns: 400)
        #expect(!help.contains("pixel only"), "\(help)")
        let lines = help.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        func section(of option: String) -> String? {
            guard let index = lines.firstIndex(where: { $0.hasPrefix(option + " ") || $0.hasPrefix(option + "/") }) else { return nil }
            return lines[..<index].last { $0.hasSuffix(":") && $0 == $0.uppercased() }
        }
        for option in ["--skip", "--ddim", "--clip-lambda", "--range-lambda", "--augmentations", "--save-intermediates", "--lpips-lambda", "--l2-lambda"] {
            #expect(section(of: option) == "PIXEL METHODS (--METHOD PIXEL, LOCAL-CLIP):", "\(option)")
        }
        for option in LatentOptions.descriptions.map(\.flag) where option != "--steps" {
            #expect(section(of: option) == "LATENT METHOD (--METHOD LATENT):", "\(option)")
        }
        for option in ["--steps", "--samples", "--enforce-background", "--mask-from"] { #expect(section(of: option) == "OPTIONS:", "\(option)") }
        for (option, methods) in [("--lpips-lambda", "local-clip only"), ("--l2-lambda", "local-clip only"), ("--enforce-background", "pixel and latent")] {
            // The option's line and the next (a long option name puts its help on the next line).
            let index = lines.firstIndex { $0.hasPrefix(option + " ") || $0.hasPrefix(option + "/") } ?? lines.count - 1
            let line = lines[index...].prefix(2).joined(separator: " ")
            #expect(line.contains(methods), "\(option): \(line)")
        }
    }

    @Test func modelsListMarksEveryFileAndTheCacheHasOneOptionName() throws {
        let folder = try scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data(repeating: 1, count: 7_289).write(to: folder.appendingPathComponent("vgg.pth"))
        try Data("not the vocabulary".utf8).write(to: folder.appendingPathComponent("bpe_simple_vocab_16e6.txt.gz"))
        let lines = Models.List.lines(cache: ModelCache(directory: folder))
        func line(_ name: String) -> String { lines.first { $0.hasPrefix(name + " ") } ?? "" }
        #expect(line("lpips-vgg").contains("cached") && line("lpips-vgg").contains(byteSize(7_289)), "\(lines)")
        #expect(line("clip-vocab").contains("WRONG") && line("clip-vocab").contains("blend models download clip-vocab --force"), "\(lines)")
        #expect(line("ViT-B-16").contains("missing"), "\(lines)")
        #expect(lines.count == ModelRegistry.models.count)
        // --models-dir everywhere; --cache-dir, the old name, still works but is not shown.
        #expect(try Models.List.parse(["--models-dir", folder.path]).cacheOptions.cache.directory.path == folder.path)
        #expect(try Models.List.parse(["--cache-dir", folder.path]).cacheOptions.cache.directory.path == folder.path)
        #expect(try Models.Download.parse(["clip-vocab", "--cache-dir", folder.path]).cacheOptions.directory == folder.path)
        #expect(!Models.List.helpMessage().contains("--cache-dir") && Models.List.helpMessage().contains("--models-dir"))
        #expect(throws: (any Error).self) { try Models.List.parse(["--models-dir", "/a", "--cache-dir", "/b"]) }
    }

    @Test func serveSaysOnTheConsoleWhatIsMissingAndWhichPortIsExposed() throws {
        let missing = MissingModelFile(ModelRole.clip.missing("/cache/ViT-B-16.pt"))
        let unet = MissingModelFile(ModelRole.diffusion.missing("/cache/256x256_diffusion_uncond.pt"))
        var status = ModelsStatus(state: .missing, message: "m", missing: [missing], missingForLocalClip: [])
        status.missingForPixel = [unet]
        let lines = Serve.consoleLines(for: status)
        #expect(lines.count == 3, "\(lines)")
        #expect(lines[0].contains("/cache/ViT-B-16.pt") && lines[0].contains("blend models download ViT-B-16") && lines[0].contains("--clip-model"))
        #expect(lines[1].contains("pixel") && lines[1].contains("blend models download 256x256_diffusion_uncond"))
        status.state = .ready
        status.missing = []
        status.loadSeconds = 2
        #expect(Serve.consoleLines(for: status).first == "models ready (loaded in 2.0 s)")
        status.state = .failed
        status.message = "the CLIP vocabulary v has 49408 tokens but ..."
        #expect(Serve.consoleLines(for: status) == ["the models failed to load: the CLIP vocabulary v has 49408 tokens but ..."])
        // The exposure warning names the port it listens on (the one --port 0 chose).
        #expect(Serve.exposureWarning(host: "0.0.0.0", port: 41234).contains("port 41234"))
    }

    @Test func aSecondServeOnTheSameDataDirectoryIsARuntimeErrorNamingTheFirst() throws {
        let folder = try scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let data = folder.appendingPathComponent("data")
        let first = try BlendServer(configuration: ServerConfiguration(dataDirectory: data, models: sharedTinyModels.paths))
        defer { first.close() }
        let second = try blend(["serve", "--data-dir", data.path, "--port", "0", "--models-dir", folder.path])
        #expect(second.status == 1, "\(second.stderr)")
        #expect(second.stderr.contains("another blend serve (process \(getpid()))") && second.stderr.contains("--data-dir"), "\(second.stderr)")
        #expect(!second.stderr.contains("USAGE") && !second.stderr.contains("Usage"), "\(second.stderr)")
    }
}
