import Testing
@testable import BlendImage

@Suite struct PasteBackTests {
    @Test func outsideTheMaskIsTheOriginalBitForBit() throws {
        let original = patternImage(width: 97, height: 61, seed: 3)
        // An ellipse in the middle, drawn at full resolution.
        let mask = try EditMask(width: 97, height: 61, isEdited: (0..<97 * 61).map { i in
            let x = Double(i % 97) - 48, y = Double(i / 97) - 30
            return x * x / 900 + y * y / 400 <= 1
        })
        let edit = try RGBImage(width: 256, height: 256, filledWith: RGBColor(red: 10, green: 200, blue: 30))
        let pasted = try pasteEdit(edit, into: original, mask: mask)
        #expect(pasted.size == original.size)
        var changed = 0
        for (i, edited) in mask.isEdited.enumerated() {
            let got = Array(pasted.pixels[3 * i..<3 * i + 3]), old = Array(original.pixels[3 * i..<3 * i + 3])
            if edited {
                // A constant edit upscales to the same constant.
                #expect(got == [10, 200, 30])
                if got != old { changed += 1 }
            } else {
                #expect(got == old)
            }
        }
        #expect(changed == mask.editedPixelCount)
    }

    @Test func insideTheMaskIsTheLanczosUpscaledEdit() throws {
        let original = patternImage(width: 40, height: 30, seed: 4)
        let edit = patternImage(width: 16, height: 16, seed: 5)
        let mask = try EditMask(width: 40, height: 30, isEdited: (0..<1200).map { $0 % 40 >= 20 })
        let pasted = try pasteEdit(edit, into: original, mask: mask)
        let upscaled = try edit.resizedLanczos(width: 40, height: 30)
        for y in 0..<30 {
            for x in 0..<40 { #expect(pasted[x, y] == (x >= 20 ? upscaled[x, y] : original[x, y])) }
        }
    }

    @Test func maskMustBeAtTheOriginalsSize() throws {
        let original = patternImage(width: 97, height: 61)
        let small = try EditMask(image: RGBImage(width: 256, height: 161, filledWith: .white))
        #expect(throws: MaskError.sizeMismatch(mask: small.size, expected: original.size, operation: "pasteEdit")) {
            try pasteEdit(original, into: original, mask: small)
        }
        // The fix the message suggests works.
        let fitted = try EditMask(image: RGBImage(width: 256, height: 161, filledWith: .white), size: original.size)
        #expect(try pasteEdit(original, into: original, mask: fitted) == original)
    }
}
