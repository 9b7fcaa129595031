// What `blend models inspect --load` and every model loader do with a weight file: detect its
// format, read its directory, unwrap a training checkpoint, materialise every tensor.
@testable import BlendCheckpoint

func materialise(_ checkpoint: Checkpoint) throws {
    for entry in checkpoint.entries {
        if entry.dtype.isFloatingPoint { _ = try checkpoint.tensor(named: entry.name) } else { _ = try checkpoint.integers(named: entry.name) }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    writeFuzzInput(data, size)
    expectDocumented({
        let checkpoint = try CheckpointFile.load(path: fuzzInputPath)
        _ = checkpoint.topLevelKeys
        _ = ArchitectureRecognizer.recognize(checkpoint.entries)
        try materialise(checkpoint.modelWeights())
    }, allowed: { $0 is CheckpointError })
    return 0
}
