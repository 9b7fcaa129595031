import Foundation
import Testing
@testable import BlendImage

@Suite struct PNGDecodingTests {
    /// 8x6 PNGs written by Pillow (and by hand for 16-bit colour) and the RGB bytes expected:
    /// Pillow's convert("RGB") for 8-bit and below, round(v · 255 / 65535) for 16-bit.
    /// gamma-linear has a gAMA chunk of 1.0, which Pillow (and so blend) ignores.
    @Test(arguments: ["rgb8", "rgba8", "grey8", "grey-alpha8", "grey1", "palette", "palette-trns", "gamma-linear"])
    func matchesPillow(name: String) throws {
        let image = try RGBImage(contentsOf: fixturePath("png/\(name).png"))
        #expect(image.size == ImageSize(width: 8, height: 6))
        #expect(image.pixels == (try fixtureBytes("png/\(name).rgb")), "\(name)")
    }

    @Test(arguments: ["grey16", "rgb16", "rgba16"])
    func sixteenBitIsScaledToEightBits(name: String) throws {
        let image = try RGBImage(contentsOf: fixturePath("png/\(name).png"))
        #expect(image.size == ImageSize(width: 8, height: 6))
        // round(v · 255 / 65535) exactly: scaled, not gamma-converted (which would differ by up to ~60).
        #expect(image.pixels == (try fixtureBytes("png/\(name).rgb")), "\(name)")
        if name == "rgb16" {
            // 0, 65535 and exact multiples of 257 map exactly.
            #expect(Array(image.pixels[0..<9]) == [0, 0, 0, 255, 255, 255, 1, 2, 128])
        }
    }

    @Test func alphaCanBeCompositedOverAColour() throws {
        let dropped = try RGBImage(contentsOf: fixturePath("png/rgba8.png"))
        let onWhite = try RGBImage(contentsOf: fixturePath("png/rgba8.png"), alpha: .composite(over: .white))
        // The fixture's alpha cycles 0, 64, 128, 255 over pixels in row-major order.
        let alphas = [0, 64, 128, 255]
        for i in 0..<48 {
            let a = alphas[i % 4]
            for c in 0..<3 {
                let expected = (Int(dropped.pixels[3 * i + c]) * a + 255 * (255 - a) + 127) / 255
                #expect(Int(onWhite.pixels[3 * i + c]) == expected)
            }
        }
        #expect(onWhite[0, 0] == .white)   // fully transparent
        #expect(onWhite[3, 0] == dropped[3, 0])   // opaque
        // An image without alpha is unaffected.
        let rgb = try RGBImage(contentsOf: fixturePath("png/rgb8.png"), alpha: .composite(over: .black))
        #expect(rgb.pixels == (try fixtureBytes("png/rgb8.rgb")))
    }
}

@Suite struct JPEGDecodingTests {
    /// Pillow decodes with libjpeg(-turbo) too; the same accurate DCT and fancy upsampling give
    /// (nearly) the same bytes. CMYK goes through Pillow's Adobe-convention conversion.
    @Test(arguments: ["rgb", "grey", "cmyk", "progressive"])
    func matchesPillow(name: String) throws {
        let image = try RGBImage(contentsOf: fixturePath("jpeg/\(name).jpg"))
        #expect(image.size == ImageSize(width: 20, height: 14))
        // Identical with Debian 12's libjpeg-turbo 2.1.5; a different libjpeg build may round a few
        // samples differently.
        #expect(maxDifference(image.pixels, try fixtureBytes("jpeg/\(name).rgb")) <= 1, "\(name)")
    }

    @Test func greyscaleHasEqualChannels() throws {
        let image = try RGBImage(contentsOf: fixturePath("jpeg/grey.jpg"))
        for i in 0..<image.width * image.height {
            #expect(image.pixels[3 * i] == image.pixels[3 * i + 1] && image.pixels[3 * i] == image.pixels[3 * i + 2])
        }
    }

