// The legacy (pre-zip) torch.save stream: five pickles and raw storages, then every tensor.
@testable import BlendCheckpoint

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    writeFuzzInput(data, size)
    expectDocumented({
        let checkpoint = try TorchLegacyReader.read(MappedFile(path: fuzzInputPath))
        for entry in checkpoint.entries {
            if entry.dtype.isFloatingPoint { _ = try checkpoint.tensor(named: entry.name) } else { _ = try checkpoint.integers(named: entry.name) }
        }
    }, allowed: { $0 is CheckpointError })
    return 0
}
