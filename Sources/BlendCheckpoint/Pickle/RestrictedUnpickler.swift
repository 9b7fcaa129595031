/// A pickle reader that understands only what a PyTorch state dict (or a
/// TorchScript module's attributes) needs, and never executes anything.
///
/// `torch.load` without `weights_only` calls whatever a pickle's GLOBAL + REDUCE
/// name — `os.system` included. Here every GLOBAL is checked against a short
/// allow-list the moment it is read, and the few allowed callables are
/// interpreted in Swift (`_rebuild_tensor_v2` becomes a `TensorReference`, and so
/// on). Every length and index read from the stream is checked before use.
struct RestrictedUnpickler {
    struct Options {
        /// Accept `__torch__.…` classes and `torch.jit._pickle` tags (TorchScript archives only).
        var allowsScriptClasses = false
        /// Maps a persistent id (PyTorch's storage tuple) to the value it stands for.
        var persistentLoad: (PickleValue) throws -> PickleValue = { _ in throw PickleFailure("persistent id outside a torch archive") }
    }

    /// A reason the pickle is refused; callers wrap it with the file name.
    struct PickleFailure: Error {
        let message: String
        /// Set when the refusal is a forbidden global, so callers can report it as such.
        var forbiddenGlobal: String?
        init(_ message: String, forbiddenGlobal: String? = nil) {
            self.message = message
            self.forbiddenGlobal = forbiddenGlobal
        }
    }

