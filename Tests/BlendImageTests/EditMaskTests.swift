import Foundation
import Testing
@testable import BlendImage

@Suite struct EditMaskTests {
    /// A 4x2 mask image exercising the reference's rule: only the red channel counts, and
    /// any non-zero value is "edit".
    func maskImage() throws -> RGBImage {
        try RGBImage(width: 4, height: 2, pixels: [
            0, 0, 0,   1, 0, 0,   255, 255, 255,   0, 255, 255,
            128, 0, 0,   0, 0, 9,   3, 3, 3,   0, 0, 0,
        ])
    }

    @Test func binarisesTheRedChannelLikeTheReference() throws {
        let mask = try EditMask(image: maskImage())
        #expect(mask.isEdited == [false, true, true, false, true, false, true, false])
        #expect(mask.editedPixelCount == 4)
        let tensor = try mask.tensor()
        #expect(tensor.shape == [1, 1, 2, 4])
        #expect(tensor.scalars == [0, 1, 1, 0, 1, 0, 1, 0])
    }

    @Test func inversion() throws {
        let inverted = try EditMask(image: maskImage(), inverted: true)
        #expect(inverted.isEdited == [true, false, false, true, false, true, false, true])
        #expect(try EditMask(image: maskImage()).inverted() == inverted)
    }

    @Test func resizesWithPillowsNearest() throws {
        // 4x2 → 8x4 doubles every pixel; 4x2 → 2x1 takes columns 1 and 3 of row 1.
        let mask = try EditMask(image: maskImage(), size: ImageSize(width: 8, height: 4))
        #expect(mask.size == ImageSize(width: 8, height: 4))
        #expect(Array(mask.isEdited[0..<8]) == [false, false, true, true, true, true, false, false])
        let small = try EditMask(image: maskImage(), size: ImageSize(width: 2, height: 1))
        #expect(small.isEdited == [false, false])
        #expect(try EditMask(image: maskImage()).resized(to: ImageSize(width: 8, height: 4)) == mask)
    }

    @Test func loadsFromFilesOfAnyFormat() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try maskImage().write(to: dir + "/mask.png")
        let mask = try EditMask(contentsOf: dir + "/mask.png", size: ImageSize(width: 4, height: 2))
        #expect(mask == (try EditMask(image: maskImage(), source: dir + "/mask.png")))
        // A grey-with-alpha PNG: alpha is dropped, grey > 0 is edited.
        let greyAlpha = try EditMask(contentsOf: fixturePath("png/grey-alpha8.png"))
        let grey = try RGBImage(contentsOf: fixturePath("png/grey8.png"))
        #expect(greyAlpha.isEdited == (0..<48).map { grey.pixels[3 * $0] > 0 })
        #expect(throws: ImageError.fileNotFound(path: dir + "/none.png")) { try EditMask(contentsOf: dir + "/none.png") }
    }

    @Test func emptyAndFullMasksAreReported() throws {
        let black = try RGBImage(width: 3, height: 3, filledWith: .black)
        let empty = try EditMask(image: black, source: "m.png")
        #expect(throws: MaskError.empty(source: "m.png")) { try empty.requireEditedRegion() }
        try empty.requireBackground()
        let full = try EditMask(image: black, inverted: true, source: "m.png")
        #expect(throws: MaskError.full(source: "m.png")) { try full.requireBackground() }
        try full.requireEditedRegion()
        #expect(String(describing: MaskError.empty(source: "m.png")).contains("no pixel"))
        #expect(String(describing: MaskError.full(source: "m.png")).contains("every pixel"))
        // A mask painted in pure green is empty: only red counts, as in the reference.
        let green = try RGBImage(width: 2, height: 2, filledWith: RGBColor(red: 0, green: 255, blue: 0))
        #expect(throws: MaskError.self) { try EditMask(image: green).requireEditedRegion() }
    }

    @Test func aspectRatioCheck() throws {
        func size(_ w: Int, _ h: Int) -> ImageSize { ImageSize(width: w, height: h) }
        // Same shape at another scale is fine, including rounding to whole pixels.
        try EditMask.checkAspectRatio(mask: size(512, 512), image: size(256, 256))
        try EditMask.checkAspectRatio(mask: size(256, 161), image: size(97, 61))
        try EditMask.checkAspectRatio(mask: size(97, 61), image: size(97, 61))
        try EditMask.checkAspectRatio(mask: size(1000, 667), image: size(3000, 2000))
        // Another shape is not.
        #expect(throws: MaskError.aspectMismatch(mask: size(300, 200), image: size(200, 300))) {
            try EditMask.checkAspectRatio(mask: size(300, 200), image: size(200, 300))
        }
        #expect(throws: MaskError.self) { try EditMask.checkAspectRatio(mask: size(256, 256), image: size(97, 61)) }
        #expect(throws: MaskError.self) { try EditMask.checkAspectRatio(mask: size(100, 90), image: size(100, 100)) }
        let message = String(describing: MaskError.aspectMismatch(mask: size(300, 200), image: size(200, 300)))
        #expect(message.contains("300x200") && message.contains("200x300"))
    }

    @Test func badValuesThrow() {
        #expect(throws: ImageError.self) { try EditMask(width: 2, height: 2, isEdited: [true]) }
        #expect(throws: ImageError.self) { try EditMask(width: 0, height: 2, isEdited: []) }
    }
}
