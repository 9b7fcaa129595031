import Foundation
import Testing
import BlendEditor
import BlendImage
import BlendModels
import BlendPipeline
import BlendPipelineTestSupport
import BlendTensor

func quickSettings(_ prompt: String = "a red ball") -> EditSettings {
    var s = EditSettings(prompt: prompt)
    s.pixel.timestepRespacing = "10"
    s.pixel.skipTimesteps = 7
    s.samples = 3
    s.batchSize = 2
    s.pixel.augmentations = 2
    return s
}

@Suite(.serialized) struct EditPipelineTests {
    @Test func editsEndToEndAtFullResolution() throws {
        let models = try TinyModelFiles.scratch()
        defer { models.remove() }
        let (photo, mask) = try writePhotoAndMask(in: models.directory)
        let out = models.directory.appendingPathComponent("out")
        var request = EditRequest(imagePath: photo, maskPath: mask, outputDirectory: out.path, settings: quickSettings(), models: models.paths)
        request.saveIntermediates = true
        var steps = 0
        var finished: [FinishedSample] = []
        let report = try EditPipeline.run(request) { event in
            if case .step = event { steps += 1 }
            if case let .sampleFinished(sample) = event {
                // Written the moment it is finished.
                #expect(FileManager.default.fileExists(atPath: sample.file))
                finished.append(sample)
            }
        }
        #expect(steps == 2 * 3)
        #expect(finished.map(\.index) == [0, 1, 2] && finished.map(\.finished) == [1, 2, 3] && finished.allSatisfy { $0.total == 3 })
        let latest = out.appendingPathComponent("latest")
        #expect(report.samples.count == 3)
        #expect(report.samples.map(\.distance) == report.samples.map(\.distance).sorted())
        let original = try RGBImage(contentsOf: photo)
        let editMask = try EditMask(contentsOf: mask)
        for sample in report.samples {
            let result = try RGBImage(contentsOf: latest.appendingPathComponent(sample.file).path)
            #expect(result.width == 40 && result.height == 30)
            var changedInside = false
            for i in 0..<1200 {
                let same = result.pixels[3 * i..<3 * i + 3] == original.pixels[3 * i..<3 * i + 3]
                if editMask.isEdited[i] {
                    if !same { changedInside = true }
                } else {
                    #expect(same, "pixel \(i % 40),\(i / 40) outside the mask changed")
                }
            }
            #expect(changedInside)
        }
        // The contact sheet shows full-resolution results in the photo's 4:3 shape:
        // source, mask and 3 results, each 341x256.
        let sheet = try RGBImage(contentsOf: latest.appendingPathComponent("contact_sheet.png").path)
        #expect(sheet.width == 8 + 5 * (341 + 8))
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: latest.appendingPathComponent("report.json"))) as? [String: Any]
        #expect((json?["samples"] as? [Any])?.count == 3)
        #expect((json?["settings"] as? [String: Any])?["seed"] as? Int == 404)
        #expect(json?["precision"] as? String == "fp32")
        #expect(json?["region"] as? [String: Int] == ["x": 4, "y": 0, "width": 32, "height": 30])
        #expect(abs((json?["edited_fraction"] as? Double ?? 0) - 16.0 * 14 / 1200) < 1e-9)
        let intermediates = try FileManager.default.contentsOfDirectory(atPath: latest.appendingPathComponent("intermediates").path)
        #expect(!intermediates.isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: latest.appendingPathComponent("samples").path).count == 3)
        let progressLines = try String(contentsOf: latest.appendingPathComponent("progress.jsonl"), encoding: .utf8).split(separator: "\n")
        #expect(progressLines.count == 3)
        // A second run into the same folder makes a new run folder and moves `latest` to it.
        var again = request
        again.settings.samples = 1
        again.saveIntermediates = false
        let second = try EditPipeline.run(again)
        #expect(second.runId != report.runId)
        #expect(try FileManager.default.contentsOfDirectory(atPath: latest.appendingPathComponent("ranked").path).count == 1)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: latest.path) == "runs/\(second.runId)")
        // Nothing but the promised outputs (no probe or temporary files).
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: out.path)) == [".lock", "latest", "runs"])
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: report.directory))
                == ["job.json", "progress.jsonl", "samples", "ranked", "contact_sheet.png", "report.json", "intermediates"])
    }

    /// `--precision bf16` runs in bf16 where the CPU has it; elsewhere in fp32, saying so once,
    /// and the report records what ran.
    @Test func bf16IsRecordedOrFallsBackWithANotice() throws {
        let models = try TinyModelFiles.scratch()
        defer { models.remove() }
        let (photo, mask) = try writePhotoAndMask(in: models.directory)
        var settings = quickSettings()
        settings.samples = 1
        var request = EditRequest(imagePath: photo, maskPath: mask, outputDirectory: models.directory.appendingPathComponent("out").path,
                                  settings: settings, models: models.paths)
        request.precision = .bf16
        var notices: [String] = []
        let report = try EditPipeline.run(request) { event in
            if case let .notice(text) = event { notices.append(text) }
        }
        let fallback = notices.filter { $0.hasPrefix("bf16 needs") }
        if ComputeLibrary.supportsBF16 {
            #expect(report.precision == .bf16 && fallback.isEmpty)
        } else {
            #expect(report.precision == .fp32 && fallback.count == 1 && report.notices.contains(fallback[0]))
        }
    }

    @Test func sameSeedSameEdits() throws {
        let models = try TinyModelFiles.scratch()
        defer { models.remove() }
        let (photo, mask) = try writePhotoAndMask(in: models.directory)
        var files: [[UInt8]] = []
        for run in 0..<2 {
            let out = models.directory.appendingPathComponent("out\(run)").path
            let report = try EditPipeline.run(EditRequest(imagePath: photo, maskPath: mask, outputDirectory: out,
                                                          settings: quickSettings(), models: models.paths))
            files.append(Array(try Data(contentsOf: URL(fileURLWithPath: report.directory).appendingPathComponent(report.samples[0].file))))
        }
        #expect(files[0] == files[1])
    }

    @Test func badInputsFailFastWithClearErrorsAndWriteNothing() throws {
        let models = try TinyModelFiles.scratch()
        defer { models.remove() }
        let (photo, mask) = try writePhotoAndMask(in: models.directory)
        let out = models.directory.appendingPathComponent("out").path
        func run(_ change: (inout EditRequest) throws -> Void) throws {
            var request = EditRequest(imagePath: photo, maskPath: mask, outputDirectory: out, settings: quickSettings(), models: models.paths)
            try change(&request)
            _ = try EditPipeline.run(request)
        }
        #expect(throws: ImageError.self) { try run { $0.imagePath = "/nonexistent/photo.png" } }
        let text = models.directory.appendingPathComponent("notes.png")
        try Data("not an image".utf8).write(to: text)
        #expect(throws: ImageError.self) { try run { $0.imagePath = text.path } }
        #expect(throws: ModelLoadingError.self) { try run { $0.models.diffusion = "/nonexistent/256x256_diffusion_uncond.pt" } }
        do {
            try run { $0.models.clip = "/nonexistent/ViT-B-16.pt" }
            Issue.record("expected an error")
        } catch let error as ModelLoadingError {
            #expect(String(describing: error).contains("blend models download ViT-B-16"))
        }
        do {
            try run { $0.models.diffusion = $0.models.clip; $0.models.diffusionConfig = nil }
            Issue.record("expected an error")
        } catch let error as ModelLoadingError {
            #expect(String(describing: error).contains("blend models download 256x256_diffusion_uncond"))
        }
        let (_, squareMask) = try writePhotoAndMask(in: models.directory.appendingPathComponent("square"), maskSize: (30, 30))
        #expect(throws: MaskError.self) { try run { $0.maskPath = squareMask } }
        let (_, emptyMask) = try writePhotoAndMask(in: models.directory.appendingPathComponent("empty"), maskValue: { _, _ in 0 })
        #expect(throws: MaskError.self) { try run { $0.maskPath = emptyMask } }
        let (_, fullMask) = try writePhotoAndMask(in: models.directory.appendingPathComponent("full"), maskValue: { _, _ in 255 })
        #expect(throws: MaskError.self) { try run { $0.maskPath = fullMask } }
        // Inverted to nothing: the message speaks of --invert-mask (FirstUseErrorTests).
        #expect(throws: EditError.self) { try run { $0.maskPath = fullMask; $0.settings.invertMask = true; $0.settings.method = .localClip } }
        do {
            try run { $0.settings.prompt = Array(repeating: "a very long prompt", count: 40).joined(separator: " ") }
            Issue.record("expected an error")
        } catch let error as EditError {
            #expect(String(describing: error).contains("--truncate-prompt"))
        }
        #expect(throws: EditError.self) { try run { $0.settings.pixel.skipTimesteps = 10 } }
        #expect(throws: ModelLoadingError.self) { try run { $0.settings.method = .localClip } }
        // The output location: a file where the directory should be.
        let blocker = models.directory.appendingPathComponent("blocker")
        try Data().write(to: blocker)
        #expect(throws: OutputError.self) { try run { $0.outputDirectory = blocker.appendingPathComponent("out").path } }
        #expect(throws: EditError.self) { try run { $0.maskOptions.threshold = 1 } }
        #expect(throws: EditError.self) { try run { $0.maskOptions.feather = -1 } }
        #expect(throws: MaskError.self) { try run { $0.maskOptions.region = .box(PixelBox(x: 30, y: 0, width: 20, height: 10)) } }
        #expect(throws: MaskError.self) { try run { $0.maskPath = nil } }   // an opaque photo and no mask
        #expect(throws: OutputError.self) { try run { $0.resume = true } }
        // None of the failed runs created anything, not even the output folder.
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}
