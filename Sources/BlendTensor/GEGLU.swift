#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The GEGLU activation (Shazeer 2020, "GLU variants improve transformer"; diffusers'
/// `GEGLU`): the last axis of `x` `[..., 2F]` holds `hidden` then `gate`, and the result
/// `[..., F]` is `hidden · gelu(gate)` with the exact (erf) GELU. One pass over `x`, without
/// splitting it into two copies first; the erf and e^x are the vectorised C kernels of the
/// CPU's widest ISA (CBlendKernels.h: within 1.5e-7 absolute of libm's `erff`). Differentiable in `x`.
///
/// Throws `TensorError.invalidArgument` when `x` is a scalar or its last axis is odd.
public func geglu(_ x: Tensor) throws -> Tensor {
    guard x.rank >= 1, x.dim(x.rank - 1) % 2 == 0 else {
        throw TensorError.invalidArgument(op: "geglu", message: "the last axis must hold hidden and gate halves of equal size, got \(x.shape)")
    }
    let width = x.dim(x.rank - 1), f = width / 2, rows = f == 0 ? 0 : x.count / width
    var outShape = x.shape
    outShape[outShape.count - 1] = f
    let y = Tensor(uninitializedShape: outShape)
    let xp = x.pointer, yp = y.pointer
    let geglu = kernels.geglu
    parallelRanges(rows, grain: max(1, (1 << 14) / max(f, 1))) { range in
        for r in range {
            let hidden = xp + r * width, gate = hidden + f, out = yp + r * f
            geglu(hidden, gate, out, f)
        }
    }
    return Tensor.recorded(y, from: [x]) { [x] g in
        let gx = Tensor(uninitializedShape: x.shape)
        let xp = x.pointer, gp = g.pointer, dp = gx.pointer
        let backward = kernels.gegluBackward
        parallelRanges(rows, grain: max(1, (1 << 14) / max(f, 1))) { range in
            for r in range {
                let hidden = xp + r * width, gate = hidden + f, dy = gp + r * f
                let dHidden = dp + r * width, dGate = dHidden + f
                // dHidden = dy·gelu(gate), dGate = dy·hidden·(Φ(gate) + gate·φ(gate)).
                backward(hidden, gate, dy, dHidden, dGate, f)
            }
        }
        return [gx]
    }
}
