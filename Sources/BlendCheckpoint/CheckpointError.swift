/// Why a weight file could not be read or written. Every message names the file
/// and says what the user can do about it.
public enum CheckpointError: Error, Equatable, CustomStringConvertible {
    /// The file could not be opened or mapped.
    case cannotOpen(file: String, reason: String)
    /// The file is none of the formats `blend` reads.
    case unrecognizedFormat(file: String, detail: String)
    /// The archive ends early or its directory is missing: an interrupted download or copy.
    case truncated(file: String, detail: String)
    /// The container (zip, legacy stream, safetensors header) is inconsistent.
    case corrupt(file: String, detail: String)
    /// The pickle asks for a Python object outside the allow-list. Loading it with
    /// `torch.load` could run arbitrary code; `blend` refuses it.
    case forbiddenGlobal(file: String, name: String)
    /// The pickle is malformed, or uses a construct a state dict never needs.
    case malformedPickle(file: String, detail: String)
    /// A storage or safetensors entry uses an element type `blend` does not read.
    case unsupportedDType(file: String, name: String)
    /// A tensor's declared size, strides or offsets do not fit its data.
    case invalidTensor(file: String, tensor: String, detail: String)
    /// No tensor of that name; `similar` lists names that look close.
    case missingTensor(file: String, name: String, similar: [String])
    /// Two tensors in the file would have the same dotted name.
    case duplicateTensorName(file: String, name: String)
    /// An integer tensor was asked for as float32 without allowing the conversion.
    case integerTensorAsFloat(file: String, tensor: String, dtype: CheckpointDType)
    /// A floating-point tensor was asked for as integers.
    case floatTensorAsIntegers(file: String, tensor: String, dtype: CheckpointDType)
    /// A file could not be written.
    case writeFailed(file: String, reason: String)
    /// A training checkpoint holds several sets of weights and none is preferred (`keys`).
    case ambiguousWeights(file: String, keys: [String])
    /// A training checkpoint holds no model weights, only training state (`keys`).
    case noModelWeights(file: String, keys: [String])

    public var description: String {
        switch self {
        case let .cannotOpen(file, reason):
            return "cannot open \(file): \(reason)"
        case let .unrecognizedFormat(file, detail):
            return "\(file) is not a weight file blend can read (\(detail)); "
                + "expected a torch.save archive (.pt/.pth), a TorchScript archive, or .safetensors"
        case let .truncated(file, detail):
            return "\(file) is truncated (\(detail)); download or copy it again"
        case let .corrupt(file, detail):
            return "\(file) is corrupt: \(detail); download or copy it again"
        case let .forbiddenGlobal(file, name):
            return "refused to load \(file): its pickle references `\(name)`, which a weight file never needs "
                + "and which torch.load would execute. If you trust the file, re-save its state dict as safetensors "
                + "with PyTorch and load that instead"
        case let .malformedPickle(file, detail):
            return "cannot read the pickle in \(file): \(detail). blend reads state dicts of tensors only; "
                + "re-save it with `torch.save(model.state_dict(), path)` or as safetensors"
        case let .unsupportedDType(file, name):
            return "\(file) uses element type \(name), which blend does not read; "
                + "convert it to float32, float16 or bfloat16 with PyTorch"
        case let .invalidTensor(file, tensor, detail):
            return "tensor `\(tensor)` in \(file) is invalid: \(detail); the file is corrupt or hostile, get a fresh copy"
        case let .missingTensor(file, name, similar):
            let hint = similar.isEmpty ? "run `blend models inspect \(file)` to list its tensors"
                : "similar names: \(similar.joined(separator: ", "))"
            return "\(file) has no tensor named `\(name)` (\(hint)); is it the right model file?"
        case let .duplicateTensorName(file, name):
            return "\(file) holds two tensors that would both be called `\(name)`; blend cannot tell them apart"
        case let .integerTensorAsFloat(file, tensor, dtype):
            return "tensor `\(tensor)` in \(file) holds \(dtype) integers; read it with `integers(named:)` "
                + "or pass `convertingIntegers: true` to accept float32 rounding"
        case let .floatTensorAsIntegers(file, tensor, dtype):
            return "tensor `\(tensor)` in \(file) holds \(dtype) values, not integers; read it with `tensor(named:)`"
        case let .writeFailed(file, reason):
            return "cannot write \(file): \(reason)"
        case let .ambiguousWeights(file, keys):
            return "\(file) holds several sets of weights (under \(keys.map { "`\($0)`" }.joined(separator: ", "))) and blend cannot tell "
                + "which to use; save the one you want on its own with PyTorch, e.g. `torch.save(torch.load(path)[\"\(keys[0])\"], \"weights.pt\")`"
        case let .noModelWeights(file, keys):
            return "\(file) holds no model weights, only training state (\(keys.joined(separator: ", "))); "
                + "pass the file that holds the model (its state_dict, or an EMA copy)"
        }
    }
}
