// PNG and JPEG through blend's wrappers, as photos and masks are read: RGB with EXIF
// orientation, then as a Photo (alpha, ICC profile) turned into a soft edit mask.
// The pixel limit is lowered to keep each run fast; the code path is the CLI's.
@testable import BlendImage

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    expectDocumented({ _ = try RGBImage(encoded: bytes, source: "fuzz", maximumPixels: 1 << 22) },
                     allowed: { $0 is ImageError })
    expectDocumented({
        let photo = try Photo(encoded: bytes, source: "fuzz")
        guard photo.size.pixelCount <= 1 << 22 else { return }
        _ = try SoftMask(maskImage: photo, photoSize: ImageSize(width: 48, height: 32), source: "fuzz")
    }, allowed: { $0 is ImageError || $0 is MaskError })
    return 0
}
