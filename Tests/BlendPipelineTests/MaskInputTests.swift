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
        #expect(soft.notices.contains { $0.contains("narrower than the 9 pixels a feather of 4 needs (--feather") && $0.contains("6 pixels across") })
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
        // region is the photo's width) and, for the second case, a 120x20 mark (over two latent cells
        // across, so its edges keep the nearest resize) with a 1-pixel speck beside it. Squeezed 25 times wide and 2.5 high (to 16x16) the nearest sampling
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
                               ("speck", { (x: Int, y: Int) in (125..<245).contains(x) && (10..<30).contains(y) || (x == 301 && y == 22) })] {
            let mask = try EditMask(width: 400, height: 40, isEdited: (0..<16_000).map { marked($0 % 400, $0 / 400) })
            let geometry = try EditPipeline.resolveGeometry(mask: mask, photo: mask.size, options: options, modelSize: 16, latentScale: scale)
            #expect(geometry.coveredAreas == 1, "\(name)")
            #expect(geometry.areas == (name == "stroke" ? 1 : 2))
            // Every marked area reaches the model's image and the latent grid.
            let grid = try LatentMasks.downsample(geometry.modelMask.tensor(), height: latent ? 8 : 16, width: latent ? 8 : 16)
            #expect(try grid.sum().scalar >= (name == "stroke" ? 1 : 2), "\(name)")
            let notices = EditPipeline.geometryNotices(geometry, options: options, enforcesBackground: true)
            #expect(notices.contains { $0.contains(name == "stroke" ? "the marked area is thinner" : "1 of the 2 marked areas is thinner") }, "\(notices)")
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

    @Test(arguments: [false, true])
    func theArmOfAnLThatTheSamplingSkipsIsEditedToo(latent: Bool) throws {
        // The newcomer's L on a 64x48 photo under --region full: resized to 16x16 by nearest,
        // rows 1, 4, 7, ... and columns 2, 6, ..., 34 are sampled (the latent grid takes every
        // second of those from the first, row 4 still but columns 6, 14, ..., 38). Row 4 keeps
        // the area, but its vertical arm on column 33 was left unedited beyond the first rows.
        let directory = models.directory.appendingPathComponent("ell-\(latent)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let marked = { (x: Int, y: Int) in y == 4 && (10..<51).contains(x) || x == 33 && (4..<45).contains(y) }
        let mask = try EditMask(width: 64, height: 48, isEdited: (0..<3072).map { marked($0 % 64, $0 / 64) })
        var options = MaskOptions()
        options.region = .full
        let geometry = try EditPipeline.resolveGeometry(mask: mask, photo: mask.size, options: options, modelSize: 16,
                                                        latentScale: latent ? 2 : nil)
        #expect(geometry.areas == 1 && geometry.coveredAreas == 1 && geometry.partlyCoveredAreas == 1)
        // The cells over the arm's far end are marked; the horizontal arm's are as nearest made them.
        let grid = try LatentMasks.downsample(geometry.modelMask.tensor(), height: latent ? 8 : 16, width: latent ? 8 : 16).scalars
        let side = latent ? 8 : 16
        #expect(grid[(latent ? 6 : 13) * side + (latent ? 4 : 8)] == 1, "the cell over pixel 33,40")
        let notices = EditPipeline.geometryNotices(geometry, options: options, enforcesBackground: true)
        #expect(notices.contains { $0.contains("the marked area is, in places, thinner than one") && $0.contains("those places touch") }, "\(notices)")

        // Through the pipeline, on a flat grey photo (where a pixel the model left alone comes
        // back as the photo's own value, as it need not on a textured one): every pixel of the
        // L, of a diagonal and of a line of slope 1/2 takes the edit, and nothing unmarked changes.
        let diagonal = { (x: Int, y: Int) in (4..<44).contains(y) && x == y + 6 }
        let gentle = { (x: Int, y: Int) in (2..<62).contains(x) && y == 5 + x / 2 }
        // A second re-check's: a 2-pixel-wide diagonal, and a 1-pixel arm below a broad box
        // (the arm's pixels beside the box's solid cells were left as they were).
        let wide = { (x: Int, y: Int) in (4..<44).contains(y) && (x == y + 6 || x == y + 7) }
        let arm = { (x: Int, y: Int) in (10..<30).contains(y) && (20..<44).contains(x) || (30..<44).contains(y) && x == 31 }
        // The box's own edges may keep the references' band (under the feather's fade): only
        // the arm below it is checked there.
        let checked = { (name: String, x: Int, y: Int) in name != "arm" || y >= 30 }
        for (name, shape) in [("ell", marked), ("diagonal", diagonal), ("gentle", gentle), ("wide", wide), ("arm", arm)] {
            let photoPath = directory.appendingPathComponent("flat.png").path
            try RGBImage(width: 64, height: 48, pixels: [UInt8](repeating: 128, count: 3 * 3072)).write(to: photoPath)
            let maskPath = directory.appendingPathComponent("\(name).png").path
            try RGBImage(width: 64, height: 48, pixels: (0..<3072).flatMap { shape($0 % 64, $0 / 64) ? [255, 255, 255] : [0, 0, 0] as [UInt8] })
                .write(to: maskPath)
            var request = try request("\(name)-run-\(latent)", marked: PixelBox(x: 0, y: 0, width: 1, height: 1), latent: latent)
            request.imagePath = photoPath
            request.maskPath = maskPath
            request.maskOptions.region = .full
            let (_, runNotices, sample) = try run(request)
            #expect(runNotices.contains { $0.contains("thinner than one") }, "\(name): \(runNotices)")
            let photo = try RGBImage(contentsOf: photoPath)
            var missed: [String] = [], count = 0
            for i in 0..<3072 {
                if !shape(i % 64, i / 64) {
                    #expect(sample.image.pixels[3 * i..<3 * i + 3] == photo.pixels[3 * i..<3 * i + 3], "\(name): pixel \(i)")
                } else if checked(name, i % 64, i / 64) {
                    count += 1
                    if change(sample.image, photo, i) <= 8 { missed.append("\(i % 64),\(i / 64)") }
                }
            }
            #expect(missed.isEmpty, "\(name): \(missed.count) of \(count) marked pixels barely changed: \(missed)")
        }
    }

    @Test(arguments: [false, true])
    func everyPixelOfAThinLineLiesInAMarkedCellOfTheGrid(latent: Bool) throws {
        // 1-pixel lines of several slopes across a 64x48 photo (diagonals among them): each
        // marked pixel's own cell of the model's grid (16x16 pixels, or the 8x8 latent grid)
        // is marked once the mask reaches the grid.
        var options = MaskOptions()
        options.region = .full
        let side = latent ? 8 : 16
        for (dx, dy) in [(1, 1), (2, 1), (1, 2), (3, 1), (5, 4), (1, -1), (7, -3)] {
            var marked = [Bool](repeating: false, count: 3072)
            for t in 0..<200 {
                let x = 3 + t * dx / max(abs(dx), abs(dy)), y = (dy > 0 ? 2 : 45) + t * dy / max(abs(dx), abs(dy))
                guard (0..<64).contains(x), (0..<48).contains(y) else { break }
                marked[y * 64 + x] = true
            }
            let mask = try EditMask(width: 64, height: 48, isEdited: marked)
            let geometry = try EditPipeline.resolveGeometry(mask: mask, photo: mask.size, options: options, modelSize: 16,
                                                            latentScale: latent ? 2 : nil)
            let grid = try LatentMasks.downsample(geometry.modelMask.tensor(), height: side, width: side).scalars
            for i in marked.indices where marked[i] {
                let row = (i / 64) * side / 48, column = (i % 64) * side / 64
                #expect(grid[row * side + column] == 1, "line \(dx),\(dy): pixel \(i % 64),\(i / 64)")
            }
        }
    }

    @Test(arguments: [false, true])
    func aMarkAtLeastACellAcrossIsResizedAsTheReferencesDo(latent: Bool) throws {
        // Boxes at least two cells across (a cell's footprint is 4x3 photo pixels per model
        // pixel for 64x48 -> 16, twice that per latent cell), at every offset: the sampling
        // keeps each and reaches its edges from the solid cells inside, so the model's mask is
        // plain nearest, unwidened.
        let (minimumWidth, minimumHeight) = latent ? (16, 12) : (8, 6)
        var options = MaskOptions()
        options.region = .full
        for (width, height) in [(minimumWidth, minimumHeight), (minimumWidth + 3, minimumHeight + 5), (23, 17)] {
            for (x0, y0) in [(0, 0), (1, 2), (5, 7), (30, 29), (3, 1), (64 - width, 48 - height)] {
                let box = PixelBox(x: x0, y: y0, width: width, height: height)
                let mask = try EditMask(width: 64, height: 48, isEdited: (0..<3072).map { box.contains(x: $0 % 64, y: $0 / 64) })
                let geometry = try EditPipeline.resolveGeometry(mask: mask, photo: mask.size, options: options, modelSize: 16,
                                                                latentScale: latent ? 2 : nil)
                #expect(geometry.coveredAreas == 0, "\(box)")
                #expect(geometry.modelMask.isEdited == (try mask.resized(to: ImageSize(width: 16, height: 16))).isEdited, "\(box)")
            }
        }
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

    @Test(arguments: [false, true])
    func aRegionBoxWithoutAMarkIsRefusedBeforeTheModelFiles(latent: Bool) throws {
        var request = try request("empty-box-\(latent)", marked: PixelBox(x: 20, y: 15, width: 3, height: 2), latent: latent)
        request.models.stableDiffusion = models.directory.appendingPathComponent("absent-sd").path
        request.models.diffusion = models.directory.appendingPathComponent("absent-unet.safetensors").path
        request.maskOptions.region = .box(PixelBox(x: 0, y: 0, width: 12, height: 10))
        let expected = MaskError.nothingMarkedInRegion(source: request.maskPath!, region: PixelBox(x: 0, y: 0, width: 12, height: 10),
                                                       marked: PixelBox(x: 20, y: 15, width: 3, height: 2))
        #expect(throws: expected) { try EditPipeline.check(request) }
        #expect(expected.description.contains("the marked pixels lie in 20,15,3,2: give --region a box that holds them, or --region auto"))
        #expect(expected.message.text(.api).contains("give region a box that holds them, or region set to auto"))
        // With the mark inside, the missing model files are what is wrong.
        request.maskOptions.region = .box(PixelBox(x: 10, y: 10, width: 20, height: 20))
        #expect(throws: ModelLoadingError.self) { try EditPipeline.check(request) }
    }

    @Test func aMaskDarkerThanTheThresholdIsNotCalledBlack() throws {
        // Black but for one pixel at 100 of 255: below the 50 % cut, so nothing is marked.
        let request = try request("dim", marked: PixelBox(x: 0, y: 0, width: 0, height: 0))
        try RGBImage(width: 40, height: 30, pixels: (0..<1200).flatMap { $0 == 615 ? [100, 100, 100] : [0, 0, 0] as [UInt8] })
            .write(to: request.maskPath!)
        let expected = MaskError.belowThreshold(source: request.maskPath!, brightest: 100, threshold: 0.5)
        #expect(throws: expected) { try EditPipeline.check(request) }
        #expect(expected.description.contains("none is brighter than the threshold of 50 % (--mask-threshold); the brightest is 100 of 255")
                && expected.description.contains("or lower --mask-threshold"))
        // Lowered, the cut marks it.
        var lowered = request
        lowered.maskOptions.threshold = 0.3
        #expect(try EditPipeline.check(lowered).editedFraction == 1.0 / 1200)
    }

    @Test func marksOutsideARegionBoxAndAThinArmOfABroadMarkAreNamed() throws {
        // A 16x12 block with a 1-pixel arm to its right: the arm's fade is shortened, the block's not.
        var request = try request("arm", marked: PixelBox(x: 0, y: 0, width: 1, height: 1))
        let block = PixelBox(x: 4, y: 8, width: 16, height: 12), arm = PixelBox(x: 20, y: 14, width: 14, height: 1)
        try RGBImage(width: 40, height: 30, pixels: (0..<1200).flatMap {
            block.contains(x: $0 % 40, y: $0 / 40) || arm.contains(x: $0 % 40, y: $0 / 40) ? [255, 255, 255] : [0, 0, 0] as [UInt8]
        }).write(to: request.maskPath!)
        let checked = try EditPipeline.check(request)
        #expect(checked.notices.contains { $0.contains("the marked area is, in places, narrower than the 9 pixels a feather of 4 needs (--feather;"
            + " the thinnest part 1 pixel across)") }, "\(checked.notices)")
        // A box holding only part of it: what lies outside is named as kept.
        request.maskOptions.region = .box(PixelBox(x: 0, y: 0, width: 24, height: 30))
        let boxed = try EditPipeline.check(request)
        #expect(boxed.notices.contains { $0.contains("10 of the 206 marked pixels lie outside the region 0,0,24,30 (--region) and are kept") },
                "\(boxed.notices)")
    }

    @Test func aMaskThatKeepsOnePixelIsNotCalledAHundredPercent() throws {
        // A 1-pixel dot, inverted: 1199 of the 1200 pixels marked.
        var request = try request("dot-inverted", marked: PixelBox(x: 20, y: 15, width: 1, height: 1))
        request.settings.invertMask = true
        let checked = try EditPipeline.check(request)
        #expect(checked.notices.contains { $0.contains("with --invert-mask the mask marks 99.9 % (all but 1 pixel) of the photo") },
                "\(checked.notices)")
    }

    @Test func aDrawingOnATransparentLayerReadByBrightnessSaysWhyEveryPixelIsMarked() throws {
        // White everywhere, opaque only on the stroke: the transparent pixels' hidden colour is white too.
        var request = try request("hidden-white", marked: PixelBox(x: 0, y: 0, width: 1, height: 1))
        let stroke = PixelBox(x: 12, y: 8, width: 16, height: 14)
        try Photo(image: RGBImage(width: 40, height: 30, pixels: [UInt8](repeating: 255, count: 3600)),
                  alpha: (0..<1200).map { stroke.contains(x: $0 % 40, y: $0 / 40) ? 255 : 0 }).writePNG(to: request.maskPath!)
        request.maskOptions.channel = .brightness
        #expect(throws: MaskError.fullUnderTransparency(source: request.maskPath!, transparentPixels: 976)) { try EditPipeline.check(request) }
        // Read by its transparency (auto picks it: the colours are uniform), its empty area is
        // edited, with a warning that says how to edit the drawing instead.
        request.maskOptions.channel = .auto
        let checked = try EditPipeline.check(request)
        #expect(checked.softMask.origin == .maskTransparency && abs(checked.editedFraction - 976.0 / 1200) < 1e-9)
        #expect(checked.notices.contains { $0.contains("marks 81 % of the photo, its transparent area") && $0.contains("pass --invert-mask") },
                "\(checked.notices)")
        request.settings.invertMask = true
        #expect(abs(try EditPipeline.check(request).editedFraction - 224.0 / 1200) < 1e-9)
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
        #expect(notices.contains { $0.contains("transparent pixels are kept") && $0.contains("--mask-from alpha") })
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

