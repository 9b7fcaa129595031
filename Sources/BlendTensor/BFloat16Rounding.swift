/// `value` rounded to the nearest bfloat16 (ties to even), as an fp32 number: the top 16 bits
/// of the fp32 pattern, the way oneDNN (and PyTorch) convert fp32 to bf16. NaN stays NaN;
/// values beyond bf16's largest finite magnitude round to infinity.
@inline(__always)
func roundedToBFloat16(_ value: Float) -> Float {
    let bits = value.bitPattern
    guard !value.isNaN else { return value }
    return Float(bitPattern: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) & 0xFFFF_0000)
}

extension Tensor {
    /// A copy with every element rounded to bfloat16 (no gradient).
    func roundedToBFloat16() -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        let src = pointer, dst = out.pointer
        parallelRanges(count, grain: 1 << 16) { r in
            for i in r { dst[i] = BlendTensor.roundedToBFloat16(src[i]) }
        }
        return out
    }

    /// These weights rounded to bfloat16, computed on first use and kept with them (so that
    /// the rounded weights' own Winograd transforms are kept, as ``WeightTransformPolicy`` says).
    var bfloat16RoundedWeights: Tensor {
        let src = pointer, n = count
        let rounded = storage.derived(.bfloat16Rounded, count: n) { dst in
            parallelRanges(n, grain: 1 << 16) { r in
                for i in r { dst[i] = BlendTensor.roundedToBFloat16(src[i]) }
            }
        }
        return Tensor(shape: shape, storage: rounded)
    }
}