    private let data: UnsafeRawBufferPointer
    private(set) var position: Int
    private let options: Options
    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]

    /// Reads one pickle starting at `offset`; `position` is just past its STOP afterwards.
    init(data: UnsafeRawBufferPointer, offset: Int = 0, options: Options = Options()) {
        self.data = data
        self.position = offset
        self.options = options
    }

    /// Reads one pickle and returns the value it builds, mapping failures to `CheckpointError`s about `file`.
    static func load(_ data: UnsafeRawBufferPointer, offset: Int = 0, options: Options = Options(), file: String) throws -> (value: PickleValue, end: Int) {
        var unpickler = RestrictedUnpickler(data: data, offset: offset, options: options)
        do {
            let value = try unpickler.run()
            return (value, unpickler.position)
        } catch let failure as PickleFailure {
            if let name = failure.forbiddenGlobal { throw CheckpointError.forbiddenGlobal(file: file, name: name) }
            throw CheckpointError.malformedPickle(file: file, detail: failure.message)
        }
    }

    // MARK: - Reading the stream

    private mutating func take(_ n: Int) throws -> UnsafeRawBufferPointer {
        guard n >= 0, n <= data.count - position else {
            throw PickleFailure("the pickle ends early (needs \(n) bytes at offset \(position), has \(data.count - position))")
        }
        defer { position += n }
        return UnsafeRawBufferPointer(rebasing: data[position..<(position + n)])
    }

    private mutating func byte() throws -> UInt8 { try take(1)[0] }
    private mutating func uint<T: FixedWidthInteger>(_: T.Type) throws -> T {
        try take(MemoryLayout<T>.size).littleEndian(T.self, at: 0)
    }

    /// A length prefix, refused if it points past the end of the data.
    private mutating func length<T: FixedWidthInteger>(_: T.Type) throws -> Int {
        let raw = try uint(T.self)
        guard UInt64(truncatingIfNeeded: raw) <= UInt64(data.count - position) else {
            throw PickleFailure("a length of \(raw) at offset \(position) runs past the end of the pickle")
        }
        return Int(raw)
    }

    /// A newline-terminated text argument (protocol-0 opcodes, GLOBAL names).
    private mutating func line() throws -> String {
        var end = position
        while end < data.count, data[end] != 0x0A { end += 1 }
        guard end < data.count else { throw PickleFailure("unterminated text argument at offset \(position)") }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: data[position..<end]), as: UTF8.self)
        position = end + 1
        return text
    }

    private mutating func text(_ n: Int) throws -> String {
        String(decoding: try take(n), as: UTF8.self)
    }

    // MARK: - Stack

    private mutating func push(_ value: PickleValue) { stack.append(value) }

    private mutating func pop() throws -> PickleValue {
        guard let value = stack.popLast(), stack.count >= (marks.last ?? 0) else { throw PickleFailure("stack underflow at offset \(position)") }
        return value
    }

    private func top() throws -> PickleValue {
        guard let value = stack.last, stack.count > (marks.last ?? 0) else { throw PickleFailure("stack underflow at offset \(position)") }
        return value
    }

    /// Everything pushed since the last MARK, removing the mark.
    private mutating func popToMark() throws -> [PickleValue] {
        guard let mark = marks.popLast() else { throw PickleFailure("no MARK before offset \(position)") }
        let items = Array(stack[mark...])
        stack.removeSubrange(mark...)
        return items
    }

    private mutating func memoize(_ index: Int) throws {
        memo[index] = try top()
    }

    private func recall(_ index: Int) throws -> PickleValue {
        guard let value = memo[index] else { throw PickleFailure("memo entry \(index) read before it was written") }
        return value
    }

    // MARK: - The machine

    private mutating func run() throws -> PickleValue {
        while true {
            let opcode = try byte()
            switch opcode {
            case 0x80:  // PROTO
                let version = try byte()
                guard version <= 5 else { throw PickleFailure("pickle protocol \(version) is newer than 5") }
            case 0x95: _ = try uint(UInt64.self)  // FRAME: a length hint only
            case 0x2E:  // STOP
                guard marks.isEmpty, stack.count == 1 else { throw PickleFailure("STOP with \(stack.count) values on the stack") }
                return stack[0]
            case 0x28: marks.append(stack.count)  // MARK
            case 0x30: _ = try pop()  // POP
            case 0x31: _ = try popToMark()  // POP_MARK
            case 0x32: push(try top())  // DUP

            case 0x4E: push(.none)
            case 0x88: push(.bool(true))
            case 0x89: push(.bool(false))
            case 0x4A: push(.int(Int(Int32(bitPattern: try uint(UInt32.self)))))  // BININT
            case 0x4B: push(.int(Int(try byte())))  // BININT1
            case 0x4D: push(.int(Int(try uint(UInt16.self))))  // BININT2
            case 0x8A: push(try longValue(try length(UInt8.self)))  // LONG1
            case 0x8B: push(try longValue(try length(UInt32.self)))  // LONG4
            case 0x49:  // INT (text)
                let text = try line()
                if text == "01" { push(.bool(true)) } else if text == "00" { push(.bool(false)) } else {
                    guard let value = Int(text) else { throw PickleFailure("bad INT literal \(text)") }
                    push(.int(value))
                }
            case 0x4C:  // LONG (text)
                var text = try line()
                if text.hasSuffix("L") { text.removeLast() }
                guard let value = Int(text) else { throw PickleFailure("LONG literal \(text) is out of range") }
                push(.int(value))
            case 0x47:  // BINFLOAT: big-endian double
                push(.float(Double(bitPattern: UInt64(bigEndian: try take(8).loadUnaligned(as: UInt64.self)))))
            case 0x46:  // FLOAT (text)
                let text = try line()
                guard let value = Double(text) else { throw PickleFailure("bad FLOAT literal \(text)") }
                push(.float(value))

            case 0x58: push(.string(try text(try length(UInt32.self))))  // BINUNICODE
            case 0x8C: push(.string(try text(try length(UInt8.self))))  // SHORT_BINUNICODE
            case 0x8D: push(.string(try text(try length(UInt64.self))))  // BINUNICODE8
            // Python 2 byte strings: torch.load decodes them as UTF-8, and so do we.
            case 0x54: push(.string(try text(try length(UInt32.self))))  // BINSTRING
            case 0x55: push(.string(try text(try length(UInt8.self))))  // SHORT_BINSTRING
            case 0x42: push(.bytes(Array(try take(try length(UInt32.self)))))  // BINBYTES
            case 0x43: push(.bytes(Array(try take(try length(UInt8.self)))))  // SHORT_BINBYTES
            case 0x8E, 0x96: push(.bytes(Array(try take(try length(UInt64.self)))))  // BINBYTES8, BYTEARRAY8

            case 0x29: push(.tuple([]))  // EMPTY_TUPLE
            case 0x74: push(.tuple(try popToMark()))  // TUPLE
            case 0x85: push(.tuple([try pop()]))  // TUPLE1
            case 0x86:  // TUPLE2
                let b = try pop(), a = try pop()
                push(.tuple([a, b]))
            case 0x87:  // TUPLE3
                let c = try pop(), b = try pop(), a = try pop()
                push(.tuple([a, b, c]))
            case 0x5D: push(.list(PickleList()))  // EMPTY_LIST
            case 0x6C: push(.list(PickleList(try popToMark())))  // LIST
            case 0x61:  // APPEND
                let item = try pop()
                try list(try top(), "APPEND").items.append(item)
            case 0x65:  // APPENDS
                let items = try popToMark()
                try list(try top(), "APPENDS").items.append(contentsOf: items)
            case 0x7D: push(.dict(PickleDict()))  // EMPTY_DICT
            case 0x64:  // DICT
                let items = try popToMark()
                let dict = PickleDict()
                try setItems(items, into: dict)
                push(.dict(dict))
            case 0x73:  // SETITEM
                let value = try pop(), key = try pop()
                try dict(try top(), "SETITEM").set(key, value)
            case 0x75:  // SETITEMS
                let items = try popToMark()
                try setItems(items, into: try dict(try top(), "SETITEMS"))

            case 0x67: push(try recall(try memoIndex(line())))  // GET
            case 0x68: push(try recall(Int(try byte())))  // BINGET
            case 0x6A: push(try recall(Int(try uint(UInt32.self))))  // LONG_BINGET
            case 0x70: try memoize(try memoIndex(line()))  // PUT
            case 0x71: try memoize(Int(try byte()))  // BINPUT
            case 0x72: try memoize(Int(try uint(UInt32.self)))  // LONG_BINPUT
            case 0x94: try memoize(memo.count)  // MEMOIZE

            case 0x63:  // GLOBAL "module\nname\n"
                let module = try line()
                let name = try line()
                push(.global(try resolveGlobal(module: module, name: name)))
            case 0x93:  // STACK_GLOBAL
                let name = try pop(), module = try pop()
                guard let m = module.stringValue, let n = name.stringValue else { throw PickleFailure("STACK_GLOBAL needs two strings") }
                push(.global(try resolveGlobal(module: m, name: n)))
            case 0x69:  // INST "module\nname\n": instantiates a class, so it is a global too
                let module = try line()
                let name = try line()
                throw PickleFailure("INST", forbiddenGlobal: "\(module).\(name)")
            case 0x51: push(try options.persistentLoad(try pop()))  // BINPERSID
            case 0x50: push(try options.persistentLoad(.string(try line())))  // PERSID
            case 0x52:  // REDUCE
                let arguments = try pop(), callable = try pop()
                push(try reduce(callable, arguments))
            case 0x81:  // NEWOBJ
                let arguments = try pop(), cls = try pop()
                push(try newObject(cls, arguments))
            case 0x62:  // BUILD
                let state = try pop()
                try build(try top(), state: state)

            default:
                throw PickleFailure("opcode \(RestrictedUnpickler.describe(opcode)) at offset \(position - 1) is not used by state dicts")
            }
        }
    }

    private static func describe(_ opcode: UInt8) -> String {
        let names: [UInt8: String] = [0x6F: "OBJ", 0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4", 0x92: "NEWOBJ_EX",
                                      0x8F: "EMPTY_SET", 0x90: "ADDITEMS", 0x91: "FROZENSET", 0x97: "NEXT_BUFFER",
                                      0x98: "READONLY_BUFFER", 0x53: "STRING", 0x56: "UNICODE"]
        let hex = "0x" + String(opcode, radix: 16)
        return names[opcode].map { "\($0) (\(hex))" } ?? hex
    }

    private func memoIndex(_ text: String) throws -> Int {
        guard let index = Int(text), index >= 0 else { throw PickleFailure("bad memo index \(text)") }
        return index
    }

    private mutating func longValue(_ n: Int) throws -> PickleValue {
        let bytes = Array(try take(n))
        if n == 0 { return .int(0) }
        if n <= 8 {
            var value: UInt64 = 0
            for (i, b) in bytes.enumerated() { value |= UInt64(b) << UInt64(8 * i) }
            // Sign-extend from the top byte.
            if n < 8, bytes[n - 1] & 0x80 != 0 { value |= ~0 << UInt64(8 * n) }
            return .int(Int(Int64(bitPattern: value)))
        }
        return .bigInt(bytes)
    }

    private func list(_ value: PickleValue, _ op: String) throws -> PickleList {
        guard case let .list(list) = value else { throw PickleFailure("\(op) on a \(value.kind), not a list") }
        return list
    }

    private func dict(_ value: PickleValue, _ op: String) throws -> PickleDict {
        guard case let .dict(dict) = value else { throw PickleFailure("\(op) on a \(value.kind), not a dict") }
        return dict
    }

    private func setItems(_ items: [PickleValue], into dict: PickleDict) throws {
        guard items.count % 2 == 0 else { throw PickleFailure("odd number of items for a dict") }
        for i in stride(from: 0, to: items.count, by: 2) { dict.set(items[i], items[i + 1]) }
    }

    // MARK: - The allow-list

    private func resolveGlobal(module: String, name: String) throws -> PickleGlobal {
        switch (module, name) {
        case ("collections", "OrderedDict"): return .orderedDict
        case ("torch._utils", "_rebuild_tensor_v2"): return .rebuildTensorV2
        case ("torch._utils", "_rebuild_tensor"): return .rebuildTensor
        case ("torch._utils", "_rebuild_parameter"): return .rebuildParameter
        default: break
        }
        if module == "torch", name.hasSuffix("Storage") {
            guard let dtype = CheckpointDType(torchStorageName: name) else {
                throw PickleFailure("storage type torch.\(name) is not supported (float32, float16, bfloat16, float64 and integer storages are)")
            }
            return .storageType(dtype)
        }
        if options.allowsScriptClasses {
            if module == "__torch__" || module.hasPrefix("__torch__.") { return .scriptClass("\(module).\(name)") }
            if module == "torch.jit._pickle",
               ["build_intlist", "build_doublelist", "build_boollist", "build_tensorlist", "build_genericlist", "restore_type_tag"].contains(name) {
                return .jitTypeTag(name)
            }
        }
        throw PickleFailure("global \(module).\(name)", forbiddenGlobal: "\(module).\(name)")
    }

    private func reduce(_ callable: PickleValue, _ arguments: PickleValue) throws -> PickleValue {
        guard case let .global(function) = callable else { throw PickleFailure("REDUCE of a \(callable.kind), which is not callable") }
        guard case let .tuple(args) = arguments else { throw PickleFailure("REDUCE arguments are a \(arguments.kind), not a tuple") }
        switch function {
        case .orderedDict:
            let dict = PickleDict()
            if let pairs = args.first {
                guard args.count == 1, let items = pairs.sequence else { throw PickleFailure("OrderedDict takes a list of pairs") }
                for item in items {
                    guard let pair = item.sequence, pair.count == 2 else { throw PickleFailure("OrderedDict item is not a pair") }
                    dict.set(pair[0], pair[1])
                }
            }
            return .dict(dict)
        case .rebuildTensorV2, .rebuildTensor:
            // (storage, storage_offset, size, stride[, requires_grad, backward_hooks[, metadata]])
            guard args.count >= 4, args.count <= 7 else { throw PickleFailure("\(function.qualifiedName) takes 4 to 7 arguments, got \(args.count)") }
            guard case let .storage(storage) = args[0] else { throw PickleFailure("\(function.qualifiedName) needs a storage, got a \(args[0].kind)") }
            guard let offset = args[1].intValue, let size = try intTuple(args[2]), let stride = try intTuple(args[3]) else {
                throw PickleFailure("\(function.qualifiedName) needs an integer offset, size and stride")
            }
            return .tensor(TensorReference(storage: storage, storageOffset: offset, shape: size, strides: stride))
        case .rebuildParameter:
            guard args.count == 3, case .tensor = args[0] else { throw PickleFailure("_rebuild_parameter takes (tensor, requires_grad, hooks)") }
            return args[0]
        case let .jitTypeTag(name):
            // build_*list(list) and restore_type_tag(value, type_string) both just return their first argument.
            guard let first = args.first, args.count <= 2 else { throw PickleFailure("torch.jit._pickle.\(name) takes its value first") }
            return first
        case .storageType, .scriptClass:
            throw PickleFailure("calling \(function.qualifiedName) is not part of a state dict")
        }
    }

    private func intTuple(_ value: PickleValue) throws -> [Int]? {
        guard let items = value.sequence else { return nil }
        var result: [Int] = []
        result.reserveCapacity(items.count)
        for item in items {
            guard let v = item.intValue else { return nil }
            result.append(v)
        }
        return result
    }

    private func newObject(_ cls: PickleValue, _ arguments: PickleValue) throws -> PickleValue {
        guard case let .global(.scriptClass(name)) = cls else { throw PickleFailure("NEWOBJ of a \(cls.kind) is not allowed") }
        guard case let .tuple(args) = arguments, args.isEmpty else { throw PickleFailure("TorchScript class \(name) built with arguments") }
        return .object(ScriptObject(className: name))
    }

    private func build(_ target: PickleValue, state: PickleValue) throws {
        switch target {
        case let .object(object):
            guard case let .dict(attributes) = state else { throw PickleFailure("state of \(object.className) is a \(state.kind), not a dict") }
            object.attributes = attributes
        case .dict:
            // An OrderedDict's own attributes (a state dict's `_metadata`): not tensors, not needed.
            break
        case .tensor:
            // Tensor subclass state (requires_grad and the like): nothing a reader needs.
            break
        default:
            throw PickleFailure("BUILD on a \(target.kind) is not allowed")
        }
    }
}
