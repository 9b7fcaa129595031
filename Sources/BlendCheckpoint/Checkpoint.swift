import BlendTensor

/// The container a checkpoint came in.
public enum CheckpointFormat: String, Sendable, CustomStringConvertible {
    /// `torch.save` since PyTorch 1.6: a zip of `data.pkl` plus one member per storage.
    case torchZip = "torch.save zip archive"
    /// `torch.save(..., _use_new_zipfile_serialization=False)` and files from PyTorch < 1.6.
    case torchLegacy = "legacy torch.save stream"
    /// `torch.jit.save`: a zip with the module's attributes in `data.pkl` and its code.
    case torchScript = "TorchScript archive"
    case safetensors = "safetensors"

    public var description: String { rawValue }
}

/// One tensor as the file declares it.
public struct CheckpointEntry: Sendable, Equatable {
    /// Dotted name, as in PyTorch's `state_dict()` (`input_blocks.0.0.weight`).
    public let name: String
    /// The element type in the file; `Checkpoint.tensor(named:)` converts to float32.
    public let dtype: CheckpointDType
    public let shape: [Int]
    public var elementCount: Int { shape.reduce(1, *) }

    public init(name: String, dtype: CheckpointDType, shape: [Int]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
    }
}

/// An opened weight file: its tensors' names, types and shapes, with the data
/// left in the memory-mapped file until a tensor is asked for.
///
/// Materialising a tensor copies (and converts) its elements into a new float32
/// `Tensor`, then hands the file pages it read back to the kernel, so loading a
/// whole model costs about the size of its float32 weights in memory.
/// A `Checkpoint` is immutable and safe to share between threads. The file must
/// not be modified while it is open.
public final class Checkpoint: @unchecked Sendable {
    public let path: String
    public let format: CheckpointFormat
    /// The tensors in file order (a state dict's insertion order; safetensors' data order).
    public let entries: [CheckpointEntry]
    /// String metadata (safetensors `__metadata__`); empty for PyTorch files.
    public let metadata: [String: String]
    /// How ``modelWeights()`` found these tensors inside a training checkpoint; nil for the
    /// file's own names.
    public let selection: WeightSelection?

    private let file: MappedFile
    private let layouts: [TensorLayout]
    private let positions: [String: Int]

    init(file: MappedFile, format: CheckpointFormat, tensors: [(name: String, layout: TensorLayout)],
         metadata: [String: String] = [:], selection: WeightSelection? = nil) throws {
        // Each tensor's size is checked against its storage; together they must also fit the
        // file, so that many small expanded views cannot add up to more memory than exists.
        var total = 0
        for tensor in tensors {
            total = total.addingReportingOverflow(tensor.layout.elementCount).partialValue
            guard total >= 0, total <= Checkpoint.maximumElements(fileBytes: file.count) else {
                throw CheckpointError.corrupt(file: file.path, detail: "its tensors declare more than \(Checkpoint.maximumElements(fileBytes: file.count)) "
                    + "elements in all, more than a file of \(file.count) bytes can hold")
            }
        }
        var positions: [String: Int] = [:]
        for (i, tensor) in tensors.enumerated() {
            guard positions[tensor.name] == nil else { throw CheckpointError.duplicateTensorName(file: file.path, name: tensor.name) }
            positions[tensor.name] = i
        }
        self.path = file.path
        self.format = format
        self.file = file
        self.entries = tensors.map { CheckpointEntry(name: $0.name, dtype: $0.layout.dtype, shape: $0.layout.shape) }
        self.layouts = tensors.map(\.layout)
        self.positions = positions
        self.metadata = metadata
        self.selection = selection
    }

    /// The model's weights, unwrapped from the containers training code saves them in:
    /// `state_dict`/`model` keys, a `module.` prefix (DataParallel), and a file holding the
    /// weights, their EMA and the optimizer state (the EMA is taken, completed with any
    /// buffers it lacks from the raw weights). ``selection`` says what was taken; a plain
    /// state dict comes back as it is. The tensors stay in the file as before.
    ///
    /// Throws `CheckpointError.ambiguousWeights` when the file holds several sets of weights
    /// with no rule to prefer one, and `.noModelWeights` when it holds only training state;
    /// both name the keys found.
    public func modelWeights() throws -> Checkpoint {
        guard selection == nil else { return self }
        let found: (tensors: [(name: String, source: String)], selection: WeightSelection)?
        do { found = try WeightUnwrapping.select(entries.map(\.name)) } catch {
            switch error {
            case let .ambiguous(keys): throw CheckpointError.ambiguousWeights(file: path, keys: keys)
            case let .noWeights(keys): throw CheckpointError.noModelWeights(file: path, keys: keys)
            }
        }
        guard let found else { return self }
        let tensors = found.tensors.map { tensor in (name: tensor.name, layout: layouts[positions[tensor.source]!]) }
        return try Checkpoint(file: file, format: format, tensors: tensors, metadata: metadata, selection: found.selection)
    }

