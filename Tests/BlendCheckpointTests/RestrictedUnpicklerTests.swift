import Testing
@testable import BlendCheckpoint

/// Hand-assembled pickles exercising the allow-list and the stream checks.
@Suite struct RestrictedUnpicklerTests {
    private func load(_ bytes: [UInt8], scriptClasses: Bool = false) throws -> PickleValue {
        var options = RestrictedUnpickler.Options()
        options.allowsScriptClasses = scriptClasses
        return try bytes.withUnsafeBytes { try RestrictedUnpickler.load($0, options: options, file: "test.pkl").value }
    }

    private func ascii(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test func plainDataDecodes() throws {
        // {'a': [1, -2, 3.5, True, None, 'x', b'yz'], 7: (300, 70000, 2**40)}
        var p: [UInt8] = [0x80, 0x02, 0x7D, 0x28]
        p += [0x8C, 1] + ascii("a") + [0x5D, 0x28, 0x4B, 1, 0x4A, 0xFE, 0xFF, 0xFF, 0xFF]
        p += [0x47, 0x40, 0x0C, 0, 0, 0, 0, 0, 0, 0x88, 0x4E, 0x58, 1, 0, 0, 0] + ascii("x") + [0x43, 2] + ascii("yz") + [0x65]
        p += [0x4B, 7, 0x4D, 0x2C, 0x01, 0x4A, 0x70, 0x11, 0x01, 0x00, 0x8A, 6, 0, 0, 0, 0, 0, 1, 0x87]
        p += [0x75, 0x2E]
        guard case let .dict(dict) = try load(p) else { Issue.record("not a dict"); return }
        #expect(dict.entries.count == 2)
        guard case let .list(list) = dict.entries[0].value else { Issue.record("not a list"); return }
        #expect(list.items.count == 7)
        #expect(list.items[1].intValue == -2)
        if case let .float(f) = list.items[2] { #expect(f == 3.5) } else { Issue.record("not a float") }
        guard case let .tuple(numbers) = dict.entries[1].value else { Issue.record("not a tuple"); return }
        #expect(numbers.map(\.intValue) == [300, 70000, 1 << 40])
    }

    @Test func memoSharesMutableContainers() throws {
        // l = []; (l, l) with an append after memoising: both refer to one list.
        let p: [UInt8] = [0x80, 0x02, 0x5D, 0x71, 0x00, 0x68, 0x00, 0x86, 0x68, 0x00, 0x4B, 5, 0x61, 0x30, 0x2E]
        guard case let .tuple(items) = try load(p), case let .list(a) = items[0], case let .list(b) = items[1] else {
            Issue.record("unexpected shape"); return
        }
        #expect(a === b && a.items.count == 1)
    }

    @Test(arguments: [
        ("os", "system"), ("builtins", "eval"), ("builtins", "exec"), ("subprocess", "Popen"),
        ("torch", "load"), ("__builtin__", "getattr"), ("__torch__.evil", "Thing"), ("numpy.core.multiarray", "_reconstruct"),
    ])
    func globalsOutsideTheAllowListAreRefused(module: String, name: String) throws {
        let p: [UInt8] = [0x80, 0x02, 0x63] + ascii("\(module)\n\(name)\n") + [0x29, 0x52, 0x2E]
        #expect(throws: CheckpointError.forbiddenGlobal(file: "test.pkl", name: "\(module).\(name)")) { try load(p) }
    }

    @Test func instAndObjAreRefused() throws {
        let inst: [UInt8] = [0x28] + ascii("S'echo'\n") + [0x69] + ascii("os\nsystem\n") + [0x2E]
        // Protocol-0 STRING is itself refused before INST is reached; build INST's operand with BINUNICODE instead.
        let inst2: [UInt8] = [0x28, 0x58, 4, 0, 0, 0] + ascii("echo") + [0x69] + ascii("os\nsystem\n") + [0x2E]
        #expect(throws: CheckpointError.self) { try load(inst) }
        #expect(throws: CheckpointError.forbiddenGlobal(file: "test.pkl", name: "os.system")) { try load(inst2) }
        let obj: [UInt8] = [0x80, 0x02, 0x28, 0x4E, 0x6F, 0x2E]
        #expect(throws: CheckpointError.self) { try load(obj) }
    }

    @Test func scriptClassesOnlyInTorchScriptMode() throws {
        let p: [UInt8] = [0x80, 0x02, 0x63] + ascii("__torch__\nM\n") + [0x29, 0x81, 0x7D, 0x62, 0x2E]
        #expect(throws: CheckpointError.forbiddenGlobal(file: "test.pkl", name: "__torch__.M")) { try load(p) }
        guard case let .object(object) = try load(p, scriptClasses: true) else { Issue.record("not an object"); return }
        #expect(object.className == "__torch__.M")
        // A script class may be instantiated (NEWOBJ) but never called (REDUCE).
        let called: [UInt8] = [0x80, 0x02, 0x63] + ascii("__torch__\nM\n") + [0x29, 0x52, 0x2E]
        #expect(throws: CheckpointError.self) { try load(called, scriptClasses: true) }
    }

    @Test(arguments: [
        [0x80, 0x02, 0x58, 0xFF, 0xFF, 0xFF, 0x7F, 0x61, 0x2E],           // BINUNICODE longer than the data
        [0x80, 0x02, 0x8B, 0xFF, 0xFF, 0xFF, 0xFF, 0x2E],                 // LONG4 longer than the data
        [0x80, 0x02, 0x8D, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x2E],              // BINUNICODE8 of 2**63
        [0x80, 0x02, 0x68, 0x05, 0x2E],                                   // memo read before write
        [0x80, 0x02, 0x30, 0x2E],                                         // pop from an empty stack
        [0x80, 0x02, 0x65, 0x2E],                                         // APPENDS without MARK
        [0x80, 0x02, 0x4B, 1, 0x4B, 2, 0x2E],                             // two values left at STOP
        [0x80, 0x02, 0x4B, 1],                                            // no STOP
        [0x80, 0x06, 0x4E, 0x2E],                                         // protocol 6
        [0x80, 0x02, 0x4B, 1, 0x61, 0x2E],                                // APPEND onto an int
        [0x80, 0x02, 0x82, 0x01, 0x2E],                                   // EXT1 (copyreg registry)
        [0x80, 0x02, 0x4B, 1, 0x51, 0x2E],                                // persistent id outside a torch archive
    ] as [[UInt8]])
    func malformedStreamsAreRefused(bytes: [UInt8]) throws {
        #expect(throws: CheckpointError.self) { try load(bytes) }
    }

    @Test func deepNestingIsBoundedWhenNamingTensors() throws {
        // 200 nested single-item lists: the unpickler is iterative, the tensor walk is depth-limited.
        let p: [UInt8] = [0x80, 0x02] + [UInt8](repeating: 0x5D, count: 200) + [UInt8](repeating: 0x61, count: 199) + [0x2E]
        let value = try load(p)
        #expect(throws: CheckpointError.self) { try TorchPickleTensors.namedTensors(in: value, file: "test.pkl", pickleBytes: p.count) }
    }

    @Test func storageTypesOutsideTheReadableSetAreNamed() throws {
        let p: [UInt8] = [0x80, 0x02, 0x63] + ascii("torch\nComplexFloatStorage\n") + [0x2E]
        do {
            _ = try load(p)
            Issue.record("expected an error")
        } catch let error as CheckpointError {
            #expect(error.description.contains("ComplexFloatStorage"))
        }
    }
}
