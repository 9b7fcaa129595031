import BlendTensor

/// Errors raised while building a model from a checkpoint.
public enum ModelError: Error, Equatable, CustomStringConvertible {
    case missingWeight(key: String, model: String)
    case unexpectedWeights(keys: [String], model: String)
    case weightShape(key: String, expected: [Int], got: [Int])
    case invalidConfig(String)
    case unrecognisedCheckpoint(String)
    case badInput(String)

    public var description: String {
        switch self {
        case let .missingWeight(key, model):
            return "the checkpoint has no tensor '\(key)' that a \(model) needs: is this the right file, and does the config match it?"
        case let .unexpectedWeights(keys, model):
            let shown = keys.prefix(5).joined(separator: ", ")
            return "the checkpoint has \(keys.count) tensor(s) a \(model) with this config does not use (\(shown)\(keys.count > 5 ? ", ..." : "")): the config probably does not match the file"
        case let .weightShape(key, expected, got):
            return "tensor '\(key)' has shape \(got) but the config expects \(expected): the config does not match the checkpoint"
        case let .invalidConfig(message):
            return "invalid model config: \(message)"
        case let .unrecognisedCheckpoint(message):
            return message
        case let .badInput(message):
            return message
        }
    }
}

/// Named float32 tensors from a checkpoint, read by key as a model is assembled.
///
/// It remembers which keys were taken, so that after assembly `finish()` can report
/// tensors the model did not use — the strict behaviour of PyTorch's `load_state_dict`,
/// which catches a config that does not match its file.
public final class ModelWeights {
    private var tensors: [String: Tensor]
    private var used: Set<String> = []
    private let synthesize: ((String, [Int]) throws -> Tensor)?
    /// Names and shapes of tensors read only when a model takes them (see `init(shapes:modelName:load:)`).
    private var declared: [String: [Int]] = [:]
    private let load: ((String) throws -> Tensor)?
    let modelName: String
    /// Elements in all tensors taken so far: the model's parameter count once assembled.
    public private(set) var parameterCount = 0

    public init(_ tensors: [String: Tensor], modelName: String) {
        self.tensors = tensors
        self.modelName = modelName
        self.synthesize = nil
        self.load = nil
    }

    /// Weights read on demand: `shapes` names every tensor available (a file's directory),
    /// and `load(name)` reads one when the model takes it, so tensors a model does not use
    /// (another component of a Stable Diffusion file, EMA copies) are never converted.
    /// Unused names still count for `finish()`.
    public init(shapes: [String: [Int]], modelName: String, load: @escaping (String) throws -> Tensor) {
        self.tensors = [:]
        self.declared = shapes
        self.modelName = modelName
        self.synthesize = nil
        self.load = load
    }

    /// Weights made on demand, `make(key, shape)` for each tensor the model asks for:
    /// full-size random models for benchmarks and memory measurements, and parameter counts.
    public init(synthesizing make: @escaping (String, [Int]) throws -> Tensor, modelName: String) {
        self.tensors = [:]
        self.modelName = modelName
        self.synthesize = make
        self.load = nil
    }

    public var keys: [String] { Set(tensors.keys).union(declared.keys).sorted() }
    public func shape(of key: String) -> [Int]? { tensors[key]?.shape ?? declared[key] }
    public func contains(_ key: String) -> Bool { tensors[key] != nil || declared[key] != nil }

    /// The tensor stored under `key`, checked against `shape` when given.
    public func take(_ key: String, shape: [Int]? = nil) throws -> Tensor {
        if tensors[key] == nil, let synthesize, let shape { tensors[key] = try synthesize(key, shape) }
        if tensors[key] == nil, let load, let declaredShape = declared[key] {
            if let shape, declaredShape != shape { throw ModelError.weightShape(key: key, expected: shape, got: declaredShape) }
            tensors[key] = try load(key)
        }
        guard let t = tensors[key] else { throw ModelError.missingWeight(key: key, model: modelName) }
        if let shape, t.shape != shape { throw ModelError.weightShape(key: key, expected: shape, got: t.shape) }
        if used.insert(key).inserted { parameterCount += t.count }
        return t
    }

    /// Throws when tensors were left unused; with `prefix`, only those whose names start with
    /// it count (one network's part of a file that holds several).
    public func finish(under prefix: String = "") throws {
        let unused = keys.filter { $0.hasPrefix(prefix) && !used.contains($0) }
        if !unused.isEmpty { throw ModelError.unexpectedWeights(keys: unused, model: modelName) }
    }
}