    /// The first components of the tensor names with how many tensors each holds, in file
    /// order: what a file that is not a plain state dict holds, for error messages.
    public var topLevelKeys: [(key: String, tensors: Int)] {
        let groups = WeightUnwrapping.group(entries.map { (name: $0.name, source: $0.name) })
        return groups.keys.map { ($0, groups.byKey[$0]?.count ?? 0) }
    }

    /// The most elements a file of `fileBytes` may declare over all its tensors: eight per
    /// byte (bool and int8 take one byte; views sharing a storage count once each), plus 16 Mi
    /// for the few expanded views (stride 0) real checkpoints hold.
    static func maximumElements(fileBytes: Int) -> Int { fileBytes.multipliedReportingOverflow(by: 8).partialValue + (1 << 24) }

    /// Total number of elements over all tensors (the parameter count for a state dict).
    public var parameterCount: Int { layouts.reduce(0) { $0 + $1.elementCount } }

    public func entry(named name: String) -> CheckpointEntry? { positions[name].map { entries[$0] } }

    public func contains(_ name: String) -> Bool { positions[name] != nil }

    /// The tensor called `name` as a dense row-major float32 `Tensor`, converted
    /// exactly from float16/bfloat16 (float64 is rounded to nearest).
    ///
    /// Integer and bool tensors are refused unless `convertingIntegers` is true,
    /// because float32 holds integers exactly only up to 2^24; use `integers(named:)`
    /// for exact values.
    public func tensor(named name: String, convertingIntegers: Bool = false) throws -> Tensor {
        let layout = try self.layout(named: name)
        if !layout.dtype.isFloatingPoint, !convertingIntegers {
            throw CheckpointError.integerTensorAsFloat(file: path, tensor: name, dtype: layout.dtype)
        }
        let tensor = try Tensor(shape: layout.shape) { buffer in
            guard let output = buffer.baseAddress else { return }
            let base = layout.storageBytes.lowerBound
            layout.decodeFloats(from: file.bytes(in: layout.storageBytes), into: output) { copied in
                file.release((base + copied.lowerBound)..<(base + copied.upperBound))
            }
        }
        file.release(layout.storageBytes)
        return tensor
    }

    /// Every tensor as float32, by name (integer tensors converted, see
    /// ``tensor(named:convertingIntegers:)``): a state dict, ready for a model to take from.
    public func tensors(convertingIntegers: Bool = true) throws -> [String: Tensor] {
        var tensors: [String: Tensor] = [:]
        for entry in entries {
            tensors[entry.name] = try tensor(named: entry.name, convertingIntegers: convertingIntegers)
        }
        return tensors
    }

    /// The elements of an integer or bool tensor (bool as 0/1), in row-major order.
    public func integers(named name: String) throws -> [Int64] {
        let layout = try self.layout(named: name)
        guard !layout.dtype.isFloatingPoint else {
            throw CheckpointError.floatTensorAsIntegers(file: path, tensor: name, dtype: layout.dtype)
        }
        return layout.decodeIntegers(from: file.bytes(in: layout.storageBytes))
    }

    private func layout(named name: String) throws -> TensorLayout {
        guard let position = positions[name] else {
            throw CheckpointError.missingTensor(file: path, name: name, similar: similarNames(to: name))
        }
        return layouts[position]
    }

    /// Names that differ only by a prefix (`module.`, `model.`), else those sharing the longest leading part.
    private func similarNames(to name: String) -> [String] {
        let names = entries.map(\.name)
        let affixed = names.filter { $0.hasSuffix("." + name) || name.hasSuffix("." + $0) }
        if !affixed.isEmpty { return Array(affixed.prefix(3)) }
        func sharedPrefix(_ other: String) -> Int { zip(name, other).prefix { $0 == $1 }.count }
        let best = names.map { ($0, sharedPrefix($0)) }.filter { $0.1 > 0 }.sorted { $0.1 > $1.1 }
        guard let top = best.first?.1, top >= name.count / 2 else { return [] }
        return best.prefix { $0.1 == top }.prefix(3).map(\.0)
    }
}
