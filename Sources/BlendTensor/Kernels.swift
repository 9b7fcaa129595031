import CBlendKernels

/// The C kernels of the widest vector ISA this CPU runs (AVX-512, AVX2+FMA or baseline),
/// chosen once at first use (CBlendKernels.h explains why they exist and how dispatch works;
/// `BLEND_KERNELS=baseline|avx2` caps the choice for measurements).
let kernels: BlendKernelTable = blend_kernels().pointee

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
