/// `jpeg` (a whole JPEG file) with the ICC profile `profile` inserted after its SOI marker as
/// APP2 `ICC_PROFILE` segments, split in two as large profiles are (ICC.1 Annex B). For
/// tests that need a photo with an embedded profile.
public func jpegWithICCProfile(_ jpeg: [UInt8], profile: [UInt8]) -> [UInt8] {
    let half = profile.count / 2
    var segments: [UInt8] = []
    for (sequence, part) in [profile[..<half], profile[half...]].enumerated() {
        let payload = Array("ICC_PROFILE".utf8) + [0, UInt8(sequence + 1), 2] + part
        segments += [0xFF, 0xE2, UInt8((payload.count + 2) >> 8), UInt8((payload.count + 2) & 0xFF)] + payload
    }
    return Array(jpeg[..<2]) + segments + Array(jpeg[2...])
}

/// A made-up 3000-byte ICC profile: tests only need its bytes to survive.
public let iccProfileForTests: [UInt8] = (0..<3000).map { UInt8(truncatingIfNeeded: $0 * 7 + $0 / 13) }
