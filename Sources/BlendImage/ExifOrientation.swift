/// The EXIF Orientation tag (0x0112): how a camera stored the pixels relative to the upright
/// scene. Each case is named after the transform that makes the stored pixels upright, the
/// same transform as Pillow's `ImageOps.exif_transpose`.
public enum ExifOrientation: Int, Sendable, CaseIterable {
    case upright = 1
    case flipHorizontal = 2
    case rotate180 = 3
    case flipVertical = 4
    /// Mirror across the main diagonal (top-left to bottom-right).
    case transpose = 5
    case rotate90Clockwise = 6
    /// Mirror across the anti-diagonal (top-right to bottom-left).
    case transverse = 7
    case rotate90CounterClockwise = 8

    /// The orientation in an APP1 payload (`"Exif\0\0"` then a TIFF structure), or nil when
    /// there is none or it cannot be read. A damaged Exif block never makes a photo
    /// unreadable: the pixels are then used as stored.
    public init?<Bytes: Collection<UInt8>>(exifPayload: Bytes) {
        let bytes = Array(exifPayload)
        guard bytes.starts(with: JPEGStructure.exifHeader) else { return nil }
        let tiff = Array(bytes[JPEGStructure.exifHeader.count...])
        guard let value = ExifOrientation.orientationValue(tiff: tiff), let orientation = ExifOrientation(rawValue: value) else {
            return nil
        }
        self = orientation
    }

    /// Reads IFD0's Orientation entry from a TIFF structure in either byte order.
    static func orientationValue(tiff: [UInt8]) -> Int? {
        guard tiff.count >= 8 else { return nil }
        let bigEndian: Bool
        switch (tiff[0], tiff[1]) {
        case (0x49, 0x49): bigEndian = false   // "II", Intel
        case (0x4D, 0x4D): bigEndian = true    // "MM", Motorola
        default: return nil
        }
        func u16(_ at: Int) -> Int? {
            guard at >= 0, at + 2 <= tiff.count else { return nil }
            let a = Int(tiff[at]), b = Int(tiff[at + 1])
            return bigEndian ? a << 8 | b : b << 8 | a
        }
        func u32(_ at: Int) -> Int? {
            guard let high = u16(bigEndian ? at : at + 2), let low = u16(bigEndian ? at + 2 : at) else { return nil }
            return high << 16 | low
        }
        guard u16(2) == 42, let ifd = u32(4), let count = u16(ifd) else { return nil }
        for index in 0..<count {
            let entry = ifd + 2 + 12 * index
            guard let tag = u16(entry), let type = u16(entry + 2), let valueCount = u32(entry + 4) else { return nil }
            guard tag == 0x0112 else { continue }
            // The standard type is SHORT; a few writers use LONG. Either way the value sits
            // at the start of the entry's 4-byte value field.
            guard valueCount >= 1 else { return nil }
            switch type {
            case 3: return u16(entry + 8)
            case 4: return u32(entry + 8)
            default: return nil
            }
        }
        return nil
    }

    /// `image` transformed so that it is upright.
    public func apply(to image: RGBImage) -> RGBImage {
        let w = image.width, h = image.height
        let swapsSides = rawValue >= 5
        let outWidth = swapsSides ? h : w, outHeight = swapsSides ? w : h
        // For each output pixel, the source column and row it comes from.
        let source: (Int, Int) -> (Int, Int)
        switch self {
        case .upright: return image
        case .flipHorizontal: source = { x, y in (w - 1 - x, y) }
        case .rotate180: source = { x, y in (w - 1 - x, h - 1 - y) }
        case .flipVertical: source = { x, y in (x, h - 1 - y) }
        case .transpose: source = { x, y in (y, x) }
        case .rotate90Clockwise: source = { x, y in (y, h - 1 - x) }
        case .transverse: source = { x, y in (w - 1 - y, h - 1 - x) }
        case .rotate90CounterClockwise: source = { x, y in (w - 1 - y, x) }
        }
        var pixels = [UInt8](repeating: 0, count: image.pixels.count)
        image.pixels.withUnsafeBufferPointer { src in
            pixels.withUnsafeMutableBufferPointer { dst in
                for y in 0..<outHeight {
                    for x in 0..<outWidth {
                        let (sx, sy) = source(x, y)
                        let s = 3 * (sy * w + sx), d = 3 * (y * outWidth + x)
                        dst[d] = src[s]
                        dst[d + 1] = src[s + 1]
                        dst[d + 2] = src[s + 2]
                    }
                }
            }
        }
        return RGBImage(validatedWidth: outWidth, height: outHeight, pixels: pixels)
    }
}
