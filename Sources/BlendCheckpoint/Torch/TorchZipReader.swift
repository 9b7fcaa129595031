/// Reads `torch.save` zip archives (PyTorch ≥ 1.6): `<name>/data.pkl` holds the
/// pickled object, each storage is a stored (uncompressed) member `<name>/data/<key>`
/// that is used in place in the mapped file.
enum TorchZipReader {
    /// The archive's top folder ("archive/" or the file's stem), found from its `data.pkl`.
    static func recordPrefix(of archive: ZipArchive) -> String? {
        for member in archive.members {
            let parts = member.name.split(separator: "/", omittingEmptySubsequences: false)
            if parts.count == 2, parts[1] == "data.pkl" { return String(parts[0]) + "/" }
            if parts.count == 1, parts[0] == "data.pkl" { return "" }
        }
        return nil
    }

    static func read(_ archive: ZipArchive, prefix: String) throws -> Checkpoint {
        let path = archive.file.path
        try checkByteOrder(archive, prefix: prefix)
        let root = try unpickle(archive, member: prefix + "data.pkl", allowsScriptClasses: false)
        let pickleBytes = archive.member(named: prefix + "data.pkl")?.uncompressedSize ?? 0
        let tensors = try TorchPickleTensors.namedTensors(in: root, file: path, pickleBytes: pickleBytes)
        let layouts = try TorchPickleTensors.layouts(for: tensors, file: path) { storage in
            try storageBytes(archive, prefix: prefix, key: storage.key)
        }
        return try Checkpoint(file: archive.file, format: .torchZip, tensors: layouts)
    }

    /// Unpickles a member with the restricted unpickler, storages resolved as references.
    static func unpickle(_ archive: ZipArchive, member name: String, allowsScriptClasses: Bool) throws -> PickleValue {
        let path = archive.file.path
        guard let member = archive.member(named: name) else {
            throw CheckpointError.corrupt(file: path, detail: "the archive has no \(name)")
        }
        let pickle = try archive.contents(of: member)
        var options = RestrictedUnpickler.Options()
        options.allowsScriptClasses = allowsScriptClasses
        options.persistentLoad = { id in .storage(try TorchPickleTensors.storageReference(from: id)) }
        return try pickle.withUnsafeBytes { bytes in
            try RestrictedUnpickler.load(bytes, options: options, file: path).value
        }
    }

    /// The bytes of storage `key`, which must be stored uncompressed.
    static func storageBytes(_ archive: ZipArchive, prefix: String, key: String) throws -> Range<Int> {
        let path = archive.file.path
        guard let member = archive.member(named: "\(prefix)data/\(key)") else {
            throw CheckpointError.corrupt(file: path, detail: "storage \(key) is referenced but \(prefix)data/\(key) is missing")
        }
        guard member.isStored else {
            throw CheckpointError.corrupt(file: path, detail: "storage \(key) is compressed; PyTorch never writes that")
        }
        return member.dataRange
    }

    /// PyTorch records the writer's byte order; only little-endian data is read as is.
    static func checkByteOrder(_ archive: ZipArchive, prefix: String) throws {
        guard let member = archive.member(named: prefix + "byteorder") else { return }  // older archives: little-endian
        let order = String(decoding: try archive.contents(of: member, limit: 64), as: UTF8.self)
        guard order == "little" else {
            throw CheckpointError.unrecognizedFormat(file: archive.file.path, detail: "tensors stored \(order)-endian")
        }
    }
}
