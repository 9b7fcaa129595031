import BlendTensor

/// diffusers' `FeedForward` with the "geglu" activation (Shazeer 2020, "GLU variants improve
/// transformer"), as every SD transformer block uses it: `net.0.proj` maps `[N, T, C]` to
/// `[N, T, 2·4C]`, whose halves are `hidden, gate`; the result is `net.2(hidden · gelu(gate))`
/// with the exact (erf) GELU (BlendTensor's fused ``geglu(_:)``). Differentiable in the input.
public struct FeedForwardGEGLU: Sendable {
    let projIn: LinearLayer
    let projOut: LinearLayer

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        try projOut(geglu(projIn(x)))
    }
}
