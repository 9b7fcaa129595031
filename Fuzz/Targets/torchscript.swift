// The TorchScript reader directly (module tree, __parameters__ lists in code/), then every tensor.
@testable import BlendCheckpoint

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    writeFuzzInput(data, size)
    expectDocumented({
        let archive = try ZipArchive(file: MappedFile(path: fuzzInputPath))
        let checkpoint = try TorchScriptReader.read(archive, prefix: TorchZipReader.recordPrefix(of: archive) ?? "")
        for entry in checkpoint.entries where entry.dtype.isFloatingPoint { _ = try checkpoint.tensor(named: entry.name) }
    }, allowed: { $0 is CheckpointError })
    return 0
}
