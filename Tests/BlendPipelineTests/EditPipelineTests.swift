import Foundation
import Testing
import BlendEditor
import BlendImage
import BlendModels
import BlendPipeline

func quickSettings(_ prompt: String = "a red ball") -> EditSettings {
    var s = EditSettings(prompt: prompt)
    s.timestepRespacing = "10"
    s.skipTimesteps = 7
    s.samples = 3
    s.batchSize = 2
    s.augmentations = 2
    return s
}

@Suite(.serialized) struct EditPipelineTests {
    @Test func editsEndToEndAtFullResolution() throws {
        let models = try TinyModelFiles()
        defer { models.remove() }
        let (photo, mask) = try writePhotoAndMask(in: models.directory)
        let out = models.directory.appendingPathComponent("out")
        var request = EditRequest(imagePath: photo, maskPath: mask, outputDirectory: out.path, settings: quickSettings(), models: models.paths)
        request.saveIntermediates = true
        var steps = 0
        let report = try EditPipeline.run(request) { if case .step = $0 { steps += 1 } }
        #expect(steps == 2 * 3)
        #expect(report.samples.count == 3)
        #expect(report.samples.map(\.distance) == report.samples.map(\.distance).sorted())
        let original = try RGBImage(contentsOf: photo)
        let editMask = try EditMask(contentsOf: mask)
        for sample in report.samples {
            let result = try RGBImage(contentsOf: out.appendingPathComponent(sample.file).path)
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
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("contact_sheet.png").path))
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("report.json"))) as? [String: Any]
        #expect((json?["samples"] as? [Any])?.count == 3)
        #expect((json?["settings"] as? [String: Any])?["seed"] as? Int == 404)
        let intermediates = try FileManager.default.contentsOfDirectory(atPath: out.appendingPathComponent("intermediates").path)
        #expect(!intermediates.isEmpty)
        // A second run into the same folder replaces the results rather than mixing them.
        var again = request
        again.settings.samples = 1
        again.saveIntermediates = false
        _ = try EditPipeline.run(again)
        #expect(try FileManager.default.contentsOfDirectory(atPath: out.appendingPathComponent("ranked").path).count == 1)
        // Nothing but the promised outputs (no probe or temporary files).
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: out.path)) == ["ranked", "contact_sheet.png", "report.json", "intermediates"])
    }

    @Test func sameSeedSameEdits() throws {
        let models = try TinyModelFiles()
        defer { models.remove() }
        let (photo, mask) = try writePhotoAndMask(in: models.directory)
        var files: [[UInt8]] = []
        for run in 0..<2 {
            let out = models.directory.appendingPathComponent("out\(run)").path
            let report = try EditPipeline.run(EditRequest(imagePath: photo, maskPath: mask, outputDirectory: out,
                                                          settings: quickSettings(), models: models.paths))
            files.append(Array(try Data(contentsOf: URL(fileURLWithPath: out).appendingPathComponent(report.samples[0].file))))
        }
        #expect(files[0] == files[1])
    }

    @Test func badInputsFailFastWithClearErrorsAndWriteNothing() throws {
        let models = try TinyModelFiles()
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
        #expect(throws: MaskError.self) { try run { $0.maskPath = fullMask; $0.settings.invertMask = true; $0.settings.method = .localClip } }
        #expect(throws: ClipTokenizerError.self) {
            try run { $0.settings.prompt = Array(repeating: "a very long prompt", count: 40).joined(separator: " ") }
        }
        #expect(throws: EditError.self) { try run { $0.settings.skipTimesteps = 10 } }
        #expect(throws: ModelLoadingError.self) { try run { $0.settings.method = .localClip } }
        // The output location: a file where the directory should be.
        let blocker = models.directory.appendingPathComponent("blocker")
        try Data().write(to: blocker)
        #expect(throws: OutputError.self) { try run { $0.outputDirectory = blocker.appendingPathComponent("out").path } }
        // None of the failed runs wrote results.
        let written = (try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []
        #expect(written.isEmpty)
    }
}
