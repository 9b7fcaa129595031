/// Reads the parameters out of `torch.jit.save` archives (OpenAI's CLIP files)
/// without running any of their code.
///
/// `data.pkl` pickles the module tree: each module is a `__torch__.…` class whose
/// pickled state is a dict of attributes, tensors included. Which attributes are
/// parameters or buffers (the `state_dict()`) is written in the archive's
/// TorchScript source as `__parameters__ = [...]` and `__buffers__ = [...]`; those
/// two lines are all that is read from the code. The tensors come out under the
/// dotted names `state_dict()` gives them, in the same order.
enum TorchScriptReader {
    static func isTorchScript(_ archive: ZipArchive, prefix: String) -> Bool {
        archive.member(named: prefix + "constants.pkl") != nil
            || archive.members.contains { $0.name.hasPrefix(prefix + "code/") }
    }

    static func read(_ archive: ZipArchive, prefix: String) throws -> Checkpoint {
        let path = archive.file.path
        try TorchZipReader.checkByteOrder(archive, prefix: prefix)
        let root = try TorchZipReader.unpickle(archive, member: prefix + "data.pkl", allowsScriptClasses: true)
        let pickleBytes = archive.member(named: prefix + "data.pkl")?.uncompressedSize ?? 0
        var tensors: [(name: String, tensor: TensorReference)] = []
        if case let .object(module) = root {
            var classes = ClassDeclarations(archive: archive, prefix: prefix)
            var visits = TorchPickleTensors.maximumVisits(pickleBytes: pickleBytes)
            classes.visitLimit = visits
            try collect(module, path: "", depth: 0, classes: &classes, visitsLeft: &visits, into: &tensors)
        } else {
            tensors = try TorchPickleTensors.namedTensors(in: root, file: path, pickleBytes: pickleBytes)
        }
        let layouts = try TorchPickleTensors.layouts(for: tensors, file: path) { storage in
            try TorchZipReader.storageBytes(archive, prefix: prefix, key: storage.key)
        }
        return try Checkpoint(file: archive.file, format: .torchScript, tensors: layouts)
    }

    /// `state_dict()` order: a module's parameters, then its buffers, then each submodule.
    private static func collect(_ module: ScriptObject, path: String, depth: Int, classes: inout ClassDeclarations,
                                visitsLeft: inout Int, into result: inout [(name: String, tensor: TensorReference)]) throws {
        guard depth < 64 else { throw CheckpointError.malformedPickle(file: classes.archive.file.path, detail: "modules nested deeper than 64 at \(path)") }
        // Shared submodules (through the memo) would be walked once per path: bound the walk.
        visitsLeft -= 1
        guard visitsLeft >= 0 else { throw TorchPickleTensors.sharedTooOften(classes.archive.file.path, classes.visitLimit) }
        guard let attributes = module.attributes else { return }
        func child(_ name: String) -> String { path.isEmpty ? name : "\(path).\(name)" }
        let declaration = classes.declaration(of: module.className)
        if let declaration {
            for name in declaration.parameters + declaration.buffers {
                // Optional parameters (a Linear without bias) are pickled as None: not in the state dict.
                if case let .tensor(tensor) = attributes.value(forKey: name) { result.append((child(name), tensor)) }
            }
        } else {
            // No source for this class: every tensor attribute is the best available guess.
            for case let (.string(name), .tensor(tensor)) in attributes.entries { result.append((child(name), tensor)) }
        }
        for case let (.string(name), .object(submodule)) in attributes.entries
        where declaration == nil || declaration?.isModule == true {
            try collect(submodule, path: child(name), depth: depth + 1, classes: &classes, visitsLeft: &visitsLeft, into: &result)
        }
    }

    /// The parameter and buffer lists of TorchScript classes, read from `code/` on demand.
    struct ClassDeclarations {
        struct Declaration {
            let isModule: Bool
            let parameters: [String]
            let buffers: [String]
        }

        let archive: ZipArchive
        let prefix: String
        /// How many modules the walk may visit (see `TorchPickleTensors.maximumVisits`).
        var visitLimit = 0
        private var cache: [String: Declaration?] = [:]

        init(archive: ZipArchive, prefix: String) {
            self.archive = archive
            self.prefix = prefix
        }

        /// `__torch__.torch.nn.modules.linear.Linear` is declared in
        /// `code/__torch__/torch/nn/modules/linear.py` as `class Linear(Module):`.
        mutating func declaration(of qualifiedName: String) -> Declaration? {
            if let cached = cache[qualifiedName] { return cached }
            var declaration: Declaration?
            if let dot = qualifiedName.lastIndex(of: ".") {
                let module = qualifiedName[..<dot], className = qualifiedName[qualifiedName.index(after: dot)...]
                let file = prefix + "code/" + module.replacingDots() + ".py"
                if let member = archive.member(named: file), let source = try? archive.contents(of: member, limit: 64 << 20) {
                    declaration = ClassDeclarations.parse(String(decoding: source, as: UTF8.self), className: String(className))
                }
            }
            cache[qualifiedName] = declaration
            return declaration
        }

        static func parse(_ source: String, className: String) -> Declaration? {
            var inClass = false
            var isModule = false
            var parameters: [String]?
            var buffers: [String]?
            for line in source.split(separator: "\n", omittingEmptySubsequences: false) {
                if line.hasPrefix("class ") {
                    if inClass { break }
                    let header = line.dropFirst("class ".count)
                    if header.hasPrefix(className + "(") || header.hasPrefix(className + ":") {
                        inClass = true
                        isModule = header.contains("(Module)")
                    }
                    continue
                }
                guard inClass else { continue }
                let trimmed = line.drop { $0 == " " }
                if trimmed.hasPrefix("__parameters__ = [") { parameters = quotedNames(trimmed) }
                if trimmed.hasPrefix("__buffers__ = [") { buffers = quotedNames(trimmed) }
            }
            guard inClass else { return nil }
            return Declaration(isModule: isModule, parameters: parameters ?? [], buffers: buffers ?? [])
        }

        /// `["weight", "bias", ]` → ["weight", "bias"]
        private static func quotedNames(_ line: Substring) -> [String] {
            line.split(separator: "\"", omittingEmptySubsequences: false).enumerated()
                .filter { $0.offset % 2 == 1 }.map { String($0.element) }
        }
    }
}

private extension Substring {
    func replacingDots() -> String { String(map { $0 == "." ? "/" : $0 }) }
}
