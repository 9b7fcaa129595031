/// What blend needs from a JPEG's marker structure, found by walking its segments: the Exif
/// payload (for the orientation) and whether the data reaches its end-of-image marker.
///
/// The walk uses only segment lengths and the entropy-coded data's byte stuffing, so an
/// embedded thumbnail (a whole JPEG inside the Exif segment, with its own EOI) cannot be
/// mistaken for the end of the image.
struct JPEGStructure {
    /// The first APP1 segment's payload that starts with `"Exif\0\0"`.
    var exif: ArraySlice<UInt8>?
    /// True when the data ends before the EOI marker.
    var isTruncated: Bool
    /// True for arithmetic-coded frames (SOF9-11, SOF13-15), which can hold a block in less
    /// than the one bit Huffman coding needs at least.
    var isArithmeticCoded = false
    /// The APP2 `ICC_PROFILE` segments: sequence number (from 1), segment count, profile bytes.
    var iccSegments: [(sequence: Int, count: Int, data: ArraySlice<UInt8>)] = []

    init(_ bytes: [UInt8]) {
        exif = nil
        isTruncated = true
        var offset = 2   // past SOI
        let end = bytes.count
        while offset < end {
            // Markers are 0xFF then a code; any number of 0xFF fill bytes may come first.
            // Stray bytes between segments are skipped, as libjpeg does (with a warning).
            guard bytes[offset] == 0xFF else { offset += 1; continue }
            while offset < end && bytes[offset] == 0xFF { offset += 1 }
            guard offset < end else { return }
            let marker = bytes[offset]
            offset += 1
            switch marker {
            case 0xD9:
                isTruncated = false
                return
            case 0x01, 0xD0...0xD8:
                continue   // stand-alone markers: no length
            default:
                break
            }
            guard offset + 2 <= end else { return }
            let length = Int(bytes[offset]) << 8 | Int(bytes[offset + 1])
            guard length >= 2, offset + length <= end else { return }
            let payload = bytes[(offset + 2)..<(offset + length)]
            offset += length
            if [0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF].contains(marker) { isArithmeticCoded = true }
            if marker == 0xE1, exif == nil, payload.starts(with: JPEGStructure.exifHeader) {
                exif = payload
            }
            if marker == 0xE2, payload.count > JPEGStructure.iccHeader.count + 2, payload.starts(with: JPEGStructure.iccHeader) {
                let base = payload.startIndex + JPEGStructure.iccHeader.count
                iccSegments.append((Int(payload[base]), Int(payload[base + 1]), payload[(base + 2)...]))
            }
            if marker == 0xDA {
                // Entropy-coded data follows the scan header. In it 0xFF is always followed
                // by 0x00 (a stuffed byte), a restart marker or more 0xFF; any other code is
                // the next real marker.
                while offset < end {
                    if bytes[offset] != 0xFF { offset += 1; continue }
                    guard offset + 1 < end else { return }
                    let next = bytes[offset + 1]
                    if next == 0x00 || (0xD0...0xD7).contains(next) { offset += 2; continue }
                    if next == 0xFF { offset += 1; continue }
                    break
                }
            }
        }
    }

    static let exifHeader: [UInt8] = Array("Exif".utf8) + [0, 0]
    static let iccHeader: [UInt8] = Array("ICC_PROFILE".utf8) + [0]
}
