import Foundation
import Testing
@testable import BlendImage
import BlendTensor
import BlendTestSupport

/// Masks and photos as users make them (issue 28): small marks under a feather, stray
/// transparency in black-and-white masks, 16-bit photos, feathered cut-outs.
@Suite struct MaskRoundTwoTests {
    func rectangle(_ width: Int, _ height: Int, _ box: PixelBox) throws -> EditMask {
        try EditMask(width: width, height: height, isEdited: (0..<width * height).map { box.contains(x: $0 % width, y: $0 / width) })
    }

    // MARK: small marks

    @Test func theFeatherNeverFadesASmallMarkAway() throws {
        // The sizes: 6, 8 and 12 px marks under the default feather of 4.
        for side in [1, 2, 5, 6, 8, 12] {
            let mask = try rectangle(40, 40, PixelBox(x: 10, y: 12, width: side, height: side))
            let weights = pasteWeights(mask: mask, feather: 4)
            let marked = (0..<1600).filter { mask.isEdited[$0] }
            // Every marked pixel takes at least 1/(feather+1) of the edit, and the middle all of it.
            #expect(marked.allSatisfy { weights[$0] >= 0.2 - 1e-6 }, "side \(side)")
            #expect(marked.map { weights[$0] }.max() == 1, "side \(side)")
            #expect((0..<1600).allSatisfy { mask.isEdited[$0] || weights[$0] == 0 })
            let fit = FeatherFit(mask: mask, feather: 4)
            #expect(fit.areas == 1)
            #expect(fit.narrowAreas == (side < 9 ? 1 : 0), "side \(side)")
        }
        // A 6 px mark: depths 1, 2, 3, 3, 2, 1 across, its own half-width 3.
        let six = try rectangle(40, 40, PixelBox(x: 10, y: 12, width: 6, height: 6))
        let row = pasteWeights(mask: six, feather: 4)[(15 * 40 + 10)..<(15 * 40 + 16)]
        #expect(row.map { ($0 * 3).rounded() } == [1, 2, 3, 3, 2, 1])
        #expect(FeatherFit(mask: six, feather: 4).narrowestWidth == 6)
        // A large region keeps a ramp of feather + 1 steps from its edge.
        let large = try rectangle(60, 40, PixelBox(x: 5, y: 5, width: 40, height: 30))
        let ramp = pasteWeights(mask: large, feather: 4)[(20 * 60 + 5)..<(20 * 60 + 11)]
        #expect(ramp.map { ($0 * 5).rounded() } == [1, 2, 3, 4, 5, 5])
        // A thin stroke next to a large area: the stroke still takes at least a fifth.
        var strokeValues = large.isEdited
        for x in 45..<58 { strokeValues[20 * 60 + x] = true }
        let stroke = try EditMask(width: 60, height: 40, isEdited: strokeValues)
        let strokeWeights = pasteWeights(mask: stroke, feather: 4)
        #expect((45..<58).allSatisfy { strokeWeights[20 * 60 + $0] >= 0.2 - 1e-6 })
        #expect(strokeWeights[20 * 60 + 57] == 1)   // far from the area, the stroke's own middle
        #expect(FeatherFit(mask: stroke, feather: 4).narrowAreas == 0)   // one connected area, thick somewhere
        // Two areas, one narrow.
        var two = large.isEdited
        for y in 36..<39 { for x in 50..<53 { two[y * 60 + x] = true } }
        let fit = FeatherFit(mask: try EditMask(width: 60, height: 40, isEdited: two), feather: 4)
        #expect(fit == FeatherFit(areas: 2, narrowAreas: 1, narrowestWidth: 3))
        // Widths as measured across: odd widths are not rounded up, a stroke is 1 wide.
        for (box, width) in [(PixelBox(x: 10, y: 12, width: 5, height: 9), 5), (PixelBox(x: 3, y: 7, width: 30, height: 1), 1),
                             (PixelBox(x: 3, y: 7, width: 2, height: 20), 2)] {
            #expect(FeatherFit(mask: try rectangle(40, 40, box), feather: 4).narrowestWidth == width, "\(box)")
        }
        // Feather 0: a hard edge everywhere, nothing narrow.
        #expect(pasteWeights(mask: six, feather: 0) == six.isEdited.map { $0 ? 1 : 0 })
        #expect(FeatherFit(mask: six, feather: 0).narrowAreas == 0)
    }

