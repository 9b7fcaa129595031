import Synchronization

/// A node of the recorded computation graph.
///
/// Each differentiable op's result carries a node that remembers the nodes of its
/// inputs and a closure mapping the gradient of the result to gradients of those
/// inputs. Weights are constants (no node), so only activations are recorded.
/// Nodes get increasing ids, so sorting by id gives a topological order.
final class GradNode: @unchecked Sendable {
    let id: Int
    let shape: [Int]
    let inputs: [GradNode?]
    /// Released after use so saved activations are freed as the backward pass proceeds.
    var backward: ((Tensor) -> [Tensor?])?
    /// Whether `backward` ran and was released (the graph cannot be differentiated again).
    var released = false

    private static let counter = Atomic<Int>(0)

    init(shape: [Int], inputs: [GradNode?], backward: ((Tensor) -> [Tensor?])?) {
        self.id = GradNode.counter.add(1, ordering: .relaxed).newValue
        self.shape = shape
        self.inputs = inputs
        self.backward = backward
    }

    convenience init(leafOf shape: [Int]) {
        self.init(shape: shape, inputs: [], backward: nil)
    }
}

extension Tensor {
    /// Attaches a backward closure to a freshly computed `result` when any of `inputs`
    /// is differentiable. `backward` returns one gradient per input (nil: no gradient,
    /// or the input is constant); each must have that input's shape.
    static func recorded(_ result: Tensor, from inputs: [Tensor],
                         backward: @escaping (Tensor) -> [Tensor?]) -> Tensor {
        guard inputs.contains(where: { $0.node != nil }) else { return result }
        let node = GradNode(shape: result.shape, inputs: inputs.map(\.node), backward: backward)
        return Tensor(shape: result.shape, storage: result.storage, node: node)
    }
}

/// Reverse-mode gradients of `output` with respect to `inputs`.
///
/// `seed` is the gradient of the final objective with respect to `output`
/// (ones when omitted, i.e. the gradient of the sum of `output`). The graph is
/// walked once; unless `retainGraph` is set, each node's saved tensors are released as
/// soon as its backward step has run, so the same graph can be differentiated only once
/// (as PyTorch's `backward(retain_graph=False)`). An input that `output` does not depend
/// on gets a zero gradient.
///
/// - Throws: ``TensorError/notDifferentiable(message:)`` when `output` or an input is not
///   part of a recorded computation, or when the graph was already differentiated without
///   `retainGraph`; ``TensorError/shapeMismatch(op:expected:got:)`` for a seed of the wrong shape.
public func gradients(of output: Tensor, withRespectTo inputs: [Tensor], seed: Tensor? = nil,
                      retainGraph: Bool = false) throws -> [Tensor] {
    guard let root = output.node else {
        throw TensorError.notDifferentiable(message: "the output does not depend on any tensor marked with requiringGradient()")
    }
    for input in inputs where input.node == nil {
        throw TensorError.notDifferentiable(message: "an input of shape \(input.shape) is not marked with requiringGradient()")
    }
    let seed = try seed ?? Tensor.ones(output.shape)
    guard seed.shape == output.shape else {
        throw TensorError.shapeMismatch(op: "gradients(seed:)", expected: "the output's shape \(output.shape)", got: seed.shape)
    }

    // Collect every node reachable from the root.
    var seen: Set<ObjectIdentifier> = [ObjectIdentifier(root)]
    var stack = [root]
    var nodes: [GradNode] = []
    while let node = stack.popLast() {
        if node.released {
            throw TensorError.notDifferentiable(message: "this computation was already differentiated and its saved tensors released; compute it again, or pass retainGraph: true to the first gradients(of:withRespectTo:) call")
        }
        nodes.append(node)
        for case let parent? in node.inputs where seen.insert(ObjectIdentifier(parent)).inserted {
            stack.append(parent)
        }
    }
    nodes.sort { $0.id > $1.id }

    let wanted = Set(inputs.map { ObjectIdentifier($0.node!) })
    var pending: [ObjectIdentifier: Tensor] = [ObjectIdentifier(root): seed]
    var results: [ObjectIdentifier: Tensor] = [:]

    for node in nodes {
        let key = ObjectIdentifier(node)
        guard let grad = pending.removeValue(forKey: key) else { continue }
        if wanted.contains(key) { results[key] = grad }
        guard let backward = node.backward else { continue }
        let inputGrads = backward(grad)
        if !retainGraph {
            node.backward = nil
            node.released = true
        }
        for (parent, g) in zip(node.inputs, inputGrads) {
            guard let parent, let g else { continue }
            let pkey = ObjectIdentifier(parent)
            if var existing = pending.removeValue(forKey: pkey) {
                accumulate(&existing, g)
                pending[pkey] = existing
            } else {
                pending[pkey] = g
            }
        }
    }
    return try inputs.map { input in
        try results[ObjectIdentifier(input.node!)] ?? Tensor.zeros(input.shape)
    }
}

/// Adds gradient `b` to gradient `a` (same shape). When nothing else holds `a`'s buffer
/// the sum is written into it; a buffer that is shared — with a saved tensor, another
/// pending gradient, or the caller's seed — is never written, and a new one is made instead.
func accumulate(_ a: inout Tensor, _ b: Tensor) {
    precondition(a.shape == b.shape, "gradient shape mismatch \(a.shape) vs \(b.shape)")
    let out = isKnownUniquelyReferenced(&a.storage) ? a : Tensor(uninitializedShape: a.shape)
    let pa = a.pointer, pb = b.pointer, po = out.pointer
    parallelRanges(a.count, grain: 1 << 16) { r in
        var i = r.lowerBound
        while i + 16 <= r.upperBound {
            let sum = UnsafeRawPointer(pa + i).loadUnaligned(as: SIMD16<Float>.self)
                + UnsafeRawPointer(pb + i).loadUnaligned(as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(po + i).storeBytes(of: sum, as: SIMD16<Float>.self)
            i += 16
        }
        while i < r.upperBound { po[i] = pa[i] + pb[i]; i += 1 }
    }
    a = Tensor(shape: a.shape, storage: out.storage)
}
