/// Reads the pre-zip `torch.save` stream (PyTorch < 1.6, or
/// `_use_new_zipfile_serialization=False`; LPIPS's `vgg.pth` is one):
///
///     pickle(magic number) pickle(protocol version) pickle(sys_info)
///     pickle(object)       pickle(sorted storage keys)
///     for each key: int64 element count, then the raw elements
enum TorchLegacyReader {
    /// 0x1950a86a20f9469cfc6c, as LONG1's little-endian bytes.
    static let magicNumber: [UInt8] = [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]
    static let protocolVersion = 1001

    /// Whether the file starts like one: PROTO 2, LONG1 of 10 bytes.
    static func looksLikeLegacy(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 4 && bytes[0] == 0x80 && bytes[1] <= 5 && bytes[2] == 0x8A && bytes[3] == 0x0A
    }

    static func read(_ file: MappedFile) throws -> Checkpoint {
        let path = file.path
        let bytes = file.bytes
        func corrupt(_ detail: String) -> CheckpointError { .corrupt(file: path, detail: detail) }

        let (magic, afterMagic) = try RestrictedUnpickler.load(bytes, file: path)
        guard case let .bigInt(value) = magic, value == magicNumber else {
            throw CheckpointError.unrecognizedFormat(file: path, detail: "a pickle without PyTorch's magic number")
        }
        let (version, afterVersion) = try RestrictedUnpickler.load(bytes, offset: afterMagic, file: path)
        guard version.intValue == protocolVersion else {
            throw CheckpointError.unrecognizedFormat(file: path, detail: "legacy torch.save protocol \(version.intValue.map(String.init) ?? version.kind), expected \(protocolVersion)")
        }
        let (systemInfo, afterInfo) = try RestrictedUnpickler.load(bytes, offset: afterVersion, file: path)
        if case let .dict(info) = systemInfo, case .bool(false) = info.value(forKey: "little_endian") {
            throw CheckpointError.unrecognizedFormat(file: path, detail: "tensors stored big-endian")
        }

        // The object: storages are only named here; their bytes follow the key list.
        var storageTypes: [String: CheckpointDType] = [:]
        var options = RestrictedUnpickler.Options()
        options.persistentLoad = { id in
            let storage = try TorchPickleTensors.storageReference(from: id)
            // Like torch.load, the first reference to a key fixes its element type.
            if storageTypes[storage.key] == nil { storageTypes[storage.key] = storage.dtype }
            return .storage(storage)
        }
        let (root, afterObject) = try RestrictedUnpickler.load(bytes, offset: afterInfo, options: options, file: path)
        let (keyList, afterKeys) = try RestrictedUnpickler.load(bytes, offset: afterObject, file: path)
        guard let keys = keyList.sequence?.compactMap(\.stringValue), keys.count == keyList.sequence?.count else {
            throw corrupt("the storage key list is a \(keyList.kind), not a list of strings")
        }

        var storageRanges: [String: Range<Int>] = [:]
        var cursor = afterKeys
        for key in keys {
            guard let dtype = storageTypes[key] else { throw corrupt("storage \(key) is listed but never referenced") }
            guard cursor + 8 <= bytes.count else {
                throw CheckpointError.truncated(file: path, detail: "the file ends before storage \(key)")
            }
            let count = Int64(bitPattern: bytes.littleEndian(UInt64.self, at: cursor))
            let (byteCount, overflow) = Int(truncatingIfNeeded: count).multipliedReportingOverflow(by: dtype.byteSize)
            guard count >= 0, !overflow, byteCount <= bytes.count - cursor - 8 else {
                throw CheckpointError.truncated(file: path, detail: "storage \(key) declares \(count) elements, more than the file holds")
            }
            storageRanges[key] = (cursor + 8)..<(cursor + 8 + byteCount)
            cursor += 8 + byteCount
        }

        let tensors = try TorchPickleTensors.namedTensors(in: root, file: path, pickleBytes: afterObject - afterInfo)
        let layouts = try TorchPickleTensors.layouts(for: tensors, file: path) { storage in
            guard let range = storageRanges[storage.key] else { throw corrupt("storage \(storage.key) has no data") }
            return range
        }
        return try Checkpoint(file: file, format: .torchLegacy, tensors: layouts)
    }
}