    @Test func cmykConversionFollowsPillow() {
        // Stored (inverted) values: 255 = no ink. No ink anywhere is white; full black ink is black.
        #expect(JPEGCodec.rgbFromAdobeCMYK([255, 255, 255, 255]) == [255, 255, 255])
        #expect(JPEGCodec.rgbFromAdobeCMYK([255, 255, 255, 0]) == [0, 0, 0])
        // Full cyan ink, no black: red off, green and blue on.
        #expect(JPEGCodec.rgbFromAdobeCMYK([0, 255, 255, 255]) == [0, 255, 255])
        // Half inks: (255 - 127)·(128)/255 subtracted from 128 ≈ 64.
        #expect(JPEGCodec.rgbFromAdobeCMYK([128, 128, 128, 128]) == [64, 64, 64])
    }
}

@Suite struct RoundTripTests {
    @Test func pngIsLossless() throws {
        let image = patternImage(width: 37, height: 23)
        let bytes = try image.encoded(as: .png)
        #expect(ImageFormat.detect(bytes) == .png)
        #expect(try RGBImage(encoded: bytes) == image)
    }

    @Test func pngFileRoundTrip() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let image = patternImage(width: 64, height: 40, seed: 7)
        try image.write(to: dir + "/out.png")
        #expect(try RGBImage(contentsOf: dir + "/out.png") == image)
        #expect(directoryListing(dir) == ["out.png"])   // no temporary file left over
    }

    @Test func jpegRoundTripIsClose() throws {
        // Smooth content: JPEG's error on it is small at high quality.
        var pixels: [UInt8] = []
        for y in 0..<48 {
            for x in 0..<64 { pixels += [UInt8(x * 4), UInt8(y * 5), UInt8((x + y) * 2)] }
        }
        let image = try RGBImage(width: 64, height: 48, pixels: pixels)
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for name in ["out.jpg", "out.JPEG"] {
            try image.write(to: dir + "/" + name, jpegQuality: 95)
            let decoded = try RGBImage(contentsOf: dir + "/" + name)
            #expect(decoded.size == image.size)
            let meanError = Double(zip(decoded.pixels, image.pixels).map { abs(Int($0) - Int($1)) }.reduce(0, +)) / Double(image.pixels.count)
            #expect(meanError < 2, "\(name): mean error \(meanError)")
            #expect(maxDifference(decoded.pixels, image.pixels) <= 16)
        }
        // Lower quality is smaller.
        #expect(try image.encoded(as: .jpeg, jpegQuality: 20).count < image.encoded(as: .jpeg, jpegQuality: 95).count)
    }

    @Test func formatIsDetectedByContentNotName() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let image = patternImage(width: 8, height: 8)
        let png = try image.encoded(as: .png)
        try Data(png).write(to: URL(fileURLWithPath: dir + "/really-a-png.jpg"))
        #expect(try RGBImage(contentsOf: dir + "/really-a-png.jpg") == image)
    }

    @Test func outputFormatComesFromTheExtension() throws {
        #expect(try ImageFormat(outputPath: "a/b.png") == .png)
        #expect(try ImageFormat(outputPath: "B.PNG") == .png)
        #expect(try ImageFormat(outputPath: "x.jpg") == .jpeg)
        #expect(try ImageFormat(outputPath: "/tmp/x.y.jpeg") == .jpeg)
        for path in ["out.gif", "out", "dir.png/out", ".png", "out.webp", "out.png.txt"] {
            #expect(throws: ImageError.unsupportedOutputExtension(path: path), "\(path)") { try ImageFormat(outputPath: path) }
        }
        let message = String(describing: ImageError.unsupportedOutputExtension(path: "out.gif"))
        #expect(message.contains("out.gif") && message.contains(".png") && message.contains(".jpg"))
    }

    @Test func badJPEGQualityIsRejected() throws {
        let image = patternImage(width: 8, height: 8)
        for quality in [0, 101, -5] {
            #expect(throws: ImageError.invalidJPEGQuality(quality)) { try image.encoded(as: .jpeg, jpegQuality: quality) }
        }
        #expect(String(describing: ImageError.invalidJPEGQuality(0)).contains("1 (smallest) to 100"))
    }

    @Test func invalidImagesAreRejected() {
        #expect(throws: ImageError.self) { try RGBImage(width: 0, height: 5, pixels: []) }
        #expect(throws: ImageError.pixelCountMismatch(width: 2, height: 2, byteCount: 11)) {
            try RGBImage(width: 2, height: 2, pixels: [UInt8](repeating: 0, count: 11))
        }
        #expect(throws: ImageError.self) { try RGBImage(width: 100_000, height: 100_000, filledWith: .black) }
    }
}
