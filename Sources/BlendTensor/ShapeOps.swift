extension Tensor {
    func normalizedAxis(_ axis: Int, op: String) throws -> Int {
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0 && a < rank else {
            throw TensorError.invalidArgument(op: op, message: "axis \(axis) is out of range for shape \(shape)")
        }
        return a
    }

    /// The same elements viewed with another shape (one dimension may be -1).
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        var target = newShape
        let known = newShape.filter { $0 != -1 }.reduce(1, *)
        if let i = newShape.firstIndex(of: -1) {
            guard newShape.filter({ $0 == -1 }).count == 1, known > 0, count % known == 0 else {
                throw TensorError.invalidArgument(op: "reshape", message: "cannot infer -1 reshaping \(shape) to \(newShape)")
            }
            target[i] = count / known
        }
        guard target.allSatisfy({ $0 >= 0 }), target.reduce(1, *) == count else {
            throw TensorError.elementCountMismatch(op: "reshape to \(newShape)", shape: shape, count: count)
        }
        let source = shape
        let y = Tensor(shape: target, storage: storage)
        return Tensor.recorded(y, from: [self]) { g in [Tensor(shape: source, storage: g.storage)] }
    }

    /// Dimensions reordered: result dimension i is input dimension `order[i]`.
    public func permuted(_ order: [Int]) throws -> Tensor {
        guard order.count == rank, Set(order) == Set(0..<rank) else {
            throw TensorError.invalidArgument(op: "permute", message: "\(order) is not a permutation of the \(rank) axes of \(shape)")
        }
        let y = permutedKernel(order)
        var inverse = [Int](repeating: 0, count: rank)
        for (i, o) in order.enumerated() { inverse[o] = i }
        return Tensor.recorded(y, from: [self]) { g in [g.permutedKernel(inverse)] }
    }

    /// Swaps two axes.
    public func transposed(_ a: Int = -2, _ b: Int = -1) throws -> Tensor {
        let x = try normalizedAxis(a, op: "transpose"), y = try normalizedAxis(b, op: "transpose")
        var order = Array(0..<rank)
        order.swapAt(x, y)
        return try permuted(order)
    }

    func permutedKernel(_ order: [Int]) -> Tensor {
        let outShape = order.map { shape[$0] }
        let out = Tensor(uninitializedShape: outShape)
        if count == 0 { return out }
        var inStrides = [Int](repeating: 1, count: rank)
        for i in stride(from: rank - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * shape[i + 1] }
        // Source strides in output order; the last output dim is the inner loop.
        let srcStrides = order.map { inStrides[$0] }
        let inner = outShape.last ?? 1, innerStride = srcStrides.last ?? 1
        let rows = count / max(inner, 1)
        let src = pointer, dst = out.pointer
        let outer = Array(outShape.dropLast()), outerStrides = Array(srcStrides.dropLast())
        parallelRanges(rows, grain: max(1, 4096 / max(inner, 1))) { range in
            for row in range {
                var r = row, off = 0
                var d = outer.count - 1
                while d >= 0 { off += (r % outer[d]) * outerStrides[d]; r /= outer[d]; d -= 1 }
                let o = dst + row * inner, s = src + off
                for i in 0..<inner { o[i] = s[i * innerStride] }
            }
        }
        return out
    }

    /// Elements `range` along `axis` (a copy).
    public func sliced(_ range: Range<Int>, axis: Int) throws -> Tensor {
        let ax = try normalizedAxis(axis, op: "slice")
        guard range.lowerBound >= 0, range.upperBound <= shape[ax] else {
            throw TensorError.invalidArgument(op: "slice", message: "range \(range) is out of bounds for axis \(axis) of size \(shape[ax]) in \(shape)")
        }
        let outer = shape[..<ax].reduce(1, *), inner = shape[(ax + 1)...].reduce(1, *)
        var outShape = shape
        outShape[ax] = range.count
        let y = Tensor(uninitializedShape: outShape)
        let n = shape[ax], m = range.count, lo = range.lowerBound
        let src = pointer, dst = y.pointer
        for o in 0..<outer {
            (dst + o * m * inner).update(from: src + (o * n + lo) * inner, count: m * inner)
        }
        let inputShape = shape
        return Tensor.recorded(y, from: [self]) { g in
            let gx = Tensor(uninitializedShape: inputShape)
            gx.pointer.initialize(repeating: 0, count: gx.count)
            for o in 0..<outer {
                (gx.pointer + (o * n + lo) * inner).update(from: g.pointer + o * m * inner, count: m * inner)
            }
            return [gx]
        }
    }

    /// `parts` splits of equal size along `axis`.
    public func chunked(_ parts: Int, axis: Int) throws -> [Tensor] {
        let ax = try normalizedAxis(axis, op: "chunk")
        guard parts > 0, shape[ax] % parts == 0 else {
            throw TensorError.invalidArgument(op: "chunk", message: "axis \(axis) of size \(shape[ax]) does not split into \(parts) equal parts")
        }
        let size = shape[ax] / parts
        return try (0..<parts).map { try sliced($0 * size..<($0 + 1) * size, axis: ax) }
    }

    /// `tensors` joined along `axis`; all other dimensions must match.
    public static func concatenate(_ tensors: [Tensor], axis: Int) throws -> Tensor {
        guard let first = tensors.first else {
            throw TensorError.invalidArgument(op: "concatenate", message: "needs at least one tensor")
        }
        let ax = try first.normalizedAxis(axis, op: "concatenate")
        for t in tensors where t.rank != first.rank || (0..<first.rank).contains(where: { $0 != ax && t.shape[$0] != first.shape[$0] }) {
            throw TensorError.shapeMismatch(op: "concatenate", expected: "all dimensions but \(axis) equal to \(first.shape)", got: t.shape)
        }
        let outer = first.shape[..<ax].reduce(1, *), inner = first.shape[(ax + 1)...].reduce(1, *)
        let sizes = tensors.map { $0.shape[ax] }
        let total = sizes.reduce(0, +)
        var outShape = first.shape
        outShape[ax] = total
        let y = Tensor(uninitializedShape: outShape)
        var start = 0
        for (t, n) in zip(tensors, sizes) {
            for o in 0..<outer {
                (y.pointer + (o * total + start) * inner).update(from: t.pointer + o * n * inner, count: n * inner)
            }
            start += n
        }
        return recorded(y, from: tensors) { g in
            var start = 0
            return zip(tensors, sizes).map { t, n in
                defer { start += n }
                guard t.node != nil else { return nil }
                var s = t.shape
                s[ax] = n
                let gx = Tensor(uninitializedShape: s)
                for o in 0..<outer {
                    (gx.pointer + o * n * inner).update(from: g.pointer + (o * total + start) * inner, count: n * inner)
                }
                return gx
            }
        }
    }

    /// The tensor repeated (not copied until needed) to `target` by broadcasting.
    public func broadcast(to target: [Int]) throws -> Tensor {
        guard Broadcast.shape(shape, target) == target else {
            throw TensorError.broadcastMismatch(op: "broadcast", lhs: shape, rhs: target)
        }
        let y = expandedKernel(to: target)
        let source = shape
        return Tensor.recorded(y, from: [self]) { g in [g.summed(toShape: source)] }
    }

    func expandedKernel(to target: [Int]) -> Tensor {
        if target == shape { return self }
        let out = Tensor(uninitializedShape: target)
        let loop = BroadcastLoop(outShape: target, operandShapes: [target, shape])
        let inner = loop.inner, s = loop.innerStride(1)
        let src = pointer, dst = out.pointer
        var offs = [0, 0]
        for row in 0..<loop.outerCount {
            loop.offsets(row: row, into: &offs)
            let o = dst + offs[0], x = src + offs[1]
            for i in 0..<inner { o[i] = x[i * s] }
        }
        return out
    }
}
