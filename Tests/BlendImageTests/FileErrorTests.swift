import Foundation
import Testing
@testable import BlendImage

/// Every bad input is a clear, typed error: no crash, and no file left half-written.
@Suite struct FileErrorTests {
    func withDirectory(_ body: (String) throws -> Void) throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try body(dir)
    }

    func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    @Test func missingFile() throws {
        try withDirectory { dir in
            let path = dir + "/nope.png"
            #expect(throws: ImageError.fileNotFound(path: path)) { try RGBImage(contentsOf: path) }
            #expect(String(describing: ImageError.fileNotFound(path: path)).contains("no such file"))
            #expect(throws: ImageError.fileNotFound(path: dir + "/no-dir/x.png")) { try RGBImage(contentsOf: dir + "/no-dir/x.png") }
        }
    }

    @Test func directoryInsteadOfFile() throws {
        try withDirectory { dir in
            #expect(throws: ImageError.unreadableFile(path: dir, reason: "it is a directory")) { try RGBImage(contentsOf: dir) }
        }
    }

    /// Permission bits do not stop root, so this runs only as an ordinary user.
    @Test(.enabled(if: geteuid() != 0)) func unreadableFile() throws {
        try withDirectory { dir in
            let path = dir + "/secret.png"
            try patternImage(width: 4, height: 4).write(to: path)
            try FileManager.default.setAttributes([.posixPermissions: 0], ofItemAtPath: path)
            #expect(throws: ImageError.unreadableFile(path: path, reason: "permission denied")) { try RGBImage(contentsOf: path) }
        }
    }

    @Test func textFileRenamedPNG() throws {
        try withDirectory { dir in
            let path = dir + "/notes.png"
            try write(Array("these are my notes, not a picture\n".utf8), to: path)
            #expect(throws: ImageError.unsupportedFormat(source: path, detected: "a text file")) { try RGBImage(contentsOf: path) }
            let message = String(describing: ImageError.unsupportedFormat(source: path, detected: "a text file"))
            #expect(message.contains("notes.png") && message.contains("not a PNG or JPEG"))
        }
    }

    @Test func otherFormatsAreNamed() throws {
        let cases: [([UInt8], String)] = [
            ([], "an empty file"),
            (Array("GIF89a....".utf8), "a GIF image"),
            (Array("RIFF\0\0\0\0WEBPVP8 ".utf8), "a WebP image"),
            (Array("BM".utf8) + [0, 1, 2, 3], "a BMP image"),
            ([0, 0, 0, 0x18] + Array("ftypheic".utf8), "an HEIF/AVIF image or a video"),
            ([0x00, 0x01, 0x02, 0xFE, 0x80, 0x00], "an unrecognised format"),
            ([0xFF, 0xD8, 0x00, 0x00], "a damaged JPEG (no marker after the start of image)"),
        ]
        for (bytes, detected) in cases {
            #expect(throws: ImageError.unsupportedFormat(source: "image data", detected: detected)) { try RGBImage(encoded: bytes) }
        }
    }

    @Test func truncatedPNG() throws {
        let png = try patternImage(width: 32, height: 32).encoded(as: .png)
        // IEND is the last 12 bytes; cutting anywhere before it loses image data.
        for keep in [8, 20, 40, png.count / 2, png.count - 13] {
            #expect(throws: ImageError.truncated(source: "cut.png", format: .png), "kept \(keep) bytes") {
                try RGBImage(encoded: Array(png.prefix(keep)), source: "cut.png")
            }
        }
        // Only the IEND chunk missing: every pixel is there, and the image is decoded, as
        // libpng and Pillow do.
        #expect(try RGBImage(encoded: Array(png.prefix(png.count - 12))) == patternImage(width: 32, height: 32))
        #expect(String(describing: ImageError.truncated(source: "cut.png", format: .png)).contains("truncated"))
    }

    @Test func corruptPNG() throws {
        let png = try patternImage(width: 32, height: 32).encoded(as: .png)
        // Damage inside the IHDR chunk (its CRC no longer matches) and inside the image data.
        for offset in [17, png.count / 2] {
            var bad = png
            bad[offset] ^= 0x5A
            do {
                _ = try RGBImage(encoded: bad, source: "bad.png")
                Issue.record("damage at \(offset) was not detected")
            } catch let error as ImageError {
                guard case let .corrupt(source, format, detail) = error else {
                    Issue.record("expected .corrupt, got \(error)")
                    continue
                }
                #expect(source == "bad.png" && format == .png && !detail.isEmpty)
                #expect(error.description.contains("damaged PNG"))
            }
        }
    }

    @Test func truncatedJPEG() throws {
        let jpeg = try patternImage(width: 48, height: 48).encoded(as: .jpeg, jpegQuality: 90)
        for keep in [3, 30, 200, jpeg.count / 2, jpeg.count - 2] {
            #expect(throws: ImageError.truncated(source: "cut.jpg", format: .jpeg), "kept \(keep) bytes") {
                try RGBImage(encoded: Array(jpeg.prefix(keep)), source: "cut.jpg")
            }
        }
        let progressive = try fixtureBytes("jpeg/progressive.jpg")
        #expect(throws: ImageError.truncated(source: "p.jpg", format: .jpeg)) {
            try RGBImage(encoded: Array(progressive.prefix(progressive.count * 2 / 3)), source: "p.jpg")
        }
    }

    @Test func corruptJPEG() throws {
        let jpeg = try patternImage(width: 48, height: 48).encoded(as: .jpeg, jpegQuality: 90)
        // Break the first segment's length so that the headers no longer parse.
        var bad = jpeg
        bad[4] = 0x00
        bad[5] = 0x01
        do {
            _ = try RGBImage(encoded: bad, source: "bad.jpg")
            Issue.record("a broken JPEG header was accepted")
        } catch let error as ImageError {
            switch error {
            case .corrupt(source: "bad.jpg", format: .jpeg, _), .truncated(source: "bad.jpg", format: .jpeg):
                break
            default:
                Issue.record("unexpected \(error)")
            }
        }
        // Garbage in the entropy-coded data decodes with libjpeg warnings, as in Pillow.
        var noisy = jpeg
        for i in stride(from: jpeg.count / 2, to: jpeg.count / 2 + 40, by: 3) where noisy[i] != 0xFF { noisy[i] ^= 0x33 }
        #expect(try RGBImage(encoded: noisy).size == ImageSize(width: 48, height: 48))
    }

    /// A tiny file whose header claims a gigantic image is refused before anything is allocated.
    @Test func hugeDimensionsAreRefused() throws {
        func bigEndian32(_ v: UInt32) -> [UInt8] { [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: v >> $0) } }
        func crc32<C: Collection<UInt8>>(_ bytes: C) -> UInt32 {
            var crc: UInt32 = 0xFFFF_FFFF
            for byte in bytes {
                crc ^= UInt32(byte)
                for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
            }
            return ~crc
        }
        // PNG: IHDR's data is bytes 16..<29, its CRC 29..<33.
        var png = try patternImage(width: 4, height: 4).encoded(as: .png)
        png.replaceSubrange(16..<24, with: bigEndian32(100_000) + bigEndian32(100_000))
        png.replaceSubrange(29..<33, with: bigEndian32(crc32(png[12..<29])))
        #expect(throws: ImageError.tooLarge(source: "big.png", width: 100_000, height: 100_000)) {
            try RGBImage(encoded: png, source: "big.png")
        }
        // JPEG: the baseline frame header (SOF0) holds height then width after its length and precision.
        var jpeg = try patternImage(width: 16, height: 16).encoded(as: .jpeg)
        let sof = try #require((0..<jpeg.count - 1).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 })
        jpeg.replaceSubrange(sof + 5..<sof + 9, with: [0xEA, 0x60, 0xEA, 0x60])   // 60000 x 60000
        #expect(throws: ImageError.tooLarge(source: "big.jpg", width: 60_000, height: 60_000)) {
            try RGBImage(encoded: jpeg, source: "big.jpg")
        }
        #expect(String(describing: ImageError.tooLarge(source: "big.jpg", width: 60_000, height: 60_000)).contains("downscale"))
    }

    @Test func unwritableOutputs() throws {
        let image = patternImage(width: 8, height: 8)
        try withDirectory { dir in
            let missing = dir + "/no/such/dir/out.png"
            #expect(throws: ImageError.outputDirectoryMissing(path: missing, directory: dir + "/no/such/dir")) {
                try image.write(to: missing)
            }
            try write([1, 2, 3], to: dir + "/file")
            #expect(throws: ImageError.outputNotWritable(path: dir + "/file/out.png", reason: "\(dir)/file is not a directory")) {
                try image.write(to: dir + "/file/out.png")
            }
            try FileManager.default.createDirectory(atPath: dir + "/taken.png", withIntermediateDirectories: false)
            #expect(throws: ImageError.outputNotWritable(path: dir + "/taken.png", reason: "it is a directory")) {
                try image.write(to: dir + "/taken.png")
            }
            #expect(directoryListing(dir) == ["file", "taken.png"])
        }
    }

    /// Permission bits do not stop root, so this runs only as an ordinary user.
    @Test(.enabled(if: geteuid() != 0)) func readOnlyDirectory() throws {
        try withDirectory { dir in
            try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: dir)
            defer { try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir) }
            #expect(throws: ImageError.outputNotWritable(path: dir + "/out.png", reason: "permission denied")) {
                try patternImage(width: 8, height: 8).write(to: dir + "/out.png")
            }
            #expect(directoryListing(dir).isEmpty)
        }
    }

    /// sysfs refuses new files even to root (permission denied, or read-only where mounted so),
    /// which gives root a directory it cannot write to.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/sys/kernel"))) func systemDirectory() throws {
        let path = "/sys/blend-test-output.png"
        do {
            try patternImage(width: 8, height: 8).write(to: path)
            Issue.record("writing into /sys succeeded")
        } catch let error as ImageError {
            guard case let .outputNotWritable(errorPath, reason) = error else {
                Issue.record("expected .outputNotWritable, got \(error)")
                return
            }
            #expect(errorPath == path && ["permission denied", "read-only file system"].contains(reason))
            #expect(error.description.contains("choose another output path"))
        }
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func failedWriteLeavesNothing() throws {
        try withDirectory { dir in
            let path = dir + "/out.png"
            struct Interrupted: Error {}
            #expect(throws: Interrupted.self) {
                try FileIO.writeAtomically(path) { emit in
                    try emit([1, 2, 3, 4])
                    throw Interrupted()
                }
            }
            #expect(directoryListing(dir).isEmpty)
        }
    }

    @Test func existingFileIsReplacedOnlyOnSuccess() throws {
        try withDirectory { dir in
            let path = dir + "/out.png"
            let first = patternImage(width: 8, height: 8, seed: 1)
            try first.write(to: path)
            let before = try Data(contentsOf: URL(fileURLWithPath: path))
            // A failure in the middle of writing the replacement keeps the old file intact.
            struct Interrupted: Error {}
            #expect(throws: Interrupted.self) {
                try FileIO.writeAtomically(path) { emit in
                    try emit([UInt8](repeating: 7, count: 1000))
                    throw Interrupted()
                }
            }
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
            // An encoding error (bad quality) fails before the file system is touched.
            #expect(throws: ImageError.self) { try first.write(to: dir + "/out.jpg", jpegQuality: 0) }
            #expect(directoryListing(dir) == ["out.png"])
            // Success replaces it.
            let second = patternImage(width: 9, height: 5, seed: 2)
            try second.write(to: path)
            #expect(try RGBImage(contentsOf: path) == second)
            #expect(directoryListing(dir) == ["out.png"])
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o644)
        }
    }

    @Test func relativePathsWriteInTheCurrentDirectory() {
        #expect(FileIO.split("out.png") == (".", "out.png"))
        #expect(FileIO.split("/out.png") == ("/", "out.png"))
        #expect(FileIO.split("a/b/out.png") == ("a/b", "out.png"))
    }
}
