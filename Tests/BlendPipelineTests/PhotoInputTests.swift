import Foundation
import Testing
import BlendEditor
import BlendImage
import BlendCheckpoint
import BlendModels
import BlendTestSupport
@testable import BlendPipeline
import BlendPipelineTestSupport

/// The 40x30 test photo as RGBA (its left quarter fully transparent) or with a colour profile.
func writeVariant(of photoPath: String, in directory: URL, name: String, alpha: ((Int, Int) -> UInt8)? = nil,
                  profile: ColorProfile? = nil) throws -> String {
    let image = try RGBImage(contentsOf: photoPath)
    let values = alpha.map { a in (0..<image.width * image.height).map { a($0 % image.width, $0 / image.width) } }
    let path = directory.appendingPathComponent(name).path
    try Photo(image: image, alpha: values, colorProfile: profile).writePNG(to: path)
    return path
}

@Suite(.serialized) struct PhotoInputTests {
    let models: TinyModelFiles

    init() throws { models = try TinyModelFiles.scratch() }

    func request(_ name: String, samples: Int = 1, change: (inout EditRequest, URL) throws -> Void = { _, _ in }) throws -> EditRequest {
        let directory = models.directory.appendingPathComponent(name)
        let (photo, mask) = try writePhotoAndMask(in: directory)
        var settings = quickSettings()
        settings.samples = samples
        var request = EditRequest(imagePath: photo, maskPath: mask, outputDirectory: directory.appendingPathComponent("out").path,
                                  settings: settings, models: models.paths)
        try change(&request, directory)
        return request
    }

    /// Runs until the inputs are checked, returning the notices (nothing is created).
    func notices(_ request: EditRequest) throws -> [String] {
        var notices: [String] = []
        do {
            _ = try EditPipeline.run(request) { event in
                if case let .notice(text) = event { notices.append(text) }
                if case .checkedInputs = event { throw CancellationError() }
            }
        } catch is CancellationError {}
        #expect(!FileManager.default.fileExists(atPath: request.outputDirectory))
        return notices
    }

    func expectOutsideUnchanged(_ file: String, original: Photo, mask: EditMask) throws {
        let result = try Photo(contentsOf: file)
        #expect(result.size == original.size)
        for i in 0..<mask.isEdited.count where !mask.isEdited[i] {
            #expect(result.image.pixels[3 * i..<3 * i + 3] == original.image.pixels[3 * i..<3 * i + 3], "pixel \(i)")
            #expect(result.alpha?[i] == original.alpha?[i])
        }
    }

    @Test func anAlphaMaskOfAnotherPixelSizeIsResizedAndItsTransparencyEdits() throws {
        var maskPath = ""
        let request = try request("alpha-mask") { request, directory in
            // 80x60 for a 40x30 photo; uniform white colour, the region in the alpha channel.
            var samples: [UInt8] = []
            for y in 0..<60 { for x in 0..<80 { samples += [255, 255, 255, (24..<56).contains(x) && (16..<44).contains(y) ? 0 : 255] } }
            maskPath = directory.appendingPathComponent("alpha-mask.png").path
            try Photo(image: RGBImage(width: 80, height: 60, pixels: samples.enumerated().filter { $0.offset % 4 != 3 }.map(\.element)),
                      alpha: (0..<4800).map { samples[4 * $0 + 3] }).writePNG(to: maskPath)
            request.maskPath = maskPath
        }
        var notices: [String] = []
        let report = try EditPipeline.run(request) { if case let .notice(text) = $0 { notices.append(text) } }
        #expect(report.maskRule == .maskTransparency)
        #expect(notices.contains { $0.contains("transparent = edit") })
        let expected = try SoftMask(contentsOf: maskPath, photoSize: ImageSize(width: 40, height: 30)).thresholded(0.5)
        #expect(expected.boundingBox == PixelBox(x: 12, y: 8, width: 16, height: 14))
        #expect(abs(report.editedFraction - 16.0 * 14 / 1200) < 1e-9)
        try expectOutsideUnchanged(URL(fileURLWithPath: report.directory).appendingPathComponent(report.samples[0].file).path,
                                   original: Photo(contentsOf: request.imagePath), mask: expected)
    }

