#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Kernels (no recording)

extension Tensor {
    /// `f` applied to every element; a constant result.
    @inline(__always)
    func mapped(_ f: (Float) -> Float) -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        let src = pointer, dst = out.pointer
        parallelRanges(count, grain: 1 << 15) { r in
            for i in r { dst[i] = f(src[i]) }
        }
        return out
    }

    /// `f(self, other)` elementwise for two tensors of the same shape; a constant result.
    @inline(__always)
    func zipped(_ other: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        let a = pointer, b = other.pointer, dst = out.pointer
        parallelRanges(count, grain: 1 << 15) { r in
            for i in r { dst[i] = f(a[i], b[i]) }
        }
        return out
    }

    /// `f(self, b, c)` elementwise for three tensors of the same shape; a constant result.
    @inline(__always)
    func zipped(_ b: Tensor, _ c: Tensor, _ f: (Float, Float, Float) -> Float) -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        let pa = pointer, pb = b.pointer, pc = c.pointer, dst = out.pointer
        parallelRanges(count, grain: 1 << 15) { r in
            for i in r { dst[i] = f(pa[i], pb[i], pc[i]) }
        }
        return out
    }

    /// `f(a, b)` with broadcasting; a constant result of shape `outShape`.
    @inline(__always)
    static func broadcastKernel(_ a: Tensor, _ b: Tensor, outShape: [Int], _ f: (Float, Float) -> Float) -> Tensor {
        if a.shape == b.shape { return a.zipped(b, f) }
        let out = Tensor(uninitializedShape: outShape)
        let loop = BroadcastLoop(outShape: outShape, operandShapes: [outShape, a.shape, b.shape])
        let inner = loop.inner, sa = loop.innerStride(1), sb = loop.innerStride(2)
        let pa = a.pointer, pb = b.pointer, po = out.pointer
        let rows = loop.outerCount
        parallelRanges(rows, grain: max(1, (1 << 15) / max(inner, 1))) { range in
            var offs = [0, 0, 0]
            for row in range {
                loop.offsets(row: row, into: &offs)
                let o = po + offs[0], x = pa + offs[1], y = pb + offs[2]
                if sa == 1 && sb == 1 {
                    for i in 0..<inner { o[i] = f(x[i], y[i]) }
                } else if sa == 1 && sb == 0 {
                    let yv = y[0]
                    for i in 0..<inner { o[i] = f(x[i], yv) }
                } else if sa == 0 && sb == 1 {
                    let xv = x[0]
                    for i in 0..<inner { o[i] = f(xv, y[i]) }
                } else {
                    for i in 0..<inner { o[i] = f(x[i * sa], y[i * sb]) }
                }
            }
        }
        return out
    }

    static func broadcastShape(_ op: String, _ a: Tensor, _ b: Tensor) throws -> [Int] {
        guard let s = Broadcast.shape(a.shape, b.shape) else {
            throw TensorError.broadcastMismatch(op: op, lhs: a.shape, rhs: b.shape)
        }
        return s
    }
}

// MARK: - Differentiable arithmetic

extension Tensor {
    public static func + (a: Tensor, b: Tensor) throws -> Tensor {
        let shape = try broadcastShape("add", a, b)
        let y = broadcastKernel(a, b, outShape: shape) { $0 + $1 }
        return recorded(y, from: [a, b]) { g in
            [a.node == nil ? nil : g.summed(toShape: a.shape),
             b.node == nil ? nil : g.summed(toShape: b.shape)]
        }
    }

    public static func - (a: Tensor, b: Tensor) throws -> Tensor {
        let shape = try broadcastShape("subtract", a, b)
        let y = broadcastKernel(a, b, outShape: shape) { $0 - $1 }
        return recorded(y, from: [a, b]) { g in
            [a.node == nil ? nil : g.summed(toShape: a.shape),
             b.node == nil ? nil : g.summed(toShape: b.shape).mapped { -$0 }]
        }
    }

    public static func * (a: Tensor, b: Tensor) throws -> Tensor {
        let shape = try broadcastShape("multiply", a, b)
        let y = broadcastKernel(a, b, outShape: shape) { $0 * $1 }
        return recorded(y, from: [a, b]) { g in
            [a.node == nil ? nil : broadcastKernel(g, b, outShape: g.shape) { $0 * $1 }.summed(toShape: a.shape),
             b.node == nil ? nil : broadcastKernel(g, a, outShape: g.shape) { $0 * $1 }.summed(toShape: b.shape)]
        }
    }

    public static func / (a: Tensor, b: Tensor) throws -> Tensor {
        let shape = try broadcastShape("divide", a, b)
        let y = broadcastKernel(a, b, outShape: shape) { $0 / $1 }
        return recorded(y, from: [a, b]) { g in
            var ga: Tensor?, gb: Tensor?
            if a.node != nil { ga = broadcastKernel(g, b, outShape: g.shape) { $0 / $1 }.summed(toShape: a.shape) }
            if b.node != nil {
                // d(a/b)/db = -(a/b)/b = -y/b
                let gy = g.zipped(y) { $0 * $1 }
                gb = broadcastKernel(gy, b, outShape: g.shape) { -$0 / $1 }.summed(toShape: b.shape)
            }
            return [ga, gb]
        }
    }

