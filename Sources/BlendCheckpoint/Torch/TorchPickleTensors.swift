/// What the torch readers share: decoding PyTorch's storage persistent ids,
/// naming the tensors found in an unpickled object, and turning tensor
/// references into validated layouts.
enum TorchPickleTensors {
    /// PyTorch's persistent id for a storage:
    /// `('storage', torch.FloatStorage, key, location, numel)` in zip archives, plus a
    /// sixth `view_metadata` (None or `(view_key, offset, size)`) in legacy streams.
    static func storageReference(from id: PickleValue) throws -> StorageReference {
        typealias Failure = RestrictedUnpickler.PickleFailure
        guard let fields = id.sequence, fields.count == 5 || fields.count == 6, fields[0].stringValue == "storage" else {
            throw Failure("persistent id is a \(id.kind), not a storage tuple")
        }
        guard case let .global(.storageType(dtype)) = fields[1] else { throw Failure("persistent id names a \(fields[1].kind), not a storage type") }
        guard let key = fields[2].stringValue else { throw Failure("storage key is a \(fields[2].kind)") }
        guard let count = fields[4].intValue, count >= 0, count <= Int.max / 8 else {
            throw Failure("storage \(key) declares an absurd element count")
        }
        var view: Range<Int>?
        if fields.count == 6, let metadata = fields[5].sequence {
            guard metadata.count == 3, let offset = metadata[1].intValue, let size = metadata[2].intValue,
                  offset >= 0, size >= 0, offset <= count, size <= count - offset else {
                throw Failure("storage view metadata of \(key) is out of range")
            }
            view = offset..<(offset + size)
        }
        return StorageReference(key: key, dtype: dtype, elementCount: count, view: view)
    }

    /// Values a walk of an unpickled object of `pickleBytes` bytes may visit. A state dict is
    /// a tree whose every node costs at least one byte of pickle, so it is visited in fewer
    /// steps than that; through the memo a pickle can share containers (a list of four copies
    /// of a list of four copies of ...), a DAG whose paths grow exponentially with its size.
    /// Sixteen visits per byte leaves room for the odd shared container real files have; the
    /// floor of 4,096 is for tiny pickles. (A floor of 65,536 let the 958-byte `hostile/shared_lists.pt`
    /// take 0.2 s of CPU under AddressSanitizer, over a second on a loaded machine: a fuzzing timeout.)
    static func maximumVisits(pickleBytes: Int) -> Int { 16 * pickleBytes + (1 << 12) }

    /// The tensors reachable from `root`, named by dotted key paths. Dicts give their
    /// keys, lists and tuples their indices, TorchScript objects their attribute names.
    /// Other values (step counters, hyper-parameters) are skipped.
    static func namedTensors(in root: PickleValue, file: String, pickleBytes: Int) throws -> [(name: String, tensor: TensorReference)] {
        var result: [(name: String, tensor: TensorReference)] = []
        var visits = 0
        let maximumVisits = maximumVisits(pickleBytes: pickleBytes)
        func visit(_ value: PickleValue, _ path: String, _ depth: Int) throws {
            // Pickles can nest (or, through the memo, loop): stop long before the Swift stack would.
            guard depth < 64 else { throw CheckpointError.malformedPickle(file: file, detail: "containers nested deeper than 64 at \(path)") }
            visits += 1
            guard visits <= maximumVisits else { throw sharedTooOften(file, maximumVisits) }
            func child(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
            switch value {
            case let .tensor(tensor): result.append((path.isEmpty ? "tensor" : path, tensor))
            case let .dict(dict):
                for (key, item) in dict.entries {
                    switch key {
                    case let .string(s): try visit(item, child(s), depth + 1)
                    case let .int(i): try visit(item, child(String(i)), depth + 1)
                    default: continue
                    }
                }
            case let .list(list): for (i, item) in list.items.enumerated() { try visit(item, child(String(i)), depth + 1) }
            case let .tuple(items): for (i, item) in items.enumerated() { try visit(item, child(String(i)), depth + 1) }
            case let .object(object): if let attributes = object.attributes { try visit(.dict(attributes), path, depth + 1) }
            default: break
            }
        }
        try visit(root, "", 0)
        return result
    }

    static func sharedTooOften(_ file: String, _ maximumVisits: Int) -> CheckpointError {
        .malformedPickle(file: file, detail: "its containers are reached through more than \(maximumVisits) paths; "
            + "a state dict is a tree, this pickle shares containers many times over")
    }

    /// Layouts for `tensors`, given where each root storage's bytes are in the file.
    static func layouts(for tensors: [(name: String, tensor: TensorReference)], file: String,
                        storageBytes: (StorageReference) throws -> Range<Int>) throws -> [(name: String, layout: TensorLayout)] {
        try tensors.map { name, tensor in
            let storage = tensor.storage
            var bytes = try storageBytes(storage)
            var elements = storage.elementCount
            if let view = storage.view {
                // A legacy storage view: a window of the root storage.
                let size = storage.dtype.byteSize
                guard view.upperBound * size <= bytes.count else {
                    throw CheckpointError.invalidTensor(file: file, tensor: name, detail: "storage view \(view) lies outside storage \(storage.key)")
                }
                bytes = (bytes.lowerBound + view.lowerBound * size)..<(bytes.lowerBound + view.upperBound * size)
                elements = view.count
            }
            let layout = try TensorLayout(dtype: storage.dtype, shape: tensor.shape, strides: tensor.strides,
                                          storageOffset: tensor.storageOffset, storageElements: elements,
                                          storageBytes: bytes, file: file, name: name)
            return (name, layout)
        }
    }
}
