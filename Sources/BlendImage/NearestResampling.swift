import BlendTensor

extension RGBImage {
    /// The image resized by nearest neighbour, exactly as Pillow's
    /// `Image.resize((width, height), Image.NEAREST)`: output pixel `x` takes input column
    /// `floor(scale/2 + x·scale)` with `scale = inputWidth / outputWidth`, the position
    /// accumulated by repeated addition in double precision as Pillow's `ImagingScaleAffine`
    /// does (the closed form `floor((x + 0.5)·scale)` differs from it when rounding lands
    /// on an integer), and likewise for rows.
    public func resizedNearest(width newWidth: Int, height newHeight: Int) throws -> RGBImage {
        try ImageSize(width: newWidth, height: newHeight).validate("resizedNearest")
        if newWidth == width && newHeight == height { return self }
        let columns = pillowNearestIndices(input: width, output: newWidth)
        let rows = pillowNearestIndices(input: height, output: newHeight)
        var pixels = [UInt8](repeating: 0, count: 3 * newWidth * newHeight)
        self.pixels.withUnsafeBufferPointer { src in
            pixels.withUnsafeMutableBufferPointer { dst in
                for (y, sy) in rows.enumerated() {
                    for (x, sx) in columns.enumerated() {
                        let s = 3 * (sy * width + sx), d = 3 * (y * newWidth + x)
                        dst[d] = src[s]
                        dst[d + 1] = src[s + 1]
                        dst[d + 2] = src[s + 2]
                    }
                }
            }
        }
        return RGBImage(validatedWidth: newWidth, height: newHeight, pixels: pixels)
    }
}
