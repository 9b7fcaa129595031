import Foundation
import Testing
import BlendEditor
@testable import BlendImage
import BlendModels
import BlendTensor
@testable import BlendPipeline
import BlendPipelineTestSupport

/// Masks and photos as users make them, through the pipeline on the tiny models (issue 28):
/// small marks, stray transparency, 16-bit photos, feathered cut-outs; both methods.
@Suite(.serialized) struct MaskInputTests {
    let models: TinyModelFiles
    let sd = sharedTinySD

    init() throws { models = try TinyModelFiles.scratch() }

    /// The 40x30 test photo with a mask of `marked` (white on black), for `method`.
    func request(_ name: String, marked: PixelBox, latent: Bool = false) throws -> EditRequest {
        let directory = models.directory.appendingPathComponent(name)
        let (photo, mask) = try writePhotoAndMask(in: directory) { x, y in marked.contains(x: x, y: y) ? 255 : 0 }
        var settings = quickSettings()
        settings.samples = 1
        settings.batchSize = 1
        var paths = models.paths
        if latent {
            settings.method = .latent
            paths = sd.editPaths("sd1", .compVis, clip: models.paths)
        }
        var request = EditRequest(imagePath: photo, maskPath: mask, outputDirectory: directory.appendingPathComponent("out").path,
                                  settings: settings, models: paths)
        request.latent.steps = 4
        return request
    }

    func run(_ request: EditRequest) throws -> (report: EditReport, notices: [String], sample: Photo) {
        var notices: [String] = []
        let report = try EditPipeline.run(request) { if case let .notice(text) = $0 { notices.append(text) } }
        let sample = try Photo(contentsOf: URL(fileURLWithPath: report.directory).appendingPathComponent(report.samples[0].sampleFile).path)
        return (report, notices, sample)
    }

    /// The largest change of any channel between two images' pixel `i`.
    func change(_ a: RGBImage, _ b: RGBImage, _ i: Int) -> Int {
        (0..<3).map { abs(Int(a.pixels[3 * i + $0]) - Int(b.pixels[3 * i + $0])) }.max()!
    }

    // MARK: small marks

    @Test func aSmallMarkTakesTheEditUnderTheDefaultFeather() throws {
        // The issue's 6x6 mark: with the old fade its largest change was 1 of 255.
        let mark = PixelBox(x: 17, y: 12, width: 6, height: 6)
        let feathered = try request("small-feathered", marked: mark)
        var hard = try request("small-hard", marked: mark)
        hard.maskOptions.feather = 0
        let soft = try run(feathered), edge = try run(hard)
        #expect(soft.notices.contains { $0.contains("narrower than twice the feather of 4 pixels (--feather") && $0.contains("6 pixels across") })
        #expect(!edge.notices.contains { $0.contains("--feather") })
        let photo = try RGBImage(contentsOf: feathered.imagePath)
        // The same edit (the feather only changes the paste): every marked pixel takes at
        // least a third of it (depth 1 of 3), the middle all of it.
        var largest = 0
        for y in mark.y..<mark.y + mark.height {
            for x in mark.x..<mark.x + mark.width {
                let i = y * 40 + x
                let full = change(edge.sample.image, photo, i), faded = change(soft.sample.image, photo, i)
                #expect(Double(faded) >= Double(full) / 3 - 1, "pixel \(x),\(y)")
                largest = max(largest, faded)
            }
        }
        let middle = 14 * 40 + 19
        #expect(soft.sample.image.pixels[3 * middle..<3 * middle + 3] == edge.sample.image.pixels[3 * middle..<3 * middle + 3])
        #expect(largest >= 20)
    }

    @Test(arguments: [false, true])
    func aMarkTooSmallForTheModelsGridIsMagnifiedBeforeAnyModelLoads(latent: Bool) throws {
        // A 1-pixel mark: the auto region (its box, an 8-pixel margin, at least the model's 16
        // pixels) is 17 pixels wide, and resizing it to 16 skips the mark's column.
        let mark = PixelBox(x: 20, y: 15, width: 1, height: 1)
        let request = try request("tiny-\(latent)", marked: mark, latent: latent)
        let checked = try EditPipeline.check(request)
        #expect(checked.region.width < checked.modelSize, "\(checked.region)")
        #expect(checked.region.contains(x: 20, y: 15))
        #expect(checked.notices.contains { $0.contains("too small to edit at the model's scale") && $0.contains("scaled up") })
        let (report, _, sample) = try run(request)
        #expect(report.region == checked.region)
        let photo = try Photo(contentsOf: request.imagePath)
        for i in 0..<1200 where i != 15 * 40 + 20 {
            #expect(sample.image.pixels[3 * i..<3 * i + 3] == photo.image.pixels[3 * i..<3 * i + 3], "pixel \(i)")
        }
        // A box the user chose is kept; the mark, which vanishes in it, is edited through the
        // model pixel or latent cell over it, and the photo changes at the mark only.
        var boxed = request
        boxed.maskOptions.region = .box(PixelBox(x: 0, y: 0, width: 40, height: 30))
        boxed.outputDirectory += "-boxed"
        let boxedCheck = try EditPipeline.check(boxed)
        #expect(boxedCheck.region == PixelBox(x: 0, y: 0, width: 40, height: 30) && boxedCheck.geometry.coveredAreas == 1)
        #expect(boxedCheck.notices.contains { $0.contains("thinner than one \(latent ? "2x2-pixel cell of the latent grid" : "pixel")") })
        let boxedRun = try run(boxed)
        for i in 0..<1200 where i != 15 * 40 + 20 {
            #expect(boxedRun.sample.image.pixels[3 * i..<3 * i + 3] == photo.image.pixels[3 * i..<3 * i + 3], "pixel \(i)")
        }
    }

