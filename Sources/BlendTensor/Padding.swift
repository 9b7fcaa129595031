extension Tensor {
    /// Zeros added around the last two axes (`[..., H, W]` → `[..., top + H + bottom, left + W + right]`),
    /// PyTorch's `F.pad(x, (left, right, top, bottom))` with the constant 0. Asymmetric padding
    /// is what the VAE's stride-2 downsampling convolutions need (diffusers' `Downsample2D` with
    /// `padding=0` pads right and bottom by one). Differentiable: the gradient is the inner window.
    ///
    /// Throws `TensorError` for a tensor of rank < 2 or a negative amount.
    public func zeroPadded(top: Int, bottom: Int, left: Int, right: Int) throws -> Tensor {
        guard rank >= 2 else {
            throw TensorError.shapeMismatch(op: "zeroPadded", expected: "a tensor [..., H, W]", got: shape)
        }
        guard top >= 0, bottom >= 0, left >= 0, right >= 0 else {
            throw TensorError.invalidArgument(op: "zeroPadded", message: "padding (\(top), \(bottom), \(left), \(right)) must not be negative")
        }
        let h = dim(-2), w = dim(-1)
        let outH = h + top + bottom, outW = w + left + right
        let planes = count / max(h * w, 1)
        var outShape = shape
        outShape[rank - 2] = outH
        outShape[rank - 1] = outW
        let y = Tensor(uninitializedShape: outShape)
        let src = pointer, dst = y.pointer
        parallelFor(planes, grain: 4) { p in
            let s = src + p * h * w, d = dst + p * outH * outW
            d.initialize(repeating: 0, count: top * outW)
            for r in 0..<h {
                let row = d + (top + r) * outW
                row.initialize(repeating: 0, count: left)
                (row + left).update(from: s + r * w, count: w)
                (row + left + w).initialize(repeating: 0, count: right)
            }
            (d + (top + h) * outW).initialize(repeating: 0, count: bottom * outW)
        }
        let inputShape = shape
        return Tensor.recorded(y, from: [self]) { g in
            let gx = Tensor(uninitializedShape: inputShape)
            let gp = g.pointer, gxp = gx.pointer
            parallelFor(planes, grain: 4) { p in
                let d = gxp + p * h * w, s = gp + p * outH * outW
                for r in 0..<h { (d + r * w).update(from: s + (top + r) * outW + left, count: w) }
            }
            return [gx]
        }
    }
}
