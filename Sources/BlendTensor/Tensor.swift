/// A dense, contiguous, row-major `Float` tensor (NCHW for images).
///
/// `Tensor` is a value: ops never modify their operands, they return new tensors.
/// A tensor that takes part in a differentiable computation carries a ``GradNode``
/// linking it to the op that produced it; see ``gradients(of:withRespectTo:seed:retainGraph:)``.
public struct Tensor: @unchecked Sendable {
    public let shape: [Int]
    /// Shared, immutable once filled; `var` only so that gradient accumulation can check
    /// that a buffer has no other owner before adding into it.
    var storage: TensorStorage
    /// The autograd node that produced this tensor, or nil for a constant.
    let node: GradNode?

    init(shape: [Int], storage: TensorStorage, node: GradNode? = nil) {
        self.shape = shape
        self.storage = storage
        self.node = node
    }

    /// A tensor with undefined contents, for ops to fill.
    init(uninitializedShape shape: [Int]) {
        self.init(shape: shape, storage: TensorStorage(uninitializedCount: shape.reduce(1, *)))
    }

    /// A tensor holding `scalars` in row-major order.
    public init(shape: [Int], scalars: [Float]) throws {
        try Tensor.validate(shape: shape, op: "Tensor(shape:scalars:)")
        let count = shape.reduce(1, *)
        guard count == scalars.count else {
            throw TensorError.elementCountMismatch(op: "Tensor(shape:scalars:)", shape: shape, count: scalars.count)
        }
        self.init(uninitializedShape: shape)
        scalars.withUnsafeBufferPointer { src in
            storage.pointer.update(from: src.baseAddress!, count: count)
        }
    }

    /// A tensor with every element equal to `value`.
    public init(shape: [Int], repeating value: Float) throws {
        try Tensor.validate(shape: shape, op: "Tensor(shape:repeating:)")
        self.init(uninitializedShape: shape)
        storage.pointer.initialize(repeating: value, count: storage.count)
    }

    /// A 0-d tensor.
    public init(scalar: Float) {
        self.init(uninitializedShape: [])
        storage.pointer[0] = scalar
    }

    /// A tensor filled by `body`, which receives the uninitialised element buffer.
    public init(shape: [Int], initializingWith body: (UnsafeMutableBufferPointer<Float>) throws -> Void) throws {
        try Tensor.validate(shape: shape, op: "Tensor(shape:initializingWith:)")
        self.init(uninitializedShape: shape)
        try body(storage.buffer)
    }

    public static func zeros(_ shape: [Int]) throws -> Tensor { try Tensor(shape: shape, repeating: 0) }
    public static func ones(_ shape: [Int]) throws -> Tensor { try Tensor(shape: shape, repeating: 1) }

    /// Standard normal samples from `generator` (Box–Muller), reproducible for a seeded generator.
    public static func randomNormal<G: RandomNumberGenerator>(_ shape: [Int], mean: Float = 0, std: Float = 1,
                                                              using generator: inout G) throws -> Tensor {
        try normalSamples(shape, mean: mean, std: std, using: &generator)
    }

    /// ``randomNormal(_:mean:std:using:)`` for the engine's own generator: the same values,
    /// without the unspecialised generic calls a caller in another module would otherwise make
    /// for every sample (some 30× slower).
    public static func randomNormal(_ shape: [Int], mean: Float = 0, std: Float = 1,
                                    using generator: inout SplitMix64) throws -> Tensor {
        try normalSamples(shape, mean: mean, std: std, using: &generator)
    }

    /// Box–Muller pairs from `generator`.
    @inline(__always)
    private static func normalSamples<G: RandomNumberGenerator>(_ shape: [Int], mean: Float, std: Float,
                                                                using generator: inout G) throws -> Tensor {
        try Tensor(shape: shape) { buf in
            var i = 0
            while i < buf.count {
                let u1 = Float.random(in: Float.ulpOfOne..<1, using: &generator)
                let u2 = Float.random(in: 0..<1, using: &generator)
                let r = (-2 * _log(u1)).squareRoot()
                buf[i] = mean + std * r * _cos(2 * .pi * u2)
                if i + 1 < buf.count { buf[i + 1] = mean + std * r * _sin(2 * .pi * u2) }
                i += 2
            }
        }
    }

    /// Uniform samples in `range` from `generator`.
    public static func randomUniform<G: RandomNumberGenerator>(_ shape: [Int], in range: Range<Float> = 0..<1,
                                                               using generator: inout G) throws -> Tensor {
        try Tensor(shape: shape) { buf in
            for i in 0..<buf.count { buf[i] = Float.random(in: range, using: &generator) }
        }
    }

    static func validate(shape: [Int], op: String) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw TensorError.invalidArgument(op: op, message: "shape \(shape) has a negative dimension")
        }
    }

    // MARK: - Inspection

    public var rank: Int { shape.count }
    public var count: Int { storage.count }
    /// The elements in row-major order.
    public var scalars: [Float] { Array(storage.buffer) }
    /// The single element of a one-element tensor.
    public var scalar: Float {
        get throws {
            guard count == 1 else {
                throw TensorError.shapeMismatch(op: "scalar", expected: "one element", got: shape)
            }
            return storage.pointer[0]
        }
    }

    /// Whether gradients can flow back from results of this tensor.
    public var requiresGradient: Bool { node != nil }

    /// Read-only access to the elements without copying.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(storage.buffer))
    }

    /// The same values, marked as a leaf of a differentiable computation.
    public func requiringGradient() -> Tensor {
        Tensor(shape: shape, storage: storage, node: GradNode(leafOf: shape))
    }

    /// The same values, cut off from the computation that made them (a constant).
    public func detached() -> Tensor { Tensor(shape: shape, storage: storage) }

    /// Size of dimension `axis`; negative axes count from the end.
    public func dim(_ axis: Int) -> Int { shape[axis < 0 ? axis + rank : axis] }

    var pointer: UnsafeMutablePointer<Float> { storage.pointer }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = scalars.prefix(8).map { "\($0)" }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(shown)\(count > 8 ? ", ..." : "")])"
    }
}

// Thin wrappers so this file needs no Foundation.
@inline(__always) func _log(_ x: Float) -> Float { logf(x) }
@inline(__always) func _cos(_ x: Float) -> Float { cosf(x) }
@inline(__always) func _sin(_ x: Float) -> Float { sinf(x) }

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
