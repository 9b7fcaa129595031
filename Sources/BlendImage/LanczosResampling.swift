#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension RGBImage {
    /// The image resized with a Lanczos-3 filter, byte for byte what Pillow's
    /// `Image.resize((width, height), Image.LANCZOS)` returns for an RGB image.
    ///
    /// Like Pillow's `ImagingResample`: a horizontal pass (skipped when the width is
    /// unchanged) into an 8-bit intermediate, then a vertical pass (skipped when the height
    /// is unchanged); when shrinking, the filter is widened by the scale factor so it
    /// averages over every source pixel; coefficients are normalised per output pixel and
    /// applied in 22-bit fixed point with rounding, and results are clamped to 0...255.
    public func resizedLanczos(width newWidth: Int, height newHeight: Int) throws -> RGBImage {
        try ImageSize(width: newWidth, height: newHeight).validate("resizedLanczos")
        if newWidth == width && newHeight == height { return self }   // Pillow returns a copy
        let horizontal = LanczosKernel(inputSize: width, outputSize: newWidth)
        let vertical = LanczosKernel(inputSize: height, outputSize: newHeight)
        var current = self
        if newWidth != width {
            // Only the rows the vertical pass reads, as in Pillow (the result is the same).
            let rows = vertical.bounds.first!.start..<(vertical.bounds.last!.start + vertical.bounds.last!.count)
            current = horizontal.resampleRows(of: self, rows: newHeight != height ? rows : 0..<height)
        }
        if newHeight != height {
            let firstRow = newWidth != width ? vertical.bounds.first!.start : 0
            current = vertical.resampleColumns(of: current, firstRow: firstRow)
        }
        return current
    }
}

/// Pillow's precomputed Lanczos coefficients for one axis (`precompute_coeffs` and
/// `normalize_coeffs_8bpc` in Resample.c), in the same double-precision arithmetic and the
/// same order of operations, so that the fixed-point weights are identical.
struct LanczosKernel {
    /// For each output index, the first input index and how many inputs it reads.
    var bounds: [(start: Int, count: Int)]
    /// `taps` fixed-point weights per output index (unused tail entries are zero).
    var weights: [Int32]
    var taps: Int

    /// Fixed-point fraction bits: 32 bits minus 8 for the pixel value and 2 for filter
    /// overshoot (weights can sum past 1 before clamping), as in Pillow.
    static let precisionBits = 32 - 8 - 2
    static let support = 3.0

    static func lanczos(_ x: Double) -> Double {
        func sinc(_ x: Double) -> Double {
            if x == 0 { return 1 }
            let t = x * Double.pi
            return sin(t) / t
        }
        return -3 <= x && x < 3 ? sinc(x) * sinc(x / 3) : 0
    }

    init(inputSize: Int, outputSize: Int) {
        let scale = Double(inputSize) / Double(outputSize)
        // Shrinking widens the filter so every input pixel contributes (antialiasing).
        let filterScale = max(scale, 1)
        let support = LanczosKernel.support * filterScale
        taps = Int(support.rounded(.up)) * 2 + 1
        bounds = []
        bounds.reserveCapacity(outputSize)
        weights = [Int32](repeating: 0, count: outputSize * taps)
        var k = [Double](repeating: 0, count: taps)
        let inverseFilterScale = 1 / filterScale
        for out in 0..<outputSize {
            let center = (Double(out) + 0.5) * scale
            // C's (int) cast truncates toward zero; the clamps then bound it.
            let start = max(Int(center - support + 0.5), 0)
            let count = min(Int(center + support + 0.5), inputSize) - start
            var total = 0.0
            for x in 0..<count {
                let w = LanczosKernel.lanczos((Double(x + start) - center + 0.5) * inverseFilterScale)
                k[x] = w
                total += w
            }
            for x in 0..<count {
                let normalised = total != 0 ? k[x] / total : k[x]
                let fixed = normalised * Double(1 << LanczosKernel.precisionBits)
                weights[out * taps + x] = Int32(normalised < 0 ? fixed - 0.5 : fixed + 0.5)
            }
            bounds.append((start, count))
        }
    }

    /// `1 << (precisionBits - 1)`: a half, so that the final shift rounds.
    static let half = 1 << (precisionBits - 1)

    @inline(__always)
    static func clip8(_ sum: Int) -> UInt8 {
        UInt8(clamping: sum >> precisionBits)
    }

    /// One output pixel: the weighted sum of `count` input pixels starting at byte `first`,
    /// `step` bytes apart, rounded from fixed point and clamped, written at byte `at`.
    @inline(__always)
    static func filter(_ src: UnsafeBufferPointer<UInt8>, first: Int, step: Int, count: Int,
                       weights: UnsafeBufferPointer<Int32>, weightOffset: Int,
                       into dst: UnsafeMutableBufferPointer<UInt8>, at d: Int) {
        var r = half, g = half, b = half
        var s = first
        for i in 0..<count {
            let weight = Int(weights[weightOffset + i])
            r += Int(src[s]) * weight
            g += Int(src[s + 1]) * weight
            b += Int(src[s + 2]) * weight
            s += step
        }
        dst[d] = clip8(r)
        dst[d + 1] = clip8(g)
        dst[d + 2] = clip8(b)
    }

    /// Resamples each of `rows` of `image` horizontally to `bounds.count` columns.
    func resampleRows(of image: RGBImage, rows: Range<Int>) -> RGBImage {
        let outWidth = bounds.count
        var pixels = [UInt8](repeating: 0, count: 3 * outWidth * rows.count)
        image.pixels.withUnsafeBufferPointer { src in
            weights.withUnsafeBufferPointer { w in
                pixels.withUnsafeMutableBufferPointer { dst in
                    for (row, y) in rows.enumerated() {
                        let line = 3 * y * image.width
                        for x in 0..<outWidth {
                            let (start, count) = bounds[x]
                            LanczosKernel.filter(src, first: line + 3 * start, step: 3, count: count,
                                                 weights: w, weightOffset: x * taps,
                                                 into: dst, at: 3 * (row * outWidth + x))
                        }
                    }
                }
            }
        }
        return RGBImage(validatedWidth: outWidth, height: rows.count, pixels: pixels)
    }

    /// Resamples `image` vertically to `bounds.count` rows; `firstRow` is the source row that
    /// `image`'s row 0 holds (the horizontal pass computes only the rows needed).
    func resampleColumns(of image: RGBImage, firstRow: Int) -> RGBImage {
        let outHeight = bounds.count, width = image.width
        var pixels = [UInt8](repeating: 0, count: 3 * width * outHeight)
        image.pixels.withUnsafeBufferPointer { src in
            weights.withUnsafeBufferPointer { w in
                pixels.withUnsafeMutableBufferPointer { dst in
                    for y in 0..<outHeight {
                        let (start, count) = bounds[y]
                        for x in 0..<width {
                            LanczosKernel.filter(src, first: 3 * ((start - firstRow) * width + x), step: 3 * width, count: count,
                                                 weights: w, weightOffset: y * taps,
                                                 into: dst, at: 3 * (y * width + x))
                        }
                    }
                }
            }
        }
        return RGBImage(validatedWidth: width, height: outHeight, pixels: pixels)
    }
}
