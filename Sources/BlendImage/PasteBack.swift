/// The edit put back into the full-resolution photo.
///
/// The model works at a small square size (256x256); the photo is usually larger and not
/// square. The edited result is resized to the photo's size with ``RGBImage/resizedLanczos(width:height:)``,
/// and only the masked pixels are taken from it: every pixel outside the mask is the
/// original photo's, byte for byte, so the untouched background keeps its full resolution
/// and never goes through the model's lossy round trip.
///
/// - Parameters:
///   - edit: the model's output, any size (usually the model size).
///   - original: the photo at full resolution.
///   - mask: the edit region at the photo's size (load it with `EditMask(image:size:)` or
///     `EditMask(contentsOf:size:)` passing `original.size`).
/// - Throws: ``MaskError/sizeMismatch(mask:expected:operation:)`` if the mask is not the
///   photo's size.
public func pasteEdit(_ edit: RGBImage, into original: RGBImage, mask: EditMask) throws -> RGBImage {
    guard mask.size == original.size else {
        throw MaskError.sizeMismatch(mask: mask.size, expected: original.size, operation: "pasteEdit")
    }
    let upscaled = try edit.resizedLanczos(width: original.width, height: original.height)
    var pixels = original.pixels
    for (i, edited) in mask.isEdited.enumerated() where edited {
        pixels[3 * i] = upscaled.pixels[3 * i]
        pixels[3 * i + 1] = upscaled.pixels[3 * i + 1]
        pixels[3 * i + 2] = upscaled.pixels[3 * i + 2]
    }
    return RGBImage(validatedWidth: original.width, height: original.height, pixels: pixels)
}
