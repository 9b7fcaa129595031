import Foundation
import Testing
@testable import BlendImage
import BlendTestSupport

/// A grey mask image from a function of the pixel position.
func greyImage(width: Int, height: Int, _ value: (Int, Int) -> UInt8) -> RGBImage {
    var pixels: [UInt8] = []
    for y in 0..<height { for x in 0..<width { let v = value(x, y); pixels += [v, v, v] } }
    return try! RGBImage(width: width, height: height, pixels: pixels)
}

/// An RGBA PNG from colour and alpha functions.
func rgbaPNG(width: Int, height: Int, color: (Int, Int) -> [UInt8], alpha: (Int, Int) -> UInt8) throws -> [UInt8] {
    var samples: [UInt8] = []
    for y in 0..<height { for x in 0..<width { samples += color(x, y) + [alpha(x, y)] } }
    return try PNGCodec.encode(width: width, height: height, samples: samples, hasAlpha: true)
}

let profileForTests = ColorProfile(name: "Test RGB", data: iccProfileForTests)

func jpegWithProfile(_ jpeg: [UInt8], _ profile: ColorProfile) -> [UInt8] { jpegWithICCProfile(jpeg, profile: profile.data) }

@Suite struct MaskRulesTests {
    @Test func aMaskOfAnotherPixelSizeIsResizedToThePhoto() throws {
        // The issue's cases, scaled down: 2x larger, 2x smaller, and 4:3 at a quarter.
        for (mask, photo) in [((64, 64), (32, 32)), ((128, 72), (64, 36)), ((64, 48), (256, 192))] {
            let image = greyImage(width: mask.0, height: mask.1) { x, _ in x < mask.0 / 2 ? 255 : 0 }
            let soft = try SoftMask(maskImage: Photo(image: image), photoSize: ImageSize(width: photo.0, height: photo.1))
            #expect(soft.size == ImageSize(width: photo.0, height: photo.1))
            let edited = soft.thresholded(0.5)
            // The left half, to within the one column the resampling blurs.
            for y in 0..<photo.1 {
                #expect(edited.isEdited[y * photo.0] && !edited.isEdited[y * photo.0 + photo.0 - 1])
            }
            let count = edited.editedPixelCount
            #expect(abs(count - photo.0 * photo.1 / 2) <= photo.1)
        }
        #expect(throws: MaskError.self) {
            try SoftMask(maskImage: Photo(image: greyImage(width: 30, height: 30) { _, _ in 255 }), photoSize: ImageSize(width: 40, height: 30))
        }
    }

    @Test func theThresholdIgnoresJPEGNoiseAndHalvesAFeatheredEdge() throws {
        // A white square saved as JPEG: its ringing makes faint non-zero pixels around it.
        let square = greyImage(width: 64, height: 64) { x, y in (13..<45).contains(x) && (13..<45).contains(y) ? 255 : 0 }
        let jpeg = try Photo(encoded: square.encoded(as: .jpeg, jpegQuality: 75))
        let soft = try SoftMask(maskImage: jpeg, photoSize: ImageSize(width: 64, height: 64))
        let halfway = soft.thresholded(0.5)
        #expect(halfway.editedPixelCount == 32 * 32)
        #expect(halfway.boundingBox == PixelBox(x: 13, y: 13, width: 32, height: 32))
        // The reference's rule (any non-zero value) takes the halo too.
        #expect(soft.thresholded(0).editedPixelCount > 32 * 32 + 64)
        // A brush with a soft edge: a linear ramp from black to white over 40 columns.
        let ramp = greyImage(width: 40, height: 4) { x, _ in UInt8(x * 255 / 39) }
        let feathered = try SoftMask(maskImage: Photo(image: ramp), photoSize: ramp.size)
        #expect(feathered.thresholded(0.5).editedPixelCount == 20 * 4)
    }

    @Test func aMaskWithTransparencyEditsItsTransparentPixels() throws {
        // Uniform white colour; the region is in the alpha channel only.
        let png = try rgbaPNG(width: 20, height: 10, color: { _, _ in [255, 255, 255] },
                              alpha: { x, y in (5..<15).contains(x) && (2..<8).contains(y) ? 0 : 255 })
        let soft = try SoftMask(maskImage: Photo(encoded: png), photoSize: ImageSize(width: 20, height: 10))
        #expect(soft.origin == .maskTransparency)
        let mask = soft.thresholded(0.5)
        #expect(mask.editedPixelCount == 60 && mask.boundingBox == PixelBox(x: 5, y: 2, width: 10, height: 6))
        // Without transparency, brightness decides.
        let plain = try SoftMask(maskImage: Photo(encoded: PNGCodec.encode(greyImage(width: 20, height: 10) { x, _ in x < 5 ? 255 : 0 })),
                                 photoSize: ImageSize(width: 20, height: 10))
        #expect(plain.origin == .brightness && plain.thresholded(0.5).editedPixelCount == 50)
    }

    @Test func aPhotosTransparentAreaIsTheMaskWhenNoneIsGiven() throws {
        let png = try rgbaPNG(width: 12, height: 8, color: { x, y in [UInt8(x * 20), UInt8(y * 30), 7] },
                              alpha: { x, _ in x >= 8 ? 0 : (x == 7 ? 128 : 255) })
        let photo = try Photo(encoded: png)
        #expect(photo.alpha?.count == 96)
        let soft = try SoftMask(transparencyOf: photo, source: "photo.png")
        #expect(soft.origin == .photoTransparency)
        #expect(soft.thresholded(0.5).editedPixelCount == 4 * 8 + 0)   // half-transparent column 7 is not past 50 %
        #expect(soft.thresholded(0.4).editedPixelCount == 5 * 8)
        #expect(throws: MaskError.noTransparency(source: "opaque.png")) {
            try SoftMask(transparencyOf: Photo(image: greyImage(width: 4, height: 4) { _, _ in 9 }), source: "opaque.png")
        }
        // Colour hidden under transparent pixels does not reach the model.
        let flat = photo.flattened(over: RGBColor(red: 128, green: 128, blue: 128))
        #expect(flat[10, 3] == RGBColor(red: 128, green: 128, blue: 128) && flat[2, 3] == photo.image[2, 3])
    }

    @Test func aPhotoGivenAsAMaskIsNotTwoTone() throws {
        let photo = patternImage(width: 40, height: 30)
        let asMask = try SoftMask(maskImage: Photo(image: photo), photoSize: photo.size)
        #expect(asMask.midToneFraction > 0.2)
        let drawn = try SoftMask(maskImage: Photo(image: greyImage(width: 40, height: 30) { x, _ in x < 10 ? 255 : 0 }), photoSize: photo.size)
        #expect(drawn.midToneFraction == 0)
    }

    @Test func colourProfilesSurviveFromPNGAndJPEGIntoPNG() throws {
        let image = patternImage(width: 24, height: 16)
        let png = try Photo(image: image, colorProfile: profileForTests).encodedPNG()
        let fromPNG = try Photo(encoded: png)
        #expect(fromPNG.colorProfile == profileForTests)
        #expect(fromPNG.image == image)   // the label changes no pixel
        let jpeg = jpegWithProfile(try image.encoded(as: .jpeg), profileForTests)
        let fromJPEG = try Photo(encoded: jpeg)
        #expect(fromJPEG.colorProfile?.data == profileForTests.data)
        #expect(fromJPEG.image == (try RGBImage(encoded: jpeg)))
        let again = try Photo(encoded: fromJPEG.encodedPNG())
        #expect(again.colorProfile?.data == profileForTests.data && again.image == fromJPEG.image)
        // No profile, no chunk; a damaged one is ignored rather than failing the photo.
        #expect(try Photo(encoded: PNGCodec.encode(image)).colorProfile == nil)
        var broken = jpegWithProfile(try image.encoded(as: .jpeg), profileForTests)
        broken[2 + 4 + 13] = 9   // a sequence number outside 1...2
        #expect(try Photo(encoded: broken).colorProfile == nil)
    }

    @Test func regionsParseAndResolve() throws {
        #expect(EditRegion("auto") == .auto && EditRegion("FULL") == .full)
        #expect(EditRegion("10,20,30,40") == .box(PixelBox(x: 10, y: 20, width: 30, height: 40)))
        for bad in ["", "1,2,3", "1,2,0,4", "-1,2,3,4", "a,b,c,d", "1,2,3,4,5"] { #expect(EditRegion(bad) == nil, "\(bad)") }
        let photo = ImageSize(width: 400, height: 300)
        func mask(_ box: PixelBox) -> EditMask {
            try! EditMask(width: 400, height: 300, isEdited: (0..<120_000).map { box.contains(x: $0 % 400, y: $0 / 400) })
        }
        // A small object: its box, a quarter of its side as margin (at least 8), square, and
        // at least the model's size.
        let small = mask(PixelBox(x: 200, y: 100, width: 40, height: 20))
        #expect(try EditRegion.auto.resolve(mask: small, photo: photo, minimumSide: 16) == PixelBox(x: 190, y: 80, width: 60, height: 60))
        #expect(try EditRegion.auto.resolve(mask: small, photo: photo, padding: 0, minimumSide: 16) == PixelBox(x: 200, y: 90, width: 40, height: 40))
        #expect(try EditRegion.auto.resolve(mask: small, photo: photo, minimumSide: 256) == PixelBox(x: 92, y: 0, width: 256, height: 256))
        // Near a corner: shifted inside the photo.
        let corner = mask(PixelBox(x: 390, y: 0, width: 10, height: 10))
        #expect(try EditRegion.auto.resolve(mask: corner, photo: photo, minimumSide: 16) == PixelBox(x: 374, y: 0, width: 26, height: 26))
        // Covering most of a non-square photo: the square is cut to the photo's height.
        let most = mask(PixelBox(x: 10, y: 10, width: 380, height: 280))
        #expect(try EditRegion.auto.resolve(mask: most, photo: photo, minimumSide: 256) == PixelBox(x: 0, y: 0, width: 400, height: 300))
        #expect(try EditRegion.full.resolve(mask: small, photo: photo) == PixelBox(x: 0, y: 0, width: 400, height: 300))
        let box = PixelBox(x: 100, y: 50, width: 200, height: 200)
        #expect(try EditRegion.box(box).resolve(mask: small, photo: photo) == box)
        #expect(throws: MaskError.self) { try EditRegion.box(PixelBox(x: 300, y: 0, width: 200, height: 10)).resolve(mask: small, photo: photo) }
        #expect(throws: MaskError.self) { try EditRegion.auto.resolve(mask: mask(PixelBox(x: 0, y: 0, width: 0, height: 0)), photo: photo) }
        // Codable as the command-line text.
        let json = try JSONEncoder().encode([EditRegion.box(box), .auto])
        #expect(String(decoding: json, as: UTF8.self) == #"["100,50,200,200","auto"]"#)
        #expect(try JSONDecoder().decode([EditRegion].self, from: json) == [.box(box), .auto])
    }

    @Test func featherWeightsStayInsideTheMask() throws {
        let mask = try EditMask(width: 30, height: 20, isEdited: (0..<600).map { (5..<25).contains($0 % 30) && $0 / 30 < 15 })
        let hard = pasteWeights(mask: mask, feather: 0)
        #expect(hard == mask.isEdited.map { $0 ? 1 : 0 })
        let soft = pasteWeights(mask: mask, feather: 3)
        for i in 0..<600 {
            if mask.isEdited[i] { #expect(soft[i] > 0 && soft[i] <= 1) } else { #expect(soft[i] == 0) }
        }
        // Full weight from `feather` pixels inside the edge; less at the edge. The photo's
        // border (the mask touches the top) is no edge.
        #expect(soft[5 * 30 + 15] == 1 && soft[0 * 30 + 15] == 1)
        #expect(soft[5 * 30 + 5] < soft[5 * 30 + 6] && soft[5 * 30 + 6] < soft[5 * 30 + 8])
        #expect(soft[14 * 30 + 15] < 0.5)
        // A soft mask's own ramp lowers the weight where the brush was faint.
        let values: [UInt8] = (0..<600).map { mask.isEdited[$0] ? ($0 % 30 < 10 ? 160 : 255) : 0 }
        let brush = try SoftMask(width: 30, height: 20, values: values)
        let ramped = pasteWeights(mask: brush.thresholded(0.5), soft: brush, threshold: 0.5, feather: 0)
        #expect(abs(ramped[5 * 30 + 7] - (160 / 255 - 0.5) / 0.4) < 1e-5 && ramped[5 * 30 + 15] == 1)
    }

    @Test func pasteKeepsThePhotosPixelsAndAlphaOutsideTheWeights() throws {
        let png = try rgbaPNG(width: 16, height: 12, color: { x, y in [UInt8(x * 15), UInt8(y * 20), 99] },
                              alpha: { x, y in UInt8(100 + x + y) })
        let photo = try Photo(encoded: png)
        var withProfile = photo
        withProfile.colorProfile = profileForTests
        let mask = try EditMask(width: 16, height: 12, isEdited: (0..<192).map { (4..<12).contains($0 % 16) && (2..<10).contains($0 / 16) })
        let weights = pasteWeights(mask: mask, feather: 2)
        let edit = try RGBImage(width: 8, height: 8, filledWith: RGBColor(red: 255, green: 0, blue: 0))
        let result = try pasteEdit(edit, into: withProfile, region: PixelBox(x: 4, y: 2, width: 8, height: 8), weights: weights)
        #expect(result.colorProfile == profileForTests)
        for i in 0..<192 where !mask.isEdited[i] {
            #expect(result.image.pixels[3 * i..<3 * i + 3] == photo.image.pixels[3 * i..<3 * i + 3])
            #expect(result.alpha?[i] == photo.alpha?[i])
        }
        // The centre takes the whole edit, made opaque.
        let centre = 6 * 16 + 8
        #expect(result.image[8, 6] == RGBColor(red: 255, green: 0, blue: 0) && result.alpha?[centre] == 255)
        // Through a PNG and back, alpha included.
        let decoded = try Photo(encoded: result.encodedPNG())
        #expect(decoded == result)
        #expect(throws: MaskError.self) { try pasteEdit(edit, into: photo, region: PixelBox(x: 10, y: 0, width: 8, height: 8), weights: weights) }
        #expect(throws: MaskError.self) { try pasteEdit(edit, into: photo, region: PixelBox(x: 0, y: 0, width: 8, height: 8), weights: [1]) }
    }
}
