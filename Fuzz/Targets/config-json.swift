// UNet and CLIP JSON configs as `--config`/`--diffusion-config` read them: decoding, the one-line
// error for a malformed file, and the configuration's own validation.
import BlendModels
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let json = Data(bytes: data, count: size)
    expectDocumented({ try ConfigFile.decode(UNetConfig.self, from: json, path: "fuzz.json").validate() },
                     allowed: { $0 is ConfigFileError || $0 is ModelError })
    expectDocumented({ try ConfigFile.decode(ClipConfig.self, from: json, path: "fuzz.json").validate() },
                     allowed: { $0 is ConfigFileError || $0 is ModelError })
    return 0
}