    public static prefix func - (a: Tensor) -> Tensor { a * -1 }

    public static func + (a: Tensor, s: Float) -> Tensor {
        recorded(a.mapped { $0 + s }, from: [a]) { g in [g] }
    }
    public static func + (s: Float, a: Tensor) -> Tensor { a + s }
    public static func - (a: Tensor, s: Float) -> Tensor { a + (-s) }
    public static func - (s: Float, a: Tensor) -> Tensor {
        recorded(a.mapped { s - $0 }, from: [a]) { g in [g.mapped { -$0 }] }
    }
    public static func * (a: Tensor, s: Float) -> Tensor {
        recorded(a.mapped { $0 * s }, from: [a]) { g in [g.mapped { $0 * s }] }
    }
    public static func * (s: Float, a: Tensor) -> Tensor { a * s }
    public static func / (a: Tensor, s: Float) -> Tensor { a * (1 / s) }
}

// MARK: - Unary functions

extension Tensor {
    /// A differentiable elementwise function given its value and derivative.
    @inline(__always)
    func unary(_ f: (Float) -> Float, derivative: @escaping (Float) -> Float) -> Tensor {
        let y = mapped(f)
        let x = self
        return Tensor.recorded(y, from: [x]) { g in [g.zipped(x) { $0 * derivative($1) }] }
    }

    public func exp() -> Tensor {
        let y = mapped { expf($0) }
        return Tensor.recorded(y, from: [self]) { g in [g.zipped(y) { $0 * $1 }] }
    }
    public func log() -> Tensor { unary({ logf($0) }, derivative: { 1 / $0 }) }
    public func sqrt() -> Tensor {
        let y = mapped { $0.squareRoot() }
        return Tensor.recorded(y, from: [self]) { g in [g.zipped(y) { $0 * 0.5 / $1 }] }
    }
    public func squared() -> Tensor { unary({ $0 * $0 }, derivative: { 2 * $0 }) }
    public func abs() -> Tensor { unary({ Swift.abs($0) }, derivative: { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) }) }
    public func sin() -> Tensor { unary({ sinf($0) }, derivative: { cosf($0) }) }
    public func cos() -> Tensor { unary({ cosf($0) }, derivative: { -sinf($0) }) }
    public func tanh() -> Tensor {
        let y = mapped { tanhf($0) }
        return Tensor.recorded(y, from: [self]) { g in [g.zipped(y) { $0 * (1 - $1 * $1) }] }
    }
    /// Inverse sine; the derivative is 1/sqrt(1-x²), infinite at ±1.
    public func arcsin() -> Tensor { unary({ asinf($0) }, derivative: { 1 / (1 - $0 * $0).squareRoot() }) }
    public func pow(_ p: Float) -> Tensor { unary({ powf($0, p) }, derivative: { p * powf($0, p - 1) }) }

    /// Values limited to `[lower, upper]`; the gradient is zero where the input was clipped
    /// (and passes through at the bounds themselves, as PyTorch does).
    public func clamped(min lower: Float = -.infinity, max upper: Float = .infinity) -> Tensor {
        unary({ Swift.min(Swift.max($0, lower), upper) }, derivative: { ($0 >= lower && $0 <= upper) ? 1 : 0 })
    }

    public func relu() -> Tensor { unary({ $0 > 0 ? $0 : 0 }, derivative: { $0 > 0 ? 1 : 0 }) }

    /// The logistic function 1/(1 + e⁻ˣ) (the vectorised C kernel of the CPU's widest ISA).
    public func sigmoid() -> Tensor {
        let y = mapped(kernel: kernels.sigmoid)
        return Tensor.recorded(y, from: [self]) { g in [g.zipped(y) { $0 * $1 * (1 - $1) }] }
    }

    /// x·sigmoid(x) (a.k.a. swish), as used throughout the diffusion UNet (the vectorised C
    /// kernels of the CPU's widest ISA, forward and backward).
    public func silu() -> Tensor {
        swish(beta: 1)
    }

    /// x·σ(βx) and its derivative g·σ(βx)·(1 + βx·(1 − σ(βx))) in the C kernels.
    @inline(__always)
    private func swish(beta: Float) -> Tensor {
        let y = mapped { kernels.silu($0, $1, $2, beta) }
        let x = self
        return Tensor.recorded(y, from: [x]) { g in [x.zipped(g) { kernels.siluBackward($0, $1, $2, $3, beta) }] }
    }

    /// x·sigmoid(1.702x), the GELU approximation of OpenAI's CLIP (the vectorised C kernels).
    public func quickGELU() -> Tensor {
        swish(beta: 1.702)
    }

    /// The exact (erf) GELU, PyTorch's default: x·Φ(x) = ½x(1 + erf(x/√2)), forward and
    /// backward in the vectorised C kernels of the CPU's widest ISA (erf within 1.5e-7
    /// absolute of libm's `erff`, CBlendKernels.h).
    public func gelu() -> Tensor {
        let y = mapped(kernel: kernels.gelu)
        let x = self
        return Tensor.recorded(y, from: [x]) { g in [x.zipped(g, kernel: kernels.geluBackward)] }
    }
}
