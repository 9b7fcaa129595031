// The zip reader (zip64, data descriptors, stored and deflated members) on arbitrary bytes:
// the directory, then every member's contents with its CRC-32 check.
@testable import BlendCheckpoint

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    writeFuzzInput(data, size)
    expectDocumented({
        let archive = try ZipArchive(file: MappedFile(path: fuzzInputPath))
        for member in archive.members {
            _ = try? archive.contents(of: member, limit: 1 << 20)
        }
        _ = TorchZipReader.recordPrefix(of: archive)
    }, allowed: { $0 is CheckpointError })
    return 0
}
