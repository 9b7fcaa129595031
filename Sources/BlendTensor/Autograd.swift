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
/// walked once; each node's saved tensors are released as soon as it is done.
/// An input that `output` does not depend on gets a zero gradient.
public func gradients(of output: Tensor, withRespectTo inputs: [Tensor], seed: Tensor? = nil) throws -> [Tensor] {
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
        for (parent, g) in zip(node.inputs, inputGrads) {
            guard let parent, let g else { continue }
            let pkey = ObjectIdentifier(parent)
            if let existing = pending[pkey] {
                pending[pkey] = accumulate(existing, g)
            } else {
                pending[pkey] = g
            }
        }
    }
    return try inputs.map { input in
        try results[ObjectIdentifier(input.node!)] ?? Tensor.zeros(input.shape)
    }
}

/// Sum of two gradients of the same shape. The first is usually owned only by the
/// pending map, but it may share storage with a saved tensor, so a new buffer is written.
func accumulate(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.shape == b.shape, "gradient shape mismatch \(a.shape) vs \(b.shape)")
    let out = Tensor(uninitializedShape: a.shape)
    let pa = a.pointer, pb = b.pointer, po = out.pointer
    parallelRanges(a.count, grain: 1 << 16) { r in
        for i in r { po[i] = pa[i] + pb[i] }
    }
    return out
}
