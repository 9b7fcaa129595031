/// A value the restricted unpickler can build: plain data, the few PyTorch
/// constructs a state dict needs, and (for TorchScript archives only) opaque module
/// objects that hold their attributes. Nothing here can run code.
indirect enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    /// An integer wider than 64 bits, as little-endian two's complement bytes
    /// (the legacy torch.save magic number is one).
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple([PickleValue])
    case list(PickleList)
    case dict(PickleDict)
    /// A class or function from the allow-list, waiting to be applied.
    case global(PickleGlobal)
    case storage(StorageReference)
    case tensor(TensorReference)
    case object(ScriptObject)

    /// A short name for error messages.
    var kind: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int, .bigInt: return "int"
        case .float: return "float"
        case .string: return "str"
        case .bytes: return "bytes"
        case .tuple: return "tuple"
        case .list: return "list"
        case .dict: return "dict"
        case let .global(g): return g.qualifiedName
        case .storage: return "storage"
        case .tensor: return "tensor"
        case let .object(o): return o.className
        }
    }

    var intValue: Int? { if case let .int(v) = self { return v } else { return nil } }
    var stringValue: String? { if case let .string(s) = self { return s } else { return nil } }

    /// The items of a tuple or list.
    var sequence: [PickleValue]? {
        switch self {
        case let .tuple(items): return items
        case let .list(list): return list.items
        default: return nil
        }
    }
}

/// Lists and dicts are shared by reference in a pickle (memo) and filled after
/// creation (APPENDS, SETITEMS), so they are classes.
final class PickleList {
    var items: [PickleValue]
    init(_ items: [PickleValue] = []) { self.items = items }
}

/// An insertion-ordered dict, as Python's dicts and OrderedDicts are.
final class PickleDict {
    private(set) var entries: [(key: PickleValue, value: PickleValue)] = []
    private var positions: [PickleKey: Int] = [:]

    func set(_ key: PickleValue, _ value: PickleValue) {
        if let hashable = PickleKey(key), let at = positions[hashable] {
            entries[at].value = value
            return
        }
        if let hashable = PickleKey(key) { positions[hashable] = entries.count }
        entries.append((key, value))
    }

    func value(forKey key: String) -> PickleValue? {
        positions[.string(key)].map { entries[$0].value }
    }
}

/// The dict keys a state dict uses; other keys are kept but not de-duplicated.
enum PickleKey: Hashable {
    case string(String), int(Int), bool(Bool)
    init?(_ value: PickleValue) {
        switch value {
        case let .string(s): self = .string(s)
        case let .int(i): self = .int(i)
        case let .bool(b): self = .bool(b)
        default: return nil
        }
    }
}

/// The only Python globals a pickle may name. Anything else is refused when the
/// GLOBAL opcode is read, before it could be called.
enum PickleGlobal: Equatable {
    case orderedDict
    case rebuildTensorV2
    case rebuildTensor
    case rebuildParameter
    case storageType(CheckpointDType)
    /// A TorchScript module class (`__torch__.…`): becomes an attribute bag.
    case scriptClass(String)
    /// `torch.jit._pickle` helpers that only tag a list or dict with its type.
    case jitTypeTag(String)

    var qualifiedName: String {
        switch self {
        case .orderedDict: return "collections.OrderedDict"
        case .rebuildTensorV2: return "torch._utils._rebuild_tensor_v2"
        case .rebuildTensor: return "torch._utils._rebuild_tensor"
        case .rebuildParameter: return "torch._utils._rebuild_parameter"
        case let .storageType(dtype): return "storage of \(dtype)"
        case let .scriptClass(name): return name
        case let .jitTypeTag(name): return "torch.jit._pickle.\(name)"
        }
    }
}

/// A tensor storage named by a pickle's persistent id; its bytes live elsewhere
/// (a zip member, or the legacy stream's tail) and are located by `key`.
struct StorageReference: Equatable {
    let key: String
    let dtype: CheckpointDType
    /// Elements the pickle says the storage holds.
    let elementCount: Int
    /// Legacy storage views: the element range of the root storage this one covers.
    let view: Range<Int>?
}

/// A tensor as `_rebuild_tensor_v2` describes it: a strided window on a storage.
struct TensorReference {
    let storage: StorageReference
    let storageOffset: Int
    let shape: [Int]
    let strides: [Int]
}

/// An instance of a TorchScript class: its class name and pickled attributes.
final class ScriptObject {
    let className: String
    var attributes: PickleDict?
    init(className: String) { self.className = className }
}