    @Test(arguments: [false, true])
    func aStrokeThinnerThanAModelPixelAndASpeckBesideALargeMarkAreEdited(latent: Bool) throws {
        // A 400x40 photo: a 1-pixel horizontal stroke the whole width (no zoom can help, the
        // region is the photo's width) and, for the second case, a 20x20 mark with a 1-pixel
        // speck beside it. Squeezed 25 times wide and 2.5 high (to 16x16) the nearest sampling
        // takes photo rows 21 and 23 but not 22, and misses the speck's column.
        let directory = models.directory.appendingPathComponent("thin-\(latent)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var photoPixels: [UInt8] = []
        for y in 0..<40 { for x in 0..<400 { photoPixels += [UInt8((x * 5) % 256), UInt8((y * 6) % 256), 90] } }
        let photoPath = directory.appendingPathComponent("photo.png").path
        try RGBImage(width: 400, height: 40, pixels: photoPixels).write(to: photoPath)
        let options = MaskOptions()
        let scale = latent ? 2 : nil
        for (name, marked) in [("stroke", { (x: Int, y: Int) in y == 22 }),
                               ("speck", { (x: Int, y: Int) in (125..<145).contains(x) && (10..<30).contains(y) || (x == 301 && y == 22) })] {
            let mask = try EditMask(width: 400, height: 40, isEdited: (0..<16_000).map { marked($0 % 400, $0 / 400) })
            let geometry = try EditPipeline.resolveGeometry(mask: mask, photo: mask.size, options: options, modelSize: 16, latentScale: scale)
            #expect(geometry.coveredAreas == 1, "\(name)")
            #expect(geometry.areas == (name == "stroke" ? 1 : 2))
            // Every marked area reaches the model's image and the latent grid.
            let grid = try LatentMasks.downsample(geometry.modelMask.tensor(), height: latent ? 8 : 16, width: latent ? 8 : 16)
            #expect(try grid.sum().scalar >= (name == "stroke" ? 1 : 2), "\(name)")
            let notices = EditPipeline.geometryNotices(geometry, options: options, enforcesBackground: true)
            #expect(notices.contains { $0.contains(name == "stroke" ? "the marked area is thinner" : "1 of the 2 marked areas are thinner") }, "\(notices)")
        }
        // Through the pipeline, the stroke is edited and nothing else changes.
        let maskPath = directory.appendingPathComponent("mask.png").path
        try RGBImage(width: 400, height: 40, pixels: (0..<16_000).flatMap { $0 / 400 == 22 ? [255, 255, 255] : [0, 0, 0] as [UInt8] }).write(to: maskPath)
        var base = try request("thin-run-\(latent)", marked: PixelBox(x: 0, y: 0, width: 1, height: 1), latent: latent)
        base.imagePath = photoPath
        base.maskPath = maskPath
        let (report, notices, sample) = try run(base)
        #expect(notices.contains { $0.contains("thinner than one") })
        #expect(report.editedFraction == 400.0 / 16_000)
        let photo = try RGBImage(contentsOf: photoPath)
        var changed = 0
        for i in 0..<16_000 {
            if i / 400 != 22 { #expect(sample.image.pixels[3 * i..<3 * i + 3] == photo.pixels[3 * i..<3 * i + 3]) }
            else if change(sample.image, photo, i) > 0 { changed += 1 }
        }
        #expect(changed > 200, "the stroke changed at \(changed) of 400 pixels")
    }

    @Test func theMaskIsCheckedBeforeTheModelFilesWhenTheirNamesGiveTheModelsSize() throws {
        // The official UNet's name says 256x256: a region outside the photo is named before
        // the missing model files are.
        var request = try request("region-first", marked: PixelBox(x: 10, y: 10, width: 8, height: 8))
        request.models.diffusion = models.directory.appendingPathComponent("absent/256x256_diffusion_uncond.pt").path
        request.maskOptions.region = .box(PixelBox(x: 30, y: 20, width: 30, height: 30))
        #expect(throws: MaskError.regionOutsidePhoto(region: PixelBox(x: 30, y: 20, width: 30, height: 30), image: ImageSize(width: 40, height: 30))) {
            _ = try EditPipeline.check(request)
        }
        request.maskOptions.region = .auto
        #expect(throws: ModelLoadingError.self) { _ = try EditPipeline.check(request) }
    }

    @Test func aMaskChannelWithoutAMaskIsRefused() throws {
        var request = try request("mask-from-alone", marked: PixelBox(x: 10, y: 10, width: 8, height: 8))
        request.maskPath = nil
        request.maskOptions.channel = .brightness
        do {
            try EditPipeline.validateSettings(request)
            Issue.record("expected an error")
        } catch let error as EditError {
            #expect(error.text(.commandLine).contains("--mask-from brightness chooses how a mask image is read, and there is none"))
            #expect(error.text(.api).contains("maskFrom set to brightness chooses how a mask image is read"))
            #expect(!error.text(.api).contains("--"))
        }
        request.maskOptions.channel = .auto
        try EditPipeline.validateSettings(request)
    }

    @Test func aMarkOnTheModelsImageButBetweenLatentCellsIsMagnifiedForTheLatentMethodOnly() throws {
        // Near the corner the 17-pixel region is shifted into the photo, so the mark is at its
        // column and row 6, which land on model pixel 6 of 16: the model keeps it but the 8x8
        // latent grid (every second pixel, from the second) does not.
        let mark = PixelBox(x: 6, y: 6, width: 1, height: 1)
        let pixel = try EditPipeline.check(request("between-pixel", marked: mark))
        #expect(pixel.region == PixelBox(x: 0, y: 0, width: 17, height: 17))
        #expect(!pixel.notices.contains { $0.contains("too small") })
        let latent = try EditPipeline.check(request("between-latent", marked: mark, latent: true))
        #expect(latent.region.width < 16 && latent.notices.contains { $0.contains("too small to edit at the model's scale") })
        let grid = try LatentMasks.downsample(latent.geometry.modelMask.tensor(), height: 8, width: 8)
        #expect(try grid.sum().scalar > 0)
    }

    // MARK: stray transparency

    /// A black mask with a white rectangle and its top 4 rows fully transparent.
    func writeStripMask(to path: String, whiteBox: PixelBox, alpha: UInt8 = 255, transparentRows: Range<Int> = 0..<4) throws {
        var pixels: [UInt8] = [], opacity: [UInt8] = []
        for y in 0..<30 {
            for x in 0..<40 {
                let v: UInt8 = whiteBox.contains(x: x, y: y) ? 255 : 0
                pixels += [v, v, v]
                opacity.append(transparentRows.contains(y) ? 0 : alpha)
            }
        }
        try Photo(image: RGBImage(width: 40, height: 30, pixels: pixels), alpha: opacity).writePNG(to: path)
    }

    @Test(arguments: [false, true])
    func aTwoToneMaskWithAStrayTransparentStripEditsItsWhite(latent: Bool) throws {
        let white = PixelBox(x: 12, y: 8, width: 16, height: 14)
        var request = try request("strip-\(latent)", marked: white, latent: latent)
        try writeStripMask(to: request.maskPath!, whiteBox: white)
        let (report, notices, sample) = try run(request)
        #expect(report.maskRule == .brightness)
        #expect(notices.contains { $0.contains("transparency is ignored") && $0.contains("--mask-from alpha") })
        #expect(abs(report.editedFraction - Double(16 * 14) / 1200) < 1e-9)
        let photo = try Photo(contentsOf: request.imagePath)
        for i in 0..<1200 where !white.contains(x: i % 40, y: i / 40) {
            #expect(sample.image.pixels[3 * i..<3 * i + 3] == photo.image.pixels[3 * i..<3 * i + 3], "pixel \(i)")
        }
        // Asked for, the strip's transparency is the mask instead.
        request.maskOptions.channel = .alpha
        request.outputDirectory += "-alpha"
        let alpha = try EditPipeline.check(request)
        #expect(alpha.softMask.origin == .maskTransparency && abs(alpha.editedFraction - 4.0 / 30) < 1e-9)
    }

    @Test func aMaskThatMarksNothingNamesTheRuleAndTheOther() throws {
        // Black everywhere at alpha 250: the transparency marks nothing, so brightness reads it.
        let request = try request("all-black", marked: PixelBox(x: 0, y: 0, width: 0, height: 0))
        try writeStripMask(to: request.maskPath!, whiteBox: PixelBox(x: 0, y: 0, width: 0, height: 0), alpha: 250, transparentRows: 0..<0)
        // Its transparency marks nothing either, so the error suggests no other rule.
        #expect(throws: MaskError.nothingMarked(source: request.maskPath!, rule: .brightness, otherRule: false)) {
            try EditPipeline.check(request)
        }
        // Read by brightness on request, a black mask whose transparency would mark its strip
        // names the other rule.
        var forced = request
        forced.maskOptions.channel = .brightness
        try writeStripMask(to: request.maskPath!, whiteBox: PixelBox(x: 0, y: 0, width: 0, height: 0))
        #expect(throws: MaskError.nothingMarked(source: request.maskPath!, rule: .brightness, otherRule: true)) {
            try EditPipeline.check(forced)
        }
        // With white in it, alpha 250 everywhere no longer hides the white.
        try writeStripMask(to: request.maskPath!, whiteBox: PixelBox(x: 12, y: 8, width: 16, height: 14), alpha: 250, transparentRows: 0..<0)
        let checked = try EditPipeline.check(request)
        #expect(checked.softMask.origin == .brightness && abs(checked.editedFraction - Double(16 * 14) / 1200) < 1e-9)
        #expect(checked.notices.contains { $0.contains("lowest alpha 250") })
        // Asked for by name, the note says what the alpha is rather than calling it transparent.
        var brightness = request
        brightness.maskOptions.channel = .brightness
        let named = try EditPipeline.check(brightness)
        #expect(named.notices.contains { $0.contains("is partly transparent (lowest alpha 250 of 255); its transparency is ignored") })
    }

    // MARK: 16-bit photos and cut-outs

    @Test(arguments: [(false, false), (true, false), (false, true)])
    func aSixteenBitPhotoKeepsItsSixteenBits(grey: Bool, alpha: Bool) throws {
        var request = try request("deep-\(grey)-\(alpha)", marked: PixelBox(x: 12, y: 8, width: 16, height: 14))
        let channels = (grey ? 1 : 3) + (alpha ? 1 : 0)
        var rng = SplitMix64(seed: 40)
        let samples = (0..<1200 * channels).map { i in alpha && i % channels == channels - 1 ? UInt16(60000 + i % 5000) : UInt16(truncatingIfNeeded: rng.next()) | 1 }
        request.imagePath = models.directory.appendingPathComponent("deep-\(grey)-\(alpha)/photo16.png").path
        try Data(PNGCodec.encode16(width: 40, height: 30, samples: samples, hasAlpha: alpha, grey: grey))
            .write(to: URL(fileURLWithPath: request.imagePath))
        let original = try Photo(contentsOf: request.imagePath)
        let (report, notices, sample) = try run(request)
        #expect(report.bitsPerChannel == 16)
        #expect(notices.contains { $0.contains("16 bits per channel") })
        let deep = try #require(sample.deep), source = try #require(original.deep)
        let mask = try EditMask(contentsOf: request.maskPath!)
        var changed = 0
        for i in 0..<1200 {
            if mask.isEdited[i] {
                changed += deep.rgb[3 * i..<3 * i + 3] == source.rgb[3 * i..<3 * i + 3] ? 0 : 1
            } else {
                #expect(deep.rgb[3 * i..<3 * i + 3] == source.rgb[3 * i..<3 * i + 3], "pixel \(i)")
                #expect(deep.alpha?[i] == source.alpha?[i])
            }
        }
        #expect(changed > 0)
    }

    @Test(arguments: [false, true])
    func aFilledCutOutIsOpaque(latent: Bool) throws {
        // No mask: the photo's transparent hole is the region, with the default feather.
        var request = try request("cut-out-\(latent)", marked: PixelBox(x: 0, y: 0, width: 1, height: 1), latent: latent)
        let hole = PixelBox(x: 12, y: 8, width: 16, height: 14)
        let image = try RGBImage(contentsOf: request.imagePath)
        request.imagePath = models.directory.appendingPathComponent("cut-out-\(latent)/cut.png").path
        try Photo(image: image, alpha: (0..<1200).map { hole.contains(x: $0 % 40, y: $0 / 40) ? 0 : ($0 / 40 == 0 ? 200 : 255) })
            .writePNG(to: request.imagePath)
        request.maskPath = nil
        let (report, _, sample) = try run(request)
        #expect(report.maskRule == .photoTransparency)
        for i in 0..<1200 {
            let expected: UInt8 = hole.contains(x: i % 40, y: i / 40) ? 255 : (i / 40 == 0 ? 200 : 255)
            #expect((sample.alpha?[i] ?? 255) == expected, "pixel \(i)")
        }
    }
}