    @Test func anRGBAPhotosTransparentAreaIsEditedAndItsAlphaKeptElsewhere() throws {
        let request = try request("rgba") { request, directory in
            request.imagePath = try writeVariant(of: request.imagePath, in: directory, name: "rgba.png",
                                                 alpha: { x, y in x < 10 && y < 12 ? 0 : UInt8(200 + x) })
            request.maskPath = nil
        }
        let report = try EditPipeline.run(request)
        #expect(report.maskRule == .photoTransparency && report.mask == nil)
        let photo = try Photo(contentsOf: request.imagePath)
        let mask = try SoftMask(transparencyOf: photo, source: "").thresholded(0.5)
        #expect(mask.editedPixelCount == 120)
        let result = URL(fileURLWithPath: report.directory).appendingPathComponent(report.samples[0].file).path
        try expectOutsideUnchanged(result, original: photo, mask: mask)
        // The edited area is painted solid where it takes the whole edit.
        #expect(try Photo(contentsOf: result).alpha?[0] == 255)
        // With a mask, the photo's transparency only gets a note.
        var masked = request
        masked.maskPath = try writePhotoAndMask(in: models.directory.appendingPathComponent("rgba")).mask
        masked.outputDirectory += "-masked"
        #expect(try notices(masked).contains { $0.contains("the photo has transparent pixels") })
    }

    @Test func aPhotoGivenAsAMaskOrAnAlmostFullMaskWarns() throws {
        let photoAsMask = try request("photo-as-mask") { request, _ in request.maskPath = request.imagePath }
        #expect(try notices(photoAsMask).contains { $0.hasPrefix("warning") && $0.contains("neither black nor white") })
        let almostFull = try request("almost-full") { request, directory in
            request.maskPath = try writePhotoAndMask(in: directory, maskValue: { x, y in x == 0 && y == 0 ? 0 : 255 }).mask
        }
        #expect(try notices(almostFull).contains { $0.hasPrefix("warning") && $0.contains("99.9 %") })
        let drawn = try request("drawn")
        #expect(try notices(drawn).isEmpty)
    }

    @Test func aJPEGsColourProfileIsCarriedIntoEveryOutput() throws {
        var original: Photo?
        let request = try request("icc") { request, directory in
            let jpeg = jpegWithICCProfile(try RGBImage(contentsOf: request.imagePath).encoded(as: .jpeg), profile: iccProfileForTests)
            let path = directory.appendingPathComponent("photo.jpg")
            try Data(jpeg).write(to: path)
            request.imagePath = path.path
            request.saveIntermediates = true
            original = try Photo(contentsOf: path.path)
        }
        let report = try EditPipeline.run(request)
        let run = URL(fileURLWithPath: report.directory)
        var files = [report.samples[0].file, report.samples[0].sampleFile, report.contactSheet]
        files += try FileManager.default.contentsOfDirectory(atPath: run.appendingPathComponent("intermediates").path).map { "intermediates/\($0)" }
        for file in files {
            #expect(try Photo(contentsOf: run.appendingPathComponent(file).path).colorProfile?.data == iccProfileForTests, "\(file)")
        }
        let mask = try EditMask(contentsOf: request.maskPath!)
        try expectOutsideUnchanged(run.appendingPathComponent(report.samples[0].file).path, original: original!, mask: mask)
    }

    @Test func aLongPromptIsTruncatedOnRequest() throws {
        let long = try request("long-prompt") { request, _ in
            request.settings.prompt = Array(repeating: "a very long prompt", count: 40).joined(separator: " ")
            request.truncatePrompt = true
        }
        #expect(try notices(long).contains { $0.contains("only its first 75 tokens") })
    }

    /// A training checkpoint (raw weights under `model.module.`, the EMA, optimizer state) edits
    /// with its EMA, and the run says so in a notice and in report.json.
    @Test func aTrainingCheckpointsChoiceOfWeightsIsReported() throws {
        let request = try request("training-checkpoint") { request, directory in
            var wrapped: [SafetensorsTensor] = []
            let plain = try CheckpointFile.load(path: request.models.diffusion).tensors()
            for (name, tensor) in plain.sorted(by: { $0.key < $1.key }) {
                wrapped.append(try SafetensorsTensor(name: "model.module.\(name)", tensor: tensor))
                wrapped.append(try SafetensorsTensor(name: "ema.\(name)", tensor: tensor))
            }
            let path = directory.appendingPathComponent("training.safetensors")
            try SafetensorsWriter.write(wrapped, to: path)
            request.models.diffusion = path.path
        }
        var notices: [String] = []
        let report = try EditPipeline.run(request) { if case let .notice(text) = $0 { notices.append(text) } }
        #expect(notices.contains { $0.contains("EMA weights under `ema`") })
        #expect(report.notices.contains { $0.contains("EMA weights under `ema`") })
    }

