import Foundation
import Testing
@testable import BlendImage

@Suite struct ContactSheetTests {
    func sheet() throws -> ContactSheet {
        let source = patternImage(width: 60, height: 40)
        let mask = try EditMask(width: 60, height: 40, isEdited: (0..<2400).map { $0 % 60 > 30 })
        let results = [(patternImage(width: 32, height: 32, seed: 2), Float(0.7123)),
                       (patternImage(width: 32, height: 32, seed: 3), Float(0.80004))]
        return ContactSheet(source: source, mask: mask, results: results.map { (image: $0.0, score: $0.1) }, tileHeight: 48)
    }

    @Test func layoutAndCaptions() throws {
        let s = try sheet()
        #expect(s.panels.map(\.caption) == ["source", "mask", "#1 0.7123", "#2 0.8000"])
        let image = try s.render()
        // Tiles 72, 72, 48, 48 wide (48 high) with 8 px padding; caption row 14 px.
        #expect(image.width == 8 + (72 + 8) * 2 + (48 + 8) * 2)
        #expect(image.height == 8 + 48 + 4 + 14 + 8)
        #expect(image[0, 0] == .white)
        // The mask tile: black left part, white right part.
        #expect(image[8 + 80 + 4, 8 + 20] == .black)
        #expect(image[8 + 80 + 70, 8 + 20] == .white)
        // Some caption ink under every tile, none in the right margin.
        let textTop = 8 + 48 + 4
        for (left, width) in [(8, 72), (88, 72), (168, 48), (224, 48)] {
            let ink = (textTop..<textTop + 14).flatMap { y in (left..<left + width).map { image[$0, y] } }.filter { $0 == .black }
            #expect(!ink.isEmpty)
        }
    }

    @Test func renderingIsDeterministic() throws {
        let a = try sheet().render(), b = try sheet().render()
        #expect(a == b)
        #expect(try a.encoded(as: .png) == b.encoded(as: .png))
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try sheet().write(to: dir + "/sheet.png")
        #expect(try RGBImage(contentsOf: dir + "/sheet.png") == a)
    }

    @Test func glyphsAreDrawnFromTheFontTable() throws {
        var canvas = try RGBImage(width: 12, height: 7, filledWith: .white)
        canvas.drawText("1.", atX: 0, y: 0, scale: 1, color: .black, clipWidth: 12)
        let ink = (0..<7).map { y in String((0..<12).map { canvas[$0, y] == .black ? "#" : "." }) }
        #expect(ink == [
            "..#.........",
            ".##.........",
            "..#.........",
            "..#.........",
            "..#.........",
            "..#....##...",
            ".###...##...",
        ])
    }

    @Test func fontCoversCaptionCharacters() {
        let required = "0123456789.#-_:/()%+=?! abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
        for character in required {
            #expect(BitmapFont.glyphs[character] != nil, "missing '\(character)'")
        }
        for (character, rows) in BitmapFont.glyphs {
            #expect(rows.count == 7 && rows.allSatisfy { $0 < 32 }, "'\(character)'")
            #expect(character == " " || rows.contains { $0 != 0 }, "'\(character)' is blank")
        }
        // Unknown characters draw as '?'.
        #expect(BitmapFont.glyph("€") == BitmapFont.glyph("?"))
    }

    @Test func scoresHaveFourDecimals() {
        #expect(ContactSheet.format(0.7123) == "0.7123")
        #expect(ContactSheet.format(0.5) == "0.5000")
        #expect(ContactSheet.format(1.23456) == "1.2346")
        #expect(ContactSheet.format(-0.01) == "-0.0100")
        #expect(ContactSheet.format(.nan) == "nan")
    }

    @Test func emptySheetThrows() {
        #expect(throws: ImageError.self) { try ContactSheet(panels: []).render() }
    }
}
