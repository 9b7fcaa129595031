import Foundation
import Testing
import BlendCheckpoint
import BlendDiffusion
import BlendEditor
import BlendImage
import BlendModels
import BlendPipeline
import BlendPipelineTestSupport
import BlendTensor

/// `--method latent` through the pipeline on the tiny Stable Diffusion models (both layouts),
/// ranked by the tiny CLIP of `TinyModelFiles`: the model works at 16² (sample_size 8, VAE
/// factor 2), 4 solver steps of which strength 0.75 runs 3.
@Suite(.serialized) struct LatentEditPipelineTests {
    let sd = sharedTinySD

    func request(_ models: TinyModelFiles, out: URL, variant: String = "sd1", layout: StableDiffusionKeyLayout = .compVis,
                 samples: Int = 2, batch: Int = 1) throws -> EditRequest {
        let (photo, mask) = try writePhotoAndMask(in: models.directory)
        var settings = EditSettings(prompt: "a red ball")
        settings.method = .latent
        settings.samples = samples
        settings.batchSize = batch
        var request = EditRequest(imagePath: photo, maskPath: mask, outputDirectory: out.path, settings: settings,
                                  models: sd.editPaths(variant, layout, clip: models.paths))
        request.latent.steps = 4
        request.latent.negativePrompt = "blurry"
        return request
    }

    func sampleBytes(_ report: EditReport) throws -> [Int: [UInt8]] {
        var files: [Int: [UInt8]] = [:]
        for sample in report.samples {
            files[sample.index] = Array(try Data(contentsOf: URL(fileURLWithPath: report.directory).appendingPathComponent(sample.sampleFile)))
        }
        return files
    }

