import Foundation
import Testing
@testable import BlendImage

let imageFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

func fixturePath(_ relative: String) -> String {
    imageFixtures.appendingPathComponent(relative).path
}

func fixtureBytes(_ relative: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: imageFixtures.appendingPathComponent(relative)))
}

/// The largest absolute difference between two byte arrays of equal length.
func maxDifference(_ a: [UInt8], _ b: [UInt8]) -> Int {
    precondition(a.count == b.count, "\(a.count) vs \(b.count) bytes")
    return zip(a, b).map { abs(Int($0) - Int($1)) }.max() ?? 0
}

/// A fresh empty directory, removed by the caller with `try? FileManager.default.removeItem`.
func makeTemporaryDirectory() throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("blend-image-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url.path
}

func directoryListing(_ path: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
}

/// A deterministic test pattern: gradients plus a seeded pseudo-random texture.
func patternImage(width: Int, height: Int, seed: UInt64 = 1) -> RGBImage {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    var pixels: [UInt8] = []
    for y in 0..<height {
        for x in 0..<width {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            pixels.append(UInt8(x * 255 / max(width - 1, 1)))
            pixels.append(UInt8(y * 255 / max(height - 1, 1)))
            pixels.append(UInt8(truncatingIfNeeded: state))
        }
    }
    return try! RGBImage(width: width, height: height, pixels: pixels)
}
