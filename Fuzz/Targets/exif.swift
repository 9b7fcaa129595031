// The EXIF parser (TIFF header, IFD0 entries, the Orientation tag) on arbitrary payloads.
@testable import BlendImage

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // As found in a JPEG (with the "Exif\0\0" header) and as a bare TIFF structure.
    if let orientation = ExifOrientation(exifPayload: bytes) { _ = orientation.apply(to: try! RGBImage(width: 3, height: 2, filledWith: RGBColor(grey: 9))) }
    _ = ExifOrientation.orientationValue(tiff: bytes)
    return 0
}
