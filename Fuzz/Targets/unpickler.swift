// The restricted unpickler on arbitrary bytes, as the zip reader calls it for data.pkl:
// storages as persistent ids, TorchScript classes allowed, the tensor walk afterwards.
@testable import BlendCheckpoint

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    var options = RestrictedUnpickler.Options()
    options.allowsScriptClasses = true
    options.persistentLoad = { id in .storage(try TorchPickleTensors.storageReference(from: id)) }
    expectDocumented({
        let (value, _) = try RestrictedUnpickler.load(bytes, options: options, file: "fuzz")
        _ = try TorchPickleTensors.namedTensors(in: value, file: "fuzz", pickleBytes: size)
    }, allowed: { $0 is CheckpointError || $0 is RestrictedUnpickler.PickleFailure })
    return 0
}
