extension Tensor {
    /// Sum over `axes` (all axes when empty), keeping reduced dimensions as size 1 when asked.
    public func sum(axes: [Int] = [], keepingDimensions: Bool = false) throws -> Tensor {
        let normalized = try Set((axes.isEmpty ? Array(0..<rank) : axes).map { try normalizedAxis($0, op: "sum") })
        var kept = shape
        for a in normalized { kept[a] = 1 }
        let reduced = summed(toShape: kept)
        let source = shape
        let y = Tensor(shape: keepingDimensions ? kept : shape.enumerated().filter { !normalized.contains($0.offset) }.map(\.element),
                       storage: reduced.storage)
        return Tensor.recorded(y, from: [self]) { g in
            [Tensor(shape: kept, storage: g.storage).expandedKernel(to: source)]
        }
    }

    /// Mean over `axes` (all axes when empty).
    public func mean(axes: [Int] = [], keepingDimensions: Bool = false) throws -> Tensor {
        let normalized = try Set((axes.isEmpty ? Array(0..<rank) : axes).map { try normalizedAxis($0, op: "mean") })
        let n = normalized.reduce(1) { $0 * shape[$1] }
        return try sum(axes: Array(normalized), keepingDimensions: keepingDimensions) * (1 / Float(max(n, 1)))
    }

    /// Euclidean norm along `axis` (keeping it as size 1 when asked).
    public func norm(axis: Int = -1, keepingDimensions: Bool = false) throws -> Tensor {
        try squared().sum(axes: [axis], keepingDimensions: keepingDimensions).sqrt()
    }
}