    @Test func theMaxFilterMatchesABruteForceWindow() throws {
        var rng = SplitMix64(seed: 3)
        for (width, height, radius) in [(1, 1, 1), (7, 5, 1), (13, 11, 3), (17, 3, 8), (5, 19, 20)] {
            let values = (0..<width * height).map { _ in Int32(rng.next() % 9) }
            var fast = values
            maxFilter(&fast, width: width, height: height, radius: radius)
            for y in 0..<height {
                for x in 0..<width {
                    var best: Int32 = .min
                    for yy in max(0, y - radius)...min(height - 1, y + radius) {
                        for xx in max(0, x - radius)...min(width - 1, x + radius) { best = max(best, values[yy * width + xx]) }
                    }
                    #expect(fast[y * width + x] == best, "\(width)x\(height) r\(radius) at \(x),\(y)")
                }
            }
        }
    }

    @Test func depthsAreChebyshevDistancesToTheNearestKeptPixel() throws {
        var rng = SplitMix64(seed: 8)
        let width = 23, height = 17
        let values = (0..<width * height).map { _ in rng.next() % 5 != 0 }
        let mask = try EditMask(width: width, height: height, isEdited: values)
        let depth = cappedDepths(mask, cap: 100)
        for y in 0..<height {
            for x in 0..<width {
                guard values[y * width + x] else { #expect(depth[y * width + x] == 0); continue }
                var nearest = 100
                for yy in 0..<height {
                    for xx in 0..<width where !values[yy * width + xx] { nearest = min(nearest, max(abs(xx - x), abs(yy - y))) }
                }
                #expect(Int(depth[y * width + x]) == nearest, "at \(x),\(y)")
            }
        }
    }

    // MARK: stray transparency

    /// A 64x64 black mask with a white rectangle (16..<48 × 20..<44) and `transparent` rows fully transparent.
    func twoToneMask(transparentRows: Range<Int>, alpha: UInt8 = 255) throws -> Photo {
        try Photo(encoded: rgbaPNG(width: 64, height: 64, color: { x, y in
            (16..<48).contains(x) && (20..<44).contains(y) ? [255, 255, 255] : [0, 0, 0]
        }, alpha: { _, y in transparentRows.contains(y) ? 0 : alpha }))
    }

    @Test func aBlackAndWhiteMaskWithAStrayTransparentStripUsesItsWhite() throws {
        let size = ImageSize(width: 64, height: 64)
        let strip = try twoToneMask(transparentRows: 0..<4)
        let soft = try SoftMask(maskImage: strip, photoSize: size, source: "m.png")
        #expect(soft.origin == .brightness)
        #expect(soft.thresholded(0.5).boundingBox == PixelBox(x: 16, y: 20, width: 32, height: 24))
        let note = try #require(soft.note).text(.commandLine)
        #expect(note.contains("256 transparent pixels") && note.contains("transparent pixels are kept") && note.contains("--mask-from alpha"))
        // Worded for the API, the same note names the field, not the flag.
        #expect(try #require(soft.note).text(.api).contains("maskFrom set to alpha reads the transparency"))
        // Asked for, the transparency is read instead.
        let forced = try SoftMask(maskImage: strip, photoSize: size, source: "m.png", channel: .alpha)
        #expect(forced.origin == .maskTransparency && forced.thresholded(0.5).boundingBox == PixelBox(x: 0, y: 0, width: 64, height: 4))
        // Alpha 250 everywhere marks nothing: the brightness is the mask, and the note says why.
        let faint = try SoftMask(maskImage: twoToneMask(transparentRows: 0..<0, alpha: 250), photoSize: size, source: "m.png")
        #expect(faint.origin == .brightness && faint.thresholded(0.5).editedPixelCount == 32 * 24)
        #expect(faint.note?.description.contains("lowest alpha 250") == true)
    }

    @Test func aTransparentStripHidingWhiteIsKeptAsItShowsUnlessBrightnessIsAskedFor() throws {
        // The strip's hidden colour is white: an editor shows it transparent, so auto keeps it.
        let size = ImageSize(width: 64, height: 64)
        let strip = try Photo(encoded: rgbaPNG(width: 64, height: 64, color: { x, y in
            (16..<48).contains(x) && (20..<44).contains(y) || y < 4 ? [255, 255, 255] : [0, 0, 0]
        }, alpha: { _, y in y < 4 ? 0 : 255 }))
        let soft = try SoftMask(maskImage: strip, photoSize: size, source: "m.png")
        #expect(soft.origin == .brightness && soft.thresholded(0.5).boundingBox == PixelBox(x: 16, y: 20, width: 32, height: 24))
        // Read by brightness on request, the hidden white is read too, and counted.
        let raw = try SoftMask(maskImage: strip, photoSize: size, source: "m.png", channel: .brightness)
        #expect(raw.thresholded(0.5).editedPixelCount == 32 * 24 + 4 * 64 && raw.hiddenColourMarks == 4 * 64)
        #expect(soft.hiddenColourMarks == 0)
    }

    @Test func transparencyIsTheMaskWhereItIsTheDrawing() throws {
        let size = ImageSize(width: 32, height: 24)
        let hole: (Int, Int) -> UInt8 = { x, y in (8..<20).contains(x) && (6..<18).contains(y) ? 0 : 255 }
        // A uniform layer erased where it should change (also with its hidden colours zeroed).
        for hidden in [[255, 255, 255], [0, 0, 0]] as [[UInt8]] {
            let layer = try Photo(encoded: rgbaPNG(width: 32, height: 24, color: { x, y in hole(x, y) == 0 ? hidden : [255, 255, 255] }, alpha: hole))
            let soft = try SoftMask(maskImage: layer, photoSize: size, source: "layer.png")
            #expect(soft.origin == .maskTransparency && soft.thresholded(0.5).editedPixelCount == 144)
            #expect(soft.note?.description.contains("uniform") == true)
        }
        // A photo with the region erased (the hosted-API convention).
        let photo = patternImage(width: 32, height: 24)
        let erased = try Photo(encoded: rgbaPNG(width: 32, height: 24, color: { x, y in Array(photo.pixels[3 * (y * 32 + x)..<3 * (y * 32 + x) + 3]) },
                                                alpha: hole))
        let soft = try SoftMask(maskImage: erased, photoSize: size, source: "erased.png")
        #expect(soft.origin == .maskTransparency && soft.thresholded(0.5).editedPixelCount == 144)
        #expect(soft.note?.description.contains("--mask-from brightness") == true)
        // Asked for brightness, the colours are read.
        #expect(try SoftMask(maskImage: erased, photoSize: size, channel: .brightness).origin == .brightness)
    }

    @Test func anEmptyMaskNamesTheRuleThatReadItAndTheOther() {
        let black = String(describing: MaskError.nothingMarked(source: "m.png", rule: .brightness, otherRule: true))
        #expect(black.contains("read by its brightness") && black.contains("--mask-from alpha"))
        #expect(!String(describing: MaskError.nothingMarked(source: "m.png", rule: .brightness, otherRule: false)).contains("--mask-from"))
        let opaque = String(describing: MaskError.nothingMarked(source: "m.png", rule: .maskTransparency, otherRule: true))
        #expect(opaque.contains("read by its transparency") && opaque.contains("--mask-from brightness"))
        #expect(String(describing: MaskError.nothingMarked(source: "p.png", rule: .photoTransparency, otherRule: false)).contains("--mask"))
    }

    // MARK: 16-bit photos

    /// 16-bit samples that no 8-bit value times 257 gives, so a round trip through 8 bits shows.
    func deepSamples(_ count: Int, channels: Int, seed: UInt64) -> [UInt16] {
        var rng = SplitMix64(seed: seed)
        return (0..<count * channels).map { _ in UInt16(truncatingIfNeeded: rng.next()) | 1 }
    }

    @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
    func sixteenBitPNGsKeepEveryBit(grey: Bool, alpha: Bool) throws {
        let width = 13, height = 7, channels = (grey ? 1 : 3) + (alpha ? 1 : 0)
        var samples = deepSamples(width * height, channels: channels, seed: 21)
        if alpha { for i in 0..<width * height { samples[i * channels + channels - 1] = i % 3 == 0 ? 0 : samples[i * channels + channels - 1] } }
        let png = try PNGCodec.encode16(width: width, height: height, samples: samples, hasAlpha: alpha, grey: grey)
        let photo = try Photo(encoded: png)
        #expect(photo.bitsPerChannel == 16)
        let deep = try #require(photo.deep)
        #expect(deep.isGrey == grey)
        for i in 0..<width * height {
            for c in 0..<3 { #expect(deep.rgb[3 * i + c] == samples[i * channels + (grey ? 0 : c)]) }
            if alpha { #expect(deep.alpha?[i] == samples[i * channels + channels - 1]) }
        }
        #expect((deep.alpha != nil) == alpha)
        // The 8-bit view is the 16-bit one rounded (what the model sees).
        for i in 0..<width * height {
            let expected = (Int(deep.rgb[3 * i]) * 255 + 32767) / 65535
            #expect(abs(Int(photo.image.pixels[3 * i]) - expected) <= 1)
        }
        // Written back at 16 bits, then read again: the same samples.
        let again = try Photo(encoded: photo.encodedPNG())
        #expect(again.deep?.rgb == deep.rgb && again.deep?.alpha == deep.alpha)
        #expect(PNGCodec.bitDepth(try photo.encodedPNG()) == 16)
        // 8-bit files have no deep samples.
        #expect(try Photo(encoded: PNGCodec.encode(patternImage(width: 5, height: 4))).deep == nil)
    }

    @Test func aSixteenBitPhotoIsPastedAtSixteenBits() throws {
        let width = 12, height = 10
        let samples = deepSamples(width * height, channels: 4, seed: 5)
        let photo = try Photo(encoded: PNGCodec.encode16(width: width, height: height, samples: samples, hasAlpha: true))
        let mask = try rectangle(width, height, PixelBox(x: 3, y: 2, width: 6, height: 6))
        let weights = pasteWeights(mask: mask, feather: 2)
        let edit = try RGBImage(width: 6, height: 6, filledWith: RGBColor(red: 200, green: 10, blue: 99))
        let result = try pasteEdit(edit, into: photo, region: PixelBox(x: 3, y: 2, width: 6, height: 6), weights: weights)
        let deep = try #require(result.deep)
        let original = try #require(photo.deep)
        for i in 0..<width * height {
            if mask.isEdited[i] {
                #expect(deep.alpha?[i] == 65535)
                let full: [UInt16] = [51400, 2570, 25443]   // 200, 10, 99 times 257
                if weights[i] == 1 { #expect(Array(deep.rgb[3 * i..<3 * i + 3]) == full) }
            } else {
                #expect(deep.rgb[3 * i..<3 * i + 3] == original.rgb[3 * i..<3 * i + 3], "pixel \(i)")
                #expect(deep.alpha?[i] == original.alpha?[i])
            }
        }
        let written = try Photo(encoded: result.encodedPNG())
        #expect(written.deep == deep)
    }

    // MARK: cut-outs

    @Test func aFilledCutOutIsOpaqueAndTakesTheEditsColourWhereItWasTransparent() throws {
        let width = 30, height = 20
        let hole = PixelBox(x: 8, y: 5, width: 12, height: 9)
        let png = try rgbaPNG(width: width, height: height, color: { x, y in [UInt8(x * 8), UInt8(y * 12), 40] },
                              alpha: { x, y in hole.contains(x: x, y: y) ? 0 : 255 })
        let photo = try Photo(encoded: png)
        let mask = try SoftMask(transparencyOf: photo, source: "cut.png").thresholded(0.5)
        let weights = pasteWeights(mask: mask, feather: 4)
        #expect(weights.contains { $0 > 0 && $0 < 1 })   // the rim is feathered
        let edit = try RGBImage(width: hole.width, height: hole.height, filledWith: RGBColor(red: 10, green: 220, blue: 30))
        let result = try pasteEdit(edit, into: photo, region: hole, weights: weights)
        // The only transparency was the hole: once it is filled, the photo is opaque (and is
        // written as RGB).
        #expect(result.alpha == nil)
        for i in 0..<width * height {
            if mask.isEdited[i] {
                // Nothing of the colour hidden under the transparency shows.
                #expect(Array(result.image.pixels[3 * i..<3 * i + 3]) == [10, 220, 30], "pixel \(i)")
            } else {
                #expect(result.image.pixels[3 * i..<3 * i + 3] == photo.image.pixels[3 * i..<3 * i + 3])
            }
        }
        // A half-transparent rim outside the hole keeps its alpha; the filled hole is opaque.
        let rimmed = try Photo(encoded: rgbaPNG(width: width, height: height, color: { x, y in [UInt8(x * 8), UInt8(y * 12), 40] },
                                                alpha: { x, y in hole.contains(x: x, y: y) ? 0 : (y == 0 ? 100 : 255) }))
        let kept = try pasteEdit(edit, into: rimmed, region: hole, weights: weights)
        for i in 0..<width * height {
            #expect(kept.alpha?[i] == (mask.isEdited[i] ? 255 : rimmed.alpha?[i]), "pixel \(i)")
        }
        // Over an opaque photo the same weights still fade the colour.
        let opaque = try Photo(image: photo.image)
        let faded = try pasteEdit(edit, into: opaque, region: hole, weights: weights)
        let rim = hole.y * width + hole.x
        #expect(faded.alpha == nil && faded.image.pixels[3 * rim + 1] < 220)
    }
}
