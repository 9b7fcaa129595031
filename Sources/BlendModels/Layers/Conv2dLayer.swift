import BlendTensor

/// A 2-D convolution with fixed weights (PyTorch `nn.Conv2d`; also `nn.Conv1d` with kernel 1).
public struct Conv2dLayer: Sendable {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: Int
    public let padding: Int

    public init(weight: Tensor, bias: Tensor?, stride: Int = 1, padding: Int = 0) {
        self.weight = weight
        self.bias = bias
        self.stride = stride
        self.padding = padding
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        if x.rank == 3 {
            return try conv1d(x, weight: weight.rank == 4 ? weight.reshaped(Array(weight.shape.prefix(3))) : weight,
                              bias: bias, stride: stride, padding: padding)
        }
        return try conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding)
    }
}

/// A fully connected layer with fixed weights (PyTorch `nn.Linear`).
public struct LinearLayer: Sendable {
    public let weight: Tensor
    public let bias: Tensor?

    public init(weight: Tensor, bias: Tensor?) {
        self.weight = weight
        self.bias = bias
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try linear(x, weight: weight, bias: bias) }
}

/// Group normalisation with per-channel affine parameters (PyTorch `nn.GroupNorm`).
public struct GroupNormLayer: Sendable {
    public let groups: Int
    public let weight: Tensor
    public let bias: Tensor
    public let eps: Float

    public init(groups: Int, weight: Tensor, bias: Tensor, eps: Float = 1e-5) {
        self.groups = groups
        self.weight = weight
        self.bias = bias
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try groupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps)
    }

    /// `silu(norm(x) · (1 + scale) + shift)` fused in one pass (scale and shift `[N, C]`, optional).
    public func silu(_ x: Tensor, scale: Tensor? = nil, shift: Tensor? = nil) throws -> Tensor {
        try groupNormSiLU(x, groups: groups, weight: weight, bias: bias, eps: eps, scale: scale, shift: shift)
    }
}

/// Layer normalisation over the last dimension (PyTorch `nn.LayerNorm`).
public struct LayerNormLayer: Sendable {
    public let weight: Tensor
    public let bias: Tensor
    public let eps: Float

    public init(weight: Tensor, bias: Tensor, eps: Float = 1e-5) {
        self.weight = weight
        self.bias = bias
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try layerNorm(x, weight: weight, bias: bias, eps: eps) }
}