    @Test func withoutEnforcedBackgroundTheModelsOwnBackgroundShows() throws {
        let request = try request("no-enforce") { request, _ in request.settings.enforceBackground = false }
        let report = try EditPipeline.run(request)
        let result = try RGBImage(contentsOf: URL(fileURLWithPath: report.directory).appendingPathComponent(report.samples[0].file).path)
        let photo = try RGBImage(contentsOf: request.imagePath)
        let mask = try EditMask(contentsOf: request.maskPath!)
        let region = report.region
        var changedOutside = 0
        for y in 0..<30 {
            for x in 0..<40 where !mask.isEdited[y * 40 + x] {
                let same = result[x, y] == photo[x, y]
                if !region.contains(x: x, y: y) { #expect(same) } else if !same { changedOutside += 1 }
            }
        }
        #expect(changedOutside > 100)
    }

    @Test func seedMinusOneIsRandomAnnouncedAndRecorded() throws {
        var request = try request("random-seed")
        request.randomSeed = true
        var announced: [String] = []
        let report = try EditPipeline.run(request) { if case let .notice(text) = $0 { announced.append(text) } }
        #expect(announced == ["random seed: \(report.settings.seed)"])
        #expect(report.notices == announced)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report.directory).appendingPathComponent("report.json"))) as? [String: Any]
        #expect((json?["settings"] as? [String: Any])?["seed"] as? UInt64 == report.settings.seed)
        let second = try EditPipeline.run(request)
        #expect(second.settings.seed != report.settings.seed)
    }

    @Test func aMarkTooSmallForTheModelIsEditedThroughThePixelItTouches() throws {
        // One pixel at the corner of a 40x30 photo squeezed whole into the 16x16 model:
        // nearest-neighbour sampling never picks column 0, so the model pixel over it is
        // marked instead, and the photo changes at that pixel only.
        let request = try request("too-small") { request, directory in
            request.maskPath = try writePhotoAndMask(in: directory, maskValue: { x, y in x == 0 && y == 0 ? 255 : 0 }).mask
            request.maskOptions.region = .full
        }
        let checked = try EditPipeline.check(request)
        #expect(checked.geometry.coveredAreas == 1 && checked.geometry.modelMask.editedPixelCount == 1)
        #expect(checked.geometry.modelMask.isEdited[0])
        #expect(checked.notices.contains { $0.contains("the marked area is thinner than one pixel of the model's 16x16 image") })
        let report = try EditPipeline.run(request)
        let photo = try RGBImage(contentsOf: request.imagePath)
        let sample = try RGBImage(contentsOf: URL(fileURLWithPath: report.directory).appendingPathComponent(report.samples[0].sampleFile).path)
        #expect(Array(sample.pixels[3...]) == Array(photo.pixels[3...]))
        // The default region crops around it instead.
        let mask = try SoftMask(contentsOf: request.maskPath!, photoSize: ImageSize(width: 40, height: 30)).thresholded(0.5)
        let geometry = try EditPipeline.resolveGeometry(mask: mask, photo: mask.size, options: MaskOptions(), modelSize: 16)
        #expect(geometry.modelMask.editedPixelCount >= 1 && geometry.coveredAreas == 0)
        #expect(geometry.region == PixelBox(x: 0, y: 0, width: 17, height: 17))
        // The case at half the size: a 3x3 mark on a 512x512 photo (a 1024x1024 one
        // for a 256 model) is edited 1:1 in a crop of the model's size.
        let mark = try EditMask(width: 512, height: 512, isEdited: (0..<(512 * 512)).map { i in
            (251..<254).contains(i % 512) && (351..<354).contains(i / 512)
        })
        let crop = try EditPipeline.resolveGeometry(mask: mark, photo: mark.size, options: MaskOptions(), modelSize: 128)
        #expect(crop.region == PixelBox(x: 188, y: 288, width: 128, height: 128) && crop.modelMask.editedPixelCount == 9)
        // Squeezed whole into the model's square (every 4th pixel), it falls between the
        // samples: the model pixels its 3x3 touches are marked, model column 62 (photo
        // columns 248..<252) and 63 (252..<256), rows 87 and 88.
        let squeezed = try EditPipeline.resolveGeometry(mask: mark, photo: mark.size, options: MaskOptions(region: .full), modelSize: 128)
        #expect(squeezed.coveredAreas == 1)
        #expect(Set((0..<(128 * 128)).filter { squeezed.modelMask.isEdited[$0] }) == [87 * 128 + 62, 87 * 128 + 63, 88 * 128 + 62, 88 * 128 + 63])
    }

    @Test func aGivenRegionIsEditedAndRecorded() throws {
        let box = PixelBox(x: 8, y: 4, width: 24, height: 22)
        let boxed = try request("box") { request, _ in request.maskOptions.region = .box(box) }
        let report = try EditPipeline.run(boxed)
        #expect(report.region == box)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report.directory).appendingPathComponent("report.json"))) as? [String: Any]
        #expect((json?["mask_options"] as? [String: Any])?["region"] as? String == "8,4,24,22")
        // Marked pixels outside the box stay as they are.
        let partial = try request("box-partial") { request, _ in request.maskOptions.region = .box(PixelBox(x: 0, y: 0, width: 20, height: 30)) }
        let geometry = try EditPipeline.resolveGeometry(mask: EditMask(contentsOf: partial.maskPath!), photo: ImageSize(width: 40, height: 30),
                                                        options: partial.maskOptions, modelSize: 16)
        #expect(geometry.mask.boundingBox == PixelBox(x: 12, y: 8, width: 8, height: 14))
    }

    @Test func theClassConditionalModelEditsARegionOfANonSquarePhoto() throws {
        // The 512x512 model's geometry on a 4:3 photo: the region is a square around the mask.
        let big = try EditMask(width: 1008, height: 756, isEdited: (0..<(1008 * 756)).map { i in
            (600..<700).contains(i % 1008) && (300..<380).contains(i / 1008)
        })
        let geometry = try EditPipeline.resolveGeometry(mask: big, photo: big.size, options: MaskOptions(), modelSize: 512)
        #expect(geometry.region == PixelBox(x: 394, y: 84, width: 512, height: 512))
        #expect(geometry.modelMask.editedPixelCount == 100 * 80)
        // And a tiny class-conditional model (random classes, as the 512 model gets) end to end.
        var config = TinyModelFiles.unetConfig
        config.numClasses = 10
        let conditional = try TinyModelFiles(unetConfig: config, sharingClipWith: models)
        defer { conditional.remove() }
        var request = try request("class-conditional")
        request.models = conditional.paths
        let report = try EditPipeline.run(request)
        #expect(report.samples.count == 1 && report.region == PixelBox(x: 4, y: 0, width: 32, height: 30))
    }

    /// `--max-megapixels`: a photo or mask over the limit is refused from its header, before
    /// any pixel is decoded and before anything is created.
    @Test func photosAndMasksOverThePixelLimitAreRefusedFromTheirHeaders() throws {
        // A 4x4 PNG whose IHDR claims 12,000 x 9,000 (108 MP): a few dozen bytes, no huge file.
        func bigEndian(_ v: Int) -> [UInt8] { [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: v >> $0) } }
        func crc32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
            var crc: UInt32 = 0xFFFF_FFFF
            for byte in bytes {
                crc ^= UInt32(byte)
                for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
            }
            return ~crc
        }
        var claim = try RGBImage(width: 4, height: 4, pixels: [UInt8](repeating: 90, count: 48)).encoded(as: .png)
        claim.replaceSubrange(16..<24, with: bigEndian(12_000) + bigEndian(9_000))
        claim.replaceSubrange(29..<33, with: bigEndian(Int(crc32(claim[12..<29]))))

