import BlendCheckpoint
import BlendEditor
import BlendImage
import BlendModels
import BlendPipelineTestSupport
import BlendTensor
import Foundation
import Testing
@testable import BlendPipeline

/// What a newcomer without the model files, or with mismatched ones, is told: bad settings
/// and inputs first, every missing file of the method at once with its option and download,
/// a damaged cached file, a vocabulary that does not fit the CLIP model, and mask advice that
/// fits `--invert-mask`.
@Suite(.serialized) struct FirstUseErrorTests {
    /// A request on the fixture photo and mask whose model files are all absent.
    func requestWithoutModels(_ folder: URL) throws -> EditRequest {
        let (photo, mask) = try writePhotoAndMask(in: folder)
        let cache = folder.appendingPathComponent("empty-cache")
        return EditRequest(imagePath: photo, maskPath: mask, outputDirectory: folder.appendingPathComponent("out").path,
                           settings: quickSettings(), models: .standard(ModelFiles(directory: cache)))
    }

    func scratch() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("blend-first-use-\(UUID().uuidString)")
    }

    @Test func settingsAndInputsAreCheckedBeforeTheModelFiles() throws {
        let folder = scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let base = try requestWithoutModels(folder)
        func error(_ change: (inout EditRequest) throws -> Void) throws -> any Error {
            var request = base
            try change(&request)
            do {
                _ = try EditPipeline.check(request)
            } catch {
                return error
            }
            Issue.record("expected an error")
            return CancellationError()
        }
        #expect(try error { _ in } is ModelLoadingError)
        #expect(try error { $0.settings.pixel.timestepRespacing = "0" } is EditError)
        #expect(try error { $0.settings.pixel.skipTimesteps = 100 } is EditError)
        #expect(try error { $0.settings.samples = 0 } is EditError)
        #expect(try error { $0.maskOptions.threshold = 2 } is EditError)
        #expect(try error { $0.settings.method = .latent; $0.latent.strength = 2 } is EditError)
        #expect(try error { $0.settings.method = .latent; $0.latent.steps = 0 } is EditError)
        #expect(try error { $0.settings.method = .latent; $0.saveIntermediates = true } is EditError)
        #expect(try error { $0.settings.method = .latent; $0.models.stableDiffusionConfig = "/nonexistent/folder" } is EditError)
        #expect(try error { $0.imagePath = "/nonexistent/photo.png" } is ImageError)
        let (_, square) = try writePhotoAndMask(in: folder.appendingPathComponent("square"), maskSize: (30, 30))
        #expect(try error { $0.maskPath = square } is MaskError)
        // validateSettings alone reads no file.
        var latent = base
        latent.settings.method = .latent
        latent.latent.guidanceScale = -1
        #expect(throws: EditError.self) { try EditPipeline.validateSettings(latent) }
        #expect(!FileManager.default.fileExists(atPath: base.outputDirectory))
    }

    @Test func everyMissingFileOfTheMethodIsNamedAtOnceWithItsOptionAndDownload() throws {
        let folder = scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let base = try requestWithoutModels(folder)
        func missing(_ method: EditMethod) throws -> (files: [MissingModel], text: String) {
            var request = base
            request.settings.method = method
            do {
                _ = try EditPipeline.check(request)
            } catch let error as ModelLoadingError {
                guard case let .missingFiles(files) = error else { Issue.record("\(error)"); return ([], "") }
                return (files, String(describing: error))
            }
            Issue.record("expected missing files")
            return ([], "")
        }
        let pixel = try missing(.blended)
        #expect(pixel.files.map(\.download) == ["clip-vocab", "ViT-B-16", "256x256_diffusion_uncond"])
        #expect(pixel.files.map(\.option) == ["--clip-vocab", "--clip-model", "--diffusion-model"])
        #expect(pixel.text.hasPrefix("3 model files were not found:"))
        #expect(pixel.text.contains("get it with: blend models download clip-vocab (or give its path with --clip-vocab)"), "\(pixel.text)")
        let latent = try missing(.latent)
        #expect(latent.files.map(\.download) == ["clip-vocab", "ViT-B-16", "stable-diffusion-v1-5"])
        #expect(latent.files.last?.option == "--sd-model" && !latent.text.contains("256x256"))
        let localClip = try missing(.localClip)
        #expect(localClip.files.map(\.download) == ["clip-vocab", "ViT-B-16", "256x256_diffusion_uncond", "vgg16", "lpips-vgg"])
        // LPIPS's files have no option of their own: they go in the model cache.
        #expect(localClip.files.suffix(2).allSatisfy { $0.option == nil })
        #expect(localClip.text.contains("blend models download lpips-vgg"))
        // A file of the user's own under another name: no download to offer, only its option.
        var own = base
        own.models.clip = folder.appendingPathComponent("my-clip.pt").path
        own.models.clipVocabulary = TinyStableDiffusion.vocabulary
        do {
            _ = try EditPipeline.check(own)
            Issue.record("expected missing files")
        } catch let ModelLoadingError.missingFiles(files) {
            #expect(files.first?.download == nil && files.first?.option == "--clip-model")
            #expect(files.first?.description.contains("give its path with --clip-model") == true)
            #expect(files.count == 2)
        }
    }

    @Test func aCachedFileOfTheWrongSizeIsRefusedWithWhatToDo() throws {
        let folder = scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let models = try TinyModelFiles.scratch()
        defer { models.remove() }
        let (photo, mask) = try writePhotoAndMask(in: folder)
        let cache = folder.appendingPathComponent("cache")
        try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
        // A vocabulary under the official name that is not the published file (`models list`: WRONG).
        let vocabulary = cache.appendingPathComponent("bpe_simple_vocab_16e6.txt.gz")
        try FileManager.default.copyItem(atPath: models.paths.clipVocabulary, toPath: vocabulary.path)
        var paths = models.paths
        paths.clipVocabulary = vocabulary.path
        paths.cacheDirectory = cache.path
        let request = EditRequest(imagePath: photo, maskPath: mask, outputDirectory: folder.appendingPathComponent("out").path,
                                  settings: quickSettings(), models: paths)
        do {
            _ = try EditPipeline.check(request)
            Issue.record("a wrong cached vocabulary was used")
        } catch let error as ModelLoadingError {
            guard case .wrongCachedFile = error else { Issue.record("\(error)"); return }
            let text = String(describing: error)
            #expect(text.contains("WRONG") && text.contains("delete it") && text.contains("blend models download clip-vocab --force"), "\(text)")
        }
        // The same file outside the cache is the user's own: used as it is.
        paths.cacheDirectory = folder.appendingPathComponent("elsewhere").path
        var elsewhere = request
        elsewhere.models = paths
        _ = try EditPipeline.check(elsewhere)
    }

    @Test func aVocabularyLargerThanTheCLIPTableIsNamedAtLoad() throws {
        let folder = scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let models = try TinyModelFiles.scratch()
        defer { models.remove() }
        // The tiny CLIP with a 100-row token table: the vocabulary has more tokens.
        let clip = folder.appendingPathComponent("small-table-clip.safetensors")
        try writeTinyClip(vocabularySize: 100, to: clip)
        let (photo, mask) = try writePhotoAndMask(in: folder)
        var request = EditRequest(imagePath: photo, maskPath: mask, outputDirectory: folder.appendingPathComponent("out").path,
                                  settings: quickSettings(), models: models.paths)
        request.settings.samples = 1
        request.models.clip = clip.path
        do {
            _ = try EditPipeline.run(request)
            Issue.record("a vocabulary larger than the CLIP model's table was used")
        } catch let error as ModelLoadingError {
            guard case let .vocabularyMismatch(vocabulary, tokens, model, rows) = error else { Issue.record("\(error)"); return }
            #expect(vocabulary == models.paths.clipVocabulary && model == clip.path && rows == 100 && tokens > 100)
            let text = String(describing: error)
            #expect(text.contains("do not belong together") && text.contains("--clip-vocab"), "\(text)")
        }
        // Stable Diffusion's text encoder is held to the same (the latent method).
        #expect(throws: ModelLoadingError.vocabularyMismatch(vocabulary: "v.gz", tokens: 600, model: "sd.safetensors", rows: 100)) {
            try ModelLoader.requireVocabulary(size: 600, of: "v.gz", rows: 100, model: "sd.safetensors")
        }
        try ModelLoader.requireVocabulary(size: 600, of: "v.gz", rows: 600, model: "sd.safetensors")
    }

    @Test func maskAdviceFitsInvertMask() throws {
        let folder = scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let models = try TinyModelFiles.scratch()
        defer { models.remove() }
        let (photo, _) = try writePhotoAndMask(in: folder)
        let (_, white) = try writePhotoAndMask(in: folder.appendingPathComponent("white"), maskValue: { _, _ in 255 })
        let (_, black) = try writePhotoAndMask(in: folder.appendingPathComponent("black"), maskValue: { _, _ in 0 })
        let (_, most) = try writePhotoAndMask(in: folder.appendingPathComponent("most"), maskValue: { x, y in x < 2 && y < 2 ? 255 : 0 })
        func message(mask: String, inverted: Bool) -> String {
            var request = EditRequest(imagePath: photo, maskPath: mask, outputDirectory: folder.appendingPathComponent("out").path,
                                      settings: quickSettings(), models: models.paths)
            request.settings.invertMask = inverted
            do {
                let checked = try EditPipeline.check(request)
                return checked.notices.joined(separator: "\n")
            } catch {
                return String(describing: error)
            }
        }
        // Without --invert-mask: no advice to use (or drop) it where it would not help.
        #expect(!message(mask: white, inverted: false).contains("--invert-mask"))
        #expect(!message(mask: black, inverted: false).contains("--invert-mask"))
        // With it: the message says what the inverted mask is.
        let allWhite = message(mask: white, inverted: true)
        #expect(allWhite.contains("with --invert-mask") && allWhite.contains("paint the region to change in black"), "\(allWhite)")
        let allBlack = message(mask: black, inverted: true)
        #expect(allBlack.contains("with --invert-mask") && allBlack.contains("paint the region to keep in white")
                && !allBlack.contains("use --invert-mask"), "\(allBlack)")
        // A mask that marks nearly everything once inverted: the warning asks about leaving it out.
        let inverted = message(mask: most, inverted: true)
        #expect(inverted.contains("did you mean to drop --invert-mask?"), "\(inverted)")
    }
}
