import Testing
@testable import BlendImage

@Suite struct ExifOrientationTests {
    /// The fixtures store a 24x16 upright scene (red | grey | green over blue | grey | white,
    /// in 8x8 blocks) transformed the way a camera would for each orientation, with the tag
    /// in alternating TIFF byte orders. Loading must give the upright scene back.
    @Test(arguments: 2...8)
    func fixturesComeOutUpright(value: Int) throws {
        let path = fixturePath("jpeg/orientation-\(value).jpg")
        let image = try RGBImage(contentsOf: path)
        #expect(image.size == ImageSize(width: 24, height: 16), "orientation \(value)")
        let expected: [(x: Int, y: Int, color: RGBColor)] = [
            (3, 3, RGBColor(red: 255, green: 0, blue: 0)),
            (20, 3, RGBColor(red: 0, green: 255, blue: 0)),
            (3, 12, RGBColor(red: 0, green: 0, blue: 255)),
            (20, 12, .white),
            (12, 8, RGBColor(grey: 128)),
        ]
        for (x, y, color) in expected {
            let got = image[x, y]
            let error = max(abs(Int(got.red) - Int(color.red)), abs(Int(got.green) - Int(color.green)), abs(Int(got.blue) - Int(color.blue)))
            #expect(error < 24, "orientation \(value) at (\(x), \(y)): \(got), expected \(color)")
        }
        // Read as stored, the sides are swapped for 5...8.
        let stored = try RGBImage(contentsOf: path, appliesExifOrientation: false)
        #expect(stored.size == (value >= 5 ? ImageSize(width: 16, height: 24) : ImageSize(width: 24, height: 16)))
    }

    /// An APP1 payload with IFD0 holding a few entries, the orientation not first.
    func payload(_ value: Int, bigEndian: Bool, type: Int = 3) -> [UInt8] {
        func u16(_ v: Int) -> [UInt8] { bigEndian ? [UInt8(v >> 8), UInt8(v & 0xFF)] : [UInt8(v & 0xFF), UInt8(v >> 8)] }
        func u32(_ v: Int) -> [UInt8] { bigEndian ? u16(v >> 16) + u16(v & 0xFFFF) : u16(v & 0xFFFF) + u16(v >> 16) }
        let value = type == 3 ? u16(value) + [0, 0] : u32(value)
        var tiff: [UInt8] = (bigEndian ? Array("MM".utf8) : Array("II".utf8)) + u16(42) + u32(8)
        tiff += u16(3)
        tiff += u16(0x010F) + u16(2) + u32(4) + Array("Cam\0".utf8)           // Make
        tiff += u16(0x0112) + u16(type) + u32(1) + value                       // Orientation
        tiff += u16(0x011A) + u16(5) + u32(1) + u32(100)                       // XResolution (offset)
        tiff += u32(0)
        return Array("Exif".utf8) + [0, 0] + tiff
    }

    @Test func parsesBothByteOrders() {
        for value in 1...8 {
            #expect(ExifOrientation(exifPayload: payload(value, bigEndian: false))?.rawValue == value)
            #expect(ExifOrientation(exifPayload: payload(value, bigEndian: true))?.rawValue == value)
            #expect(ExifOrientation(exifPayload: payload(value, bigEndian: true, type: 4))?.rawValue == value)
        }
    }

    @Test func damagedExifIsIgnored() {
        let good = payload(6, bigEndian: false)
        #expect(ExifOrientation(exifPayload: payload(0, bigEndian: false)) == nil)
        #expect(ExifOrientation(exifPayload: payload(9, bigEndian: true)) == nil)
        for cut in [0, 4, 8, 12, 20, 30] {
            #expect(ExifOrientation(exifPayload: good.prefix(cut)) == nil, "cut at \(cut)")
        }
        var badOrder = good
        badOrder[6] = UInt8(ascii: "X")
        #expect(ExifOrientation(exifPayload: badOrder) == nil)
        var farOffset = good
        farOffset[10...13] = [0xFF, 0xFF, 0xFF, 0x7F]   // IFD0 offset far past the end
        #expect(ExifOrientation(exifPayload: farOffset) == nil)
        #expect(ExifOrientation(exifPayload: Array("JFIF\0".utf8)) == nil)
    }

    /// Every orientation against Pillow's transpose semantics on a 3x2 image with distinct pixels.
    @Test func transformsMatchPillowsExifTranspose() throws {
        // Pixel value = 10·row + column: [[0, 1, 2], [10, 11, 12]].
        let image = try RGBImage(width: 3, height: 2, pixels: [0, 1, 2, 10, 11, 12].flatMap { [UInt8($0), 0, 0] })
        func rows(_ o: ExifOrientation) -> [[Int]] {
            let out = o.apply(to: image)
            return (0..<out.height).map { y in (0..<out.width).map { x in Int(out[x, y].red) } }
        }
        #expect(rows(.upright) == [[0, 1, 2], [10, 11, 12]])
        #expect(rows(.flipHorizontal) == [[2, 1, 0], [12, 11, 10]])
        #expect(rows(.rotate180) == [[12, 11, 10], [2, 1, 0]])
        #expect(rows(.flipVertical) == [[10, 11, 12], [0, 1, 2]])
        #expect(rows(.transpose) == [[0, 10], [1, 11], [2, 12]])
        #expect(rows(.rotate90Clockwise) == [[10, 0], [11, 1], [12, 2]])
        #expect(rows(.transverse) == [[12, 2], [11, 1], [10, 0]])
        #expect(rows(.rotate90CounterClockwise) == [[2, 12], [1, 11], [0, 10]])
    }

    @Test func jpegStructureFindsExifAndEnd() throws {
        let bytes = try fixtureBytes("jpeg/orientation-6.jpg")
        let structure = JPEGStructure(bytes)
        #expect(!structure.isTruncated)
        #expect(structure.exif.map { ExifOrientation(exifPayload: $0) } == .rotate90Clockwise)
        #expect(JPEGStructure(Array(bytes.prefix(bytes.count - 2))).isTruncated)
        #expect(JPEGStructure(Array(bytes.prefix(bytes.count / 2))).isTruncated)
        #expect(!JPEGStructure(try fixtureBytes("jpeg/progressive.jpg")).isTruncated)
        #expect(JPEGStructure(try fixtureBytes("jpeg/rgb.jpg")).exif == nil)
    }
}