        var huge = try request("pixel-limit-photo") { request, directory in
            request.imagePath = directory.appendingPathComponent("huge.png").path
            try Data(claim).write(to: URL(fileURLWithPath: request.imagePath))
        }
        #expect(huge.maximumPixels == 100_000_000)
        #expect(throws: ImageError.exceedsPixelLimit(source: huge.imagePath, width: 12_000, height: 9_000, limit: 100_000_000)) {
            try EditPipeline.check(huge)
        }
        huge.maximumPixels = 120_000_000
        #expect(throws: ImageError.self) { try EditPipeline.check(huge) }  // then its data is too short
        #expect(!FileManager.default.fileExists(atPath: huge.outputDirectory))

        // The 40x30 photo (1,200 pixels) under a limit of 1,199, and its 80x60 mask under 2,000.
        var small = try request("pixel-limit-small")
        small.maximumPixels = 1_199
        #expect(throws: ImageError.exceedsPixelLimit(source: small.imagePath, width: 40, height: 30, limit: 1_199)) {
            try EditPipeline.check(small)
        }
        small.maximumPixels = 1_200
        _ = try EditPipeline.check(small)
        let bigMask = try request("pixel-limit-mask") { request, directory in
            request.maskPath = try writePhotoAndMask(in: directory.appendingPathComponent("mask80"), maskSize: (80, 60)).mask
            request.maximumPixels = 2_000
        }
        #expect(throws: ImageError.exceedsPixelLimit(source: bigMask.maskPath!, width: 80, height: 60, limit: 2_000)) {
            try EditPipeline.check(bigMask)
        }
        let message = String(describing: ImageError.exceedsPixelLimit(source: "huge.png", width: 12_000, height: 9_000, limit: 100_000_000))
        #expect(message.contains("--max-megapixels") && message.contains("downscale"))
    }
}
