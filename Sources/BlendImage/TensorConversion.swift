import BlendTensor

/// The value range of an image tensor.
public enum PixelRange: Sendable, Hashable {
    /// [0, 1]: torchvision's `to_tensor`, what CLIP preprocessing starts from.
    case zeroToOne
    /// [-1, 1]: the diffusion model's range, `to_tensor(image).mul(2).sub(1)` in the reference.
    case minusOneToOne
}

extension RGBImage {
    /// The image as a `[1, 3, H, W]` float32 tensor (NCHW, channels R, G, B).
    ///
    /// Bit-identical to the reference's float32 arithmetic: `byte / 255` (torchvision's
    /// `to_tensor`), then for ``PixelRange/minusOneToOne`` `· 2 − 1`.
    public func tensor(range: PixelRange = .minusOneToOne) throws -> Tensor {
        let plane = width * height
        return try Tensor(shape: [1, 3, height, width]) { out in
            pixels.withUnsafeBufferPointer { src in
                for i in 0..<plane {
                    for c in 0..<3 {
                        let unit = Float(src[3 * i + c]) / 255
                        out[c * plane + i] = range == .zeroToOne ? unit : unit * 2 - 1
                    }
                }
            }
        }
    }

    /// An image from a `[1, 3, H, W]` or `[3, H, W]` tensor in `range`.
    ///
    /// The reference saves its results with `TF.to_pil_image(x.add(1).div(2).clamp(0, 1))`,
    /// and `to_pil_image` turns floats into bytes with `(x * 255).astype(uint8)`, which
    /// truncates: 0.999 becomes 254, not 255. This does the same float32 operations in the
    /// same order, so the bytes match. For ``PixelRange/zeroToOne`` values are clamped to
    /// [0, 1] as well (torchvision leaves out-of-range values to wrap around); NaN becomes 0.
    public init(tensor: Tensor, range: PixelRange = .minusOneToOne) throws {
        let shape = tensor.shape
        guard (shape.count == 4 && shape[0] == 1 && shape[1] == 3) || (shape.count == 3 && shape[0] == 3) else {
            throw ImageError.tensorShape(got: shape)
        }
        let height = shape[shape.count - 2], width = shape[shape.count - 1]
        try ImageSize(width: width, height: height).validate("RGBImage(tensor:)")
        let plane = width * height
        var pixels = [UInt8](repeating: 0, count: 3 * plane)
        tensor.withUnsafeBufferPointer { src in
            for c in 0..<3 {
                for i in 0..<plane {
                    var unit = src[c * plane + i]
                    if range == .minusOneToOne { unit = (unit + 1) / 2 }
                    // max/min with NaN first would keep NaN; this order maps it to 0.
                    unit = unit >= 0 ? Swift.min(unit, 1) : 0
                    pixels[3 * i + c] = UInt8(unit * 255)   // truncates, like astype(uint8)
                }
            }
        }
        self.init(validatedWidth: width, height: height, pixels: pixels)
    }
}
