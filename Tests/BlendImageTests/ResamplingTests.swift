import Testing
@testable import BlendImage
import BlendTensor

@Suite struct ResamplingTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var source: ImageSize
        var target: ImageSize
        var testDescription: String { "\(source) -> \(target)" }
    }

    static let cases: [Case] = [
        Case(source: ImageSize(width: 40, height: 30), target: ImageSize(width: 16, height: 12)),
        Case(source: ImageSize(width: 16, height: 12), target: ImageSize(width: 40, height: 30)),
        Case(source: ImageSize(width: 40, height: 30), target: ImageSize(width: 23, height: 45)),
        Case(source: ImageSize(width: 40, height: 30), target: ImageSize(width: 40, height: 17)),
        Case(source: ImageSize(width: 16, height: 12), target: ImageSize(width: 7, height: 12)),
    ]

    func source(_ size: ImageSize) throws -> RGBImage {
        try RGBImage(width: size.width, height: size.height, pixels: fixtureBytes("resample/src_\(size).rgb"))
    }

    /// Pillow's `Image.resize(size, Image.LANCZOS)` (Resample.c), byte for byte.
    @Test(arguments: cases)
    func lanczosMatchesPillow(_ c: Case) throws {
        let out = try source(c.source).resizedLanczos(width: c.target.width, height: c.target.height)
        let expected = try fixtureBytes("resample/lanczos_\(c.source)_to_\(c.target).rgb")
        #expect(out.size == c.target)
        let worst = maxDifference(out.pixels, expected)
        #expect(worst <= 1, "worst difference \(worst)")
        #expect(out.pixels == expected, "\(zip(out.pixels, expected).filter { $0 != $1 }.count) bytes differ")
    }

    /// Pillow's `Image.resize(size, Image.NEAREST)`, byte for byte.
    @Test(arguments: cases)
    func nearestMatchesPillow(_ c: Case) throws {
        let out = try source(c.source).resizedNearest(width: c.target.width, height: c.target.height)
        #expect(out.pixels == (try fixtureBytes("resample/nearest_\(c.source)_to_\(c.target).rgb")))
    }

    @Test func nearestIndicesUsePixelCentres() {
        #expect(pillowNearestIndices(input: 4, output: 2) == [1, 3])
        #expect(pillowNearestIndices(input: 2, output: 4) == [0, 0, 1, 1])
        #expect(pillowNearestIndices(input: 512, output: 256) == (0..<256).map { 2 * $0 + 1 })
        #expect(pillowNearestIndices(input: 5, output: 5) == [0, 1, 2, 3, 4])
    }

    @Test func sameSizeIsIdentity() throws {
        let image = patternImage(width: 9, height: 7)
        #expect(try image.resizedLanczos(width: 9, height: 7) == image)
        #expect(try image.resizedNearest(width: 9, height: 7) == image)
    }

    @Test func constantImagesStayConstant() throws {
        let grey = try RGBImage(width: 31, height: 17, filledWith: RGBColor(red: 200, green: 17, blue: 99))
        for (w, h) in [(256, 256), (5, 3), (31, 40), (97, 61)] {
            let out = try grey.resizedLanczos(width: w, height: h)
            #expect(Set(stride(from: 0, to: out.pixels.count, by: 3).map { out[($0 / 3) % w, ($0 / 3) / w] }) == [grey[0, 0]])
        }
    }

    @Test func badSizesThrow() {
        let image = patternImage(width: 4, height: 4)
        #expect(throws: ImageError.invalidSize(width: 0, height: 4, context: "resizedLanczos")) {
            try image.resizedLanczos(width: 0, height: 4)
        }
        #expect(throws: ImageError.invalidSize(width: 3, height: -1, context: "resizedNearest")) {
            try image.resizedNearest(width: 3, height: -1)
        }
    }
}
