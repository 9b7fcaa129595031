import CBlendKernels

/// The C kernels of the widest vector ISA this CPU runs (AVX-512, AVX2+FMA or baseline),
/// chosen once at first use (CBlendKernels.h explains why they exist and how dispatch works;
/// `BLEND_KERNELS=baseline|avx2` caps the choice for measurements).
let kernels: BlendKernelTable = blend_kernels().pointee

/// Which of the C kernels this process runs, for `blend engine` and for results that depend
/// on it (a sum's lane order is the ISA's: the same inputs give the same bits on every CPU
/// that runs the same variant).
public enum ElementwiseKernels {
    /// `baseline` (SSE2 or the target's own vectors), `avx2` (AVX2+FMA) or `avx512`.
    public static var level: String {
        switch kernels.level {
        case 2: "avx512"
        case 1: "avx2"
        default: "baseline"
        }
    }
}

extension Tensor {
    /// `kernel(src, dst, n)` over contiguous chunks of the elements; a constant result.
    @inline(__always)
    func mapped(kernel: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        let src = UnsafePointer(pointer), dst = out.pointer
        parallelRanges(count, grain: 1 << 15) { r in
            if !r.isEmpty { kernel(src + r.lowerBound, dst + r.lowerBound, r.count) }
        }
        return out
    }

    /// `kernel(self, other, dst, n)` over contiguous chunks, for two tensors of the same shape;
    /// a constant result.
    @inline(__always)
    func zipped(_ other: Tensor, kernel: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        let a = UnsafePointer(pointer), b = UnsafePointer(other.pointer), dst = out.pointer
        parallelRanges(count, grain: 1 << 15) { r in
            if !r.isEmpty { kernel(a + r.lowerBound, b + r.lowerBound, dst + r.lowerBound, r.count) }
        }
        withExtendedLifetime(other) {}
        return out
    }
}
