/// Shape arithmetic for NumPy-style broadcasting.
enum Broadcast {
    /// The broadcast shape of `a` and `b`, or nil when they are incompatible.
    static func shape(_ a: [Int], _ b: [Int]) -> [Int]? {
        let rank = max(a.count, b.count)
        var out = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            if da == db || db == 1 { out[i] = da } else if da == 1 { out[i] = db } else { return nil }
        }
        return out
    }

    /// Contiguous strides of `shape` laid against `outShape` (right-aligned), with
    /// stride 0 on broadcast dimensions.
    static func strides(of shape: [Int], in outShape: [Int]) -> [Int] {
        let rank = outShape.count
        var strides = [Int](repeating: 0, count: rank)
        var running = 1
        for i in stride(from: rank - 1, through: 0, by: -1) {
            let j = i - (rank - shape.count)
            if j < 0 { break }
            strides[i] = shape[j] == 1 ? 0 : running
            running *= shape[j]
        }
        return strides
    }
}

/// A loop nest over a broadcast result: dimensions of size 1 dropped and adjacent
/// dimensions merged when every operand walks them contiguously, so that the
/// innermost loop is as long as possible.
struct BroadcastLoop {
    var dims: [Int]
    var strides: [[Int]]   // one stride list per operand

    init(outShape: [Int], operandShapes: [[Int]]) {
        let all = operandShapes.map { Broadcast.strides(of: $0, in: outShape) }
        var dims: [Int] = []
        var strides = [[Int]](repeating: [], count: operandShapes.count)
        for i in 0..<outShape.count where outShape[i] != 1 {
            if let last = dims.last,
               (0..<all.count).allSatisfy({ strides[$0].last! == all[$0][i] * outShape[i] }) {
                dims[dims.count - 1] = last * outShape[i]
                for k in 0..<all.count { strides[k][strides[k].count - 1] = all[k][i] }
            } else {
                dims.append(outShape[i])
                for k in 0..<all.count { strides[k].append(all[k][i]) }
            }
        }
        if dims.isEmpty {
            dims = [1]
            strides = strides.map { _ in [0] }
        }
        self.dims = dims
        self.strides = strides
    }

    var inner: Int { dims.last! }
    var outerCount: Int { dims.dropLast().reduce(1, *) }
    func innerStride(_ operand: Int) -> Int { strides[operand].last! }

    /// Offset of each operand at the start of outer row `row`.
    @inline(__always)
    func offsets(row: Int, into result: inout [Int]) {
        for k in 0..<result.count { result[k] = 0 }
        var r = row
        var d = dims.count - 2
        while d >= 0 {
            let idx = r % dims[d]
            r /= dims[d]
            for k in 0..<result.count { result[k] += idx * strides[k][d] }
            d -= 1
        }
    }
}

extension Tensor {
    /// Sums `self` down to `target` (a shape it was broadcast from): the gradient of a broadcast.
    func summed(toShape target: [Int]) -> Tensor {
        if target == shape { return self }
        let out = Tensor(uninitializedShape: target)
        out.pointer.initialize(repeating: 0, count: out.count)
        let loop = BroadcastLoop(outShape: shape, operandShapes: [shape, target])
        let src = pointer, dst = out.pointer
        let inner = loop.inner, sd = loop.innerStride(1)
        var offs = [0, 0]
        for row in 0..<loop.outerCount {
            loop.offsets(row: row, into: &offs)
            let s = src + offs[0], d = dst + offs[1]
            if sd == 0 {
                var acc: Float = 0
                for i in 0..<inner { acc += s[i] }
                d[0] += acc
            } else {
                for i in 0..<inner { d[i * sd] += s[i] }
            }
        }
        return out
    }
}
