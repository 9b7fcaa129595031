import Foundation
import Testing
@testable import BlendImage

/// Sizes declared by a file's header are checked before anything is allocated, and a JPEG
/// whose data stops short of its declared size is damaged, not padded with grey.
@Suite struct DecodingLimitTests {
    private func bigEndian32(_ v: Int) -> [UInt8] { [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: v >> $0) } }
    private func crc32<C: Collection<UInt8>>(_ bytes: C) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    /// A PNG of a 4x4 pattern whose IHDR declares `width` x `height`.
    private func png(declaring width: Int, _ height: Int) throws -> [UInt8] {
        var png = try patternImage(width: 4, height: 4).encoded(as: .png)
        png.replaceSubrange(16..<24, with: bigEndian32(width) + bigEndian32(height))
        png.replaceSubrange(29..<33, with: bigEndian32(Int(crc32(png[12..<29]))))
        return png
    }

    /// A JPEG of `width` x `height` whose baseline frame header then declares `declared`.
    private func jpeg(_ width: Int, _ height: Int, declaring declared: (Int, Int)) throws -> [UInt8] {
        var jpeg = try patternImage(width: width, height: height).encoded(as: .jpeg, jpegQuality: 90)
        let sof = try #require((0..<jpeg.count - 1).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 })
        jpeg.replaceSubrange(sof + 5..<sof + 9, with: [UInt8(declared.1 >> 8), UInt8(declared.1 & 0xFF), UInt8(declared.0 >> 8), UInt8(declared.0 & 0xFF)])
        return jpeg
    }

    @Test func thePixelLimitIsTheCallersAndDefaultsTo100Megapixels() throws {
        #expect(ImageSize.defaultMaximumDecodedPixels == 100_000_000)
        for format in [ImageFormat.png, .jpeg] {
            let bytes = try patternImage(width: 64, height: 64).encoded(as: format)
            #expect(try RGBImage(encoded: bytes, maximumPixels: 4096).size == ImageSize(width: 64, height: 64))
            #expect(throws: ImageError.exceedsPixelLimit(source: "a", width: 64, height: 64, limit: 4095)) {
                try RGBImage(encoded: bytes, source: "a", maximumPixels: 4095)
            }
        }
        // 12,000 x 9,000 (108 MP) is under the hard ceiling but over the default limit.
        #expect(throws: ImageError.exceedsPixelLimit(source: "big.png", width: 12_000, height: 9_000, limit: 100_000_000)) {
            try RGBImage(encoded: png(declaring: 12_000, 9_000), source: "big.png")
        }
        let message = ImageError.exceedsPixelLimit(source: "big.png", width: 12_000, height: 9_000, limit: 100_000_000).description
        #expect(message.contains("108.0 megapixels") && message.contains("limit of 100.0") && message.contains("--max-megapixels"))
    }

    @Test func headersClaimingMorePixelsThanTheDataCanHoldAreDamaged() throws {
        // 9,000 x 9,000 from a PNG of a hundred bytes: even 1-bit pixels need 9.8 KB compressed.
        do {
            _ = try RGBImage(encoded: png(declaring: 9_000, 9_000), source: "lie.png")
            Issue.record("accepted")
        } catch let ImageError.corrupt(source, format, detail) {
            #expect(source == "lie.png" && format == .png && detail.contains("more than its"))
        }
        // 8,000 x 8,000 from a JPEG of a few hundred bytes: a million blocks need 125 KB at least.
        do {
            _ = try RGBImage(encoded: jpeg(16, 16, declaring: (8_000, 8_000)), source: "lie.jpg")
            Issue.record("accepted")
        } catch let ImageError.corrupt(source, format, detail) {
            #expect(source == "lie.jpg" && format == .jpeg && detail.contains("more than its"))
        }
    }

    @Test func aJPEGWhoseScanStopsShortIsDamagedNotPadded() throws {
        // The data holds 48 rows; the header says 96. libjpeg would fill the rest with grey.
        do {
            _ = try RGBImage(encoded: jpeg(48, 48, declaring: (48, 96)), source: "short.jpg")
            Issue.record("accepted a JPEG padded with grey")
        } catch let ImageError.corrupt(source, format, detail) {
            #expect(source == "short.jpg" && format == .jpeg && detail.contains("ends before all 48x96 pixels"))
        }
        // The same file with its true size decodes.
        #expect(try RGBImage(encoded: jpeg(48, 48, declaring: (48, 48))).size == ImageSize(width: 48, height: 48))
    }
}