    @Test(arguments: [("sd1", StableDiffusionKeyLayout.compVis), ("sd1", .diffusers), ("sd2", .compVis), ("sd2", .diffusers)])
    func editsEndToEndInBothLayouts(variant: String, layout: StableDiffusionKeyLayout) throws {
        let models = try TinyModelFiles.scratch()
        defer { models.remove() }
        let out = models.directory.appendingPathComponent("out")
        let request = try request(models, out: out, variant: variant, layout: layout)
        var steps: [EditProgress] = []
        var finished: [FinishedSample] = []
        let report = try EditPipeline.run(request) { event in
            if case let .step(p) = event { steps.append(p) }
            if case let .sampleFinished(sample) = event {
                #expect(FileManager.default.fileExists(atPath: sample.file))
                finished.append(sample)
            }
        }
        // 2 samples, one at a time, 3 of the 4 steps each; progress counts across batches.
        #expect(steps.map(\.completedSteps) == Array(1...6) && steps.allSatisfy { $0.totalSteps == 6 })
        // The live preview: each step's x0 estimate through the colour map, at the edit's size.
        #expect(try steps.allSatisfy { try $0.predictedImage().shape == [1, 3, 16, 16] })
        #expect(try steps.allSatisfy { try $0.predictedImage().scalars.allSatisfy { $0 >= -1 && $0 <= 1 } })
        #expect(finished.map(\.index) == [0, 1])
        #expect(report.modelSize == 16 && report.samples.count == 2)
        #expect(report.samples.map(\.distance) == report.samples.map(\.distance).sorted())
        #expect(report.samples.allSatisfy { $0.distance.isFinite })
        #expect(report.latent?.stepsRun == 3 && report.latent?.options.negativePrompt == "blurry")
        #expect(report.latent?.predictionType == (variant == "sd2" && layout == .diffusers ? .vPrediction : .epsilon))
        #expect(report.models["stable_diffusion"] == request.models.stableDiffusion)
        // Outside the mask every pixel is the photo's; inside, the edit shows.
        let original = try RGBImage(contentsOf: request.imagePath)
        let editMask = try EditMask(contentsOf: request.maskPath!)
        for sample in report.samples {
            let result = try RGBImage(contentsOf: URL(fileURLWithPath: report.directory).appendingPathComponent(sample.file).path)
            #expect(result.width == 40 && result.height == 30)
            var changedInside = false
            for i in 0..<1200 {
                let same = result.pixels[3 * i..<3 * i + 3] == original.pixels[3 * i..<3 * i + 3]
                if editMask.isEdited[i] { changedInside = changedInside || !same } else { #expect(same) }
            }
            #expect(changedInside)
        }
        let latest = out.appendingPathComponent("latest")
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: latest.path))
                == ["job.json", "progress.jsonl", "samples", "ranked", "contact_sheet.png", "report.json"])
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: latest.appendingPathComponent("report.json"))) as? [String: Any]
        let latent = json?["latent"] as? [String: Any]
        let options = latent?["options"] as? [String: Any]
        #expect((json?["settings"] as? [String: Any])?["method"] as? String == "latent")
        #expect(options?["scheduler"] as? String == "dpm++2m" && options?["steps"] as? Int == 4)
        #expect(options?["strength"] as? Double == 0.75 && options?["guidance_scale"] as? Double == 7.5)
        #expect(latent?["prediction_type"] as? String != nil && latent?["stable_diffusion"] as? String == request.models.stableDiffusion)
    }

    @Test func sampleIDependsOnlyOnTheSeedAndIAndAResumedRunFinishesTheSame() throws {
        let models = try TinyModelFiles.scratch()
        defer { models.remove() }
        var whole = try request(models, out: models.directory.appendingPathComponent("whole"), samples: 3, batch: 3)
        whole.latent.scheduler = .ddim
        let reference = try sampleBytes(EditPipeline.run(whole))
        // Batch 1 gives the same samples as batch 3.
        var single = whole
        single.outputDirectory = models.directory.appendingPathComponent("single").path
        single.settings.batchSize = 1
        #expect(try sampleBytes(EditPipeline.run(single)) == reference)
        // Cancelled at a step of the second sample (the first kept), resumed with batch 2.
        var interrupted = single
        interrupted.outputDirectory = models.directory.appendingPathComponent("resumed").path
        var finished = 0
        #expect(throws: CancellationError.self) {
            try EditPipeline.run(interrupted) { event in
                if case .sampleFinished = event { finished += 1 }
                if case let .step(p) = event, finished == 1, p.step == 2 { throw CancellationError() }
            }
        }
        #expect(finished == 1)
        interrupted.resume = true
        interrupted.settings.batchSize = 2
        var made: [Int] = []
        let report = try EditPipeline.run(interrupted) { event in
            if case let .sampleFinished(sample) = event { made.append(sample.index) }
        }
        #expect(made == [1, 2] && report.resumedSamples == 1)
        #expect(try sampleBytes(report) == reference)
        // The job key holds the latent options: other options do not resume this run.
        var other = try request(models, out: models.directory.appendingPathComponent("other"), samples: 2)
        _ = try? EditPipeline.run(other) { event in if case .sampleFinished = event { throw CancellationError() } }
        other.resume = true
        other.latent.strength = 0.5
        #expect(throws: OutputError.self) { try EditPipeline.run(other) }
    }

    @Test func badLatentOptionsAreRefusedBeforeAnythingIsWritten() throws {
        let models = try TinyModelFiles.scratch()
        defer { models.remove() }
        let out = models.directory.appendingPathComponent("out")
        func refused(_ change: (inout EditRequest) throws -> Void) throws -> String {
            var request = try request(models, out: out)
            try change(&request)
            var loaded = false
            do {
                _ = try EditPipeline.run(request) { event in if case .loadingModels = event { loaded = true } }
            } catch {
                #expect(!loaded)
                #expect(!FileManager.default.fileExists(atPath: out.path))
                return String(describing: error)
            }
            Issue.record("expected an error")
            return ""
        }
        #expect(try refused { $0.latent.steps = 0 }.contains("--steps"))
        #expect(try refused { $0.latent.steps = 1001 }.contains("--steps"))
        #expect(try refused { $0.latent.strength = 0 }.contains("--strength"))
        #expect(try refused { $0.latent.strength = 1.5 }.contains("--strength"))
        #expect(try refused { $0.latent.strength = .nan }.contains("--strength"))
        #expect(try refused { $0.latent.strength = 0.1 }.contains("leaves no step"))
        #expect(try refused { $0.latent.guidanceScale = -1 }.contains("--guidance-scale"))
        #expect(try refused { $0.latent.guidanceScale = .infinity }.contains("--guidance-scale"))
        #expect(try refused { $0.latent.maskDilations = 65 }.contains("--mask-dilations"))
        #expect(try refused { $0.latent.backgroundReconstructionSteps = -1 }.contains("--reconstruct-background"))
        #expect(try refused { $0.latent.backgroundReconstructionSteps = 10_001 }.contains("--reconstruct-background"))
        #expect(try refused { $0.settings.samples = 0 }.contains("at least 1"))
        #expect(try refused { $0.saveIntermediates = true }.contains("--save-intermediates"))
        #expect(try refused { $0.latent.negativePrompt = String(repeating: "blurry ", count: 100) }.contains("negative prompt"))
        #expect(try refused { $0.models.stableDiffusion = "/nonexistent/v1-5-pruned-emaonly.safetensors" }
            .contains("blend models download stable-diffusion-v1-5"))
        #expect(try refused { $0.models.stableDiffusionConfig = "/nonexistent/folder" }.contains("--sd-config"))
        #expect(try refused { $0.models.clip = "/nonexistent/ViT-B-16.pt" }.contains("blend models download ViT-B-16"))
        // A file that is not a Stable Diffusion model (the pixel method's UNet).
        #expect(try refused { $0.models.stableDiffusion = models.paths.diffusion; $0.models.stableDiffusionConfig = nil } != "")
    }

    /// The live preview's colour map fitted to a real photo's latent on the tiny SD VAE (2×
    /// grid) is the least-squares map: its residuals against the photo's 2×2 block means sum to
    /// zero and are orthogonal to every latent channel (the normal equations), so it maps the
    /// latent closer to the photo than its mean colour does. (The tiny VAE's random weights keep
    /// little of the colours linearly, about 6 % of their variance here, numpy's lstsq agreeing;
    /// SD's trained VAE keeps most: the analytic autoencoder of `LatentPreviewTests` shows the
    /// exact case.)
    @Test(arguments: ["sd1", "sd2"])
    func thePreviewMapIsTheLeastSquaresFitOnATinyVAE(variant: String) throws {
        let vae = try sd.load(variant, .diffusers).autoencoder
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let demo = try RGBImage(contentsOf: root.appendingPathComponent("examples/photo.png").path)
        let image = try demo.resizedLanczos(width: 48, height: 48).tensor()
        let latent = try vae.encode(image)
        let f = vae.downsamplingFactor
        let map = try LatentPreview.fit(latent: latent, image: image, factor: f)
        let means = try adaptiveAvgPool2d(image, outputSize: (height: 48 / f, width: 48 / f))
        let residual = try map.colors(latent) - means
        let cells = Float(latent.dim(2) * latent.dim(3))
        for k in 0..<3 {
            let r = try residual.sliced(k..<k + 1, axis: 1)
            #expect(try Swift.abs(r.sum().scalar) / cells < 1e-4)
            for c in 0..<latent.dim(1) {
                let z = try latent.sliced(c..<c + 1, axis: 1)
                let centred = try z - z.mean()
                #expect(try Swift.abs((r * centred).sum().scalar) / cells < 1e-4, "colour \(k), channel \(c)")
            }
        }
        let fitted = try (residual * residual).mean().scalar
        let constant = try { let d = try means - means.mean(axes: [2, 3], keepingDimensions: true); return try (d * d).mean().scalar }()
        #expect(fitted < constant, "mean squared error \(fitted) with the map, \(constant) with the mean colour")
        #expect(try map.image(latent).shape == [1, 3, 48, 48])
    }

    /// `--reconstruct-background`: the Adam steps change the decoded samples (inside the mask:
    /// outside, the photo is pasted back as always), are recorded, and a job.json written
    /// before the option existed still reads (its default, off).
    @Test func backgroundReconstructionRunsAndIsRecorded() throws {
        let models = try TinyModelFiles.scratch()
        defer { models.remove() }
        var plain = try request(models, out: models.directory.appendingPathComponent("plain"), samples: 1)
        var reconstructed = plain
        reconstructed.outputDirectory = models.directory.appendingPathComponent("reconstructed").path
        reconstructed.latent.backgroundReconstructionSteps = 3
        plain.latent.backgroundReconstructionSteps = 0
        var seen: [ReconstructionProgress] = []
        let a = try EditPipeline.run(plain) { event in
            if case .reconstructionStep = event { Issue.record("a reconstruction step without --reconstruct-background") }
        }
        let b = try EditPipeline.run(reconstructed) { event in
            if case let .reconstructionStep(r) = event { seen.append(r) }
        }
        // Each Adam step is announced (it runs after the sample's last solver step).
        #expect(seen.map { [$0.sample, $0.step, $0.steps] } == [[0, 1, 3], [0, 2, 3], [0, 3, 3]])
        #expect(seen.allSatisfy { $0.loss.isFinite && $0.loss > 0 })
        let before = try RGBImage(contentsOf: URL(fileURLWithPath: a.directory).appendingPathComponent(a.samples[0].file).path)
        let after = try RGBImage(contentsOf: URL(fileURLWithPath: b.directory).appendingPathComponent(b.samples[0].file).path)
        let original = try RGBImage(contentsOf: plain.imagePath)
        let editMask = try EditMask(contentsOf: plain.maskPath!)
        var differsInside = false
        for i in 0..<1200 {
            if editMask.isEdited[i] {
                differsInside = differsInside || before.pixels[3 * i..<3 * i + 3] != after.pixels[3 * i..<3 * i + 3]
            } else {
                #expect(after.pixels[3 * i..<3 * i + 3] == original.pixels[3 * i..<3 * i + 3])
            }
        }
        #expect(differsInside)
        #expect(b.latent?.options.backgroundReconstructionSteps == 3)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: b.directory).appendingPathComponent("report.json"))) as? [String: Any]
        #expect(((json?["latent"] as? [String: Any])?["options"] as? [String: Any])?["reconstruct_background"] as? Int == 3)
        // A throw from a reconstruction step stops the run there: the sample is not finished.
        var cancelled = reconstructed
        cancelled.outputDirectory = models.directory.appendingPathComponent("cancelled").path
        var finishedAny = false
        #expect(throws: CancellationError.self) {
            try EditPipeline.run(cancelled) { event in
                if case .sampleFinished = event { finishedAny = true }
                if case let .reconstructionStep(r) = event, r.step == 2 { throw CancellationError() }
            }
        }
        #expect(!finishedAny)
        let older = try JSONDecoder().decode(LatentOptions.self, from: Data(#"{"scheduler": "ddim", "steps": 30}"#.utf8))
        #expect(older.backgroundReconstructionSteps == 0 && older.steps == 30 && older.scheduler == .ddim && older.strength == 0.75)
    }
}
