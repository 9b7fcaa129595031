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
///
/// The hard-edged whole-photo case of ``pasteEdit(_:into:region:weights:)``.
public func pasteEdit(_ edit: RGBImage, into original: RGBImage, mask: EditMask) throws -> RGBImage {
    guard mask.size == original.size else {
        throw MaskError.sizeMismatch(mask: mask.size, expected: original.size, operation: "pasteEdit")
    }
    return try pasteEdit(edit, into: Photo(image: original), region: PixelBox(x: 0, y: 0, width: original.width, height: original.height),
                         weights: pasteWeights(mask: mask, feather: 0)).image
}

/// How much of the edit each photo pixel takes in a feathered paste-back, row-major at the
/// mask's size: exactly 0 outside `mask` (so those pixels stay the photo's, bit for bit)
/// and in (0, 1] inside it.
///
/// Inside the mask the weight is the smaller of
/// - the feather: `2·b − 1`, where `b` is the mask blurred with a (2·`feather`+1)² box
///   (edges replicated, so the photo's border makes no seam). It is 1 from `feather`
///   pixels inside the mask's edge on and falls towards 0 at the edge: the edit fades into
///   the photo *inside* the mask. `feather` 0 gives 1 everywhere (a hard edge).
/// - the soft mask, when given: `(v/255 − threshold) / (0.9 − threshold)`, clamped to
///   [0, 1], so a feathered brush's own soft edge is honoured and values above 90 % (white,
///   with JPEG noise) take the whole edit.
public func pasteWeights(mask: EditMask, soft: SoftMask? = nil, threshold: Float = 0.5, feather: Int) -> [Float] {
    let width = mask.width, height = mask.height
    var weights = [Float](repeating: 0, count: width * height)
    var blurred = [Float](repeating: 1, count: width * height)
    if feather > 0 {
        blurred = mask.isEdited.map { $0 ? 1 : 0 }
        boxBlur(&blurred, width: width, height: height, radius: feather)
    }
    let softScale: Float = threshold < 0.9 ? 1 / (0.9 - threshold) : 0
    for i in 0..<weights.count where mask.isEdited[i] {
        var w = min(1, max(0, 2 * blurred[i] - 1))
        if let soft, softScale > 0 {
            w = min(w, min(1, max(0, (Float(soft.values[i]) / 255 - threshold) * softScale)))
        }
        // Every marked pixel takes some of the edit, however faint.
        weights[i] = max(w, 1 / 256)
    }
    return weights
}

/// Averages `values` over a (2r+1)² box, separably with running sums; outside the image
/// the edge values repeat.
func boxBlur(_ values: inout [Float], width: Int, height: Int, radius: Int) {
    func blurLines(count: Int, length: Int, index: (Int, Int) -> Int) {
        var line = [Float](repeating: 0, count: length)
        let scale = 1 / Float(2 * radius + 1)
        for l in 0..<count {
            for i in 0..<length { line[i] = values[index(l, i)] }
            var sum: Float = 0
            for k in -radius...radius { sum += line[min(max(k, 0), length - 1)] }
            for i in 0..<length {
                values[index(l, i)] = sum * scale
                sum += line[min(i + radius + 1, length - 1)] - line[max(i - radius, 0)]
            }
        }
    }
    blurLines(count: height, length: width) { $0 * width + $1 }
    blurLines(count: width, length: height) { $1 * width + $0 }
}

/// The edit of `region` put back into the full-resolution `photo`, pixel by pixel with
/// `weights` (from ``pasteWeights(mask:soft:threshold:feather:)``, at the photo's size):
/// `round(photo·(1 − w) + edit·w)`. Where w is 0 the pixel, and its alpha, stay the photo's
/// bit for bit; the alpha of edited pixels moves towards opaque by the same weight, since
/// the model paints solid colour. The colour profile is kept.
///
/// - Parameters:
///   - edit: the model's output for the region, any size (resized to the region's with Lanczos).
///   - region: where the edit goes, inside the photo.
/// - Throws: ``MaskError/sizeMismatch(mask:expected:operation:)`` if `weights` is not one per
///   photo pixel, ``MaskError/regionOutsidePhoto(region:image:)`` for a region outside it.
public func pasteEdit(_ edit: RGBImage, into photo: Photo, region: PixelBox, weights: [Float]) throws -> Photo {
    let width = photo.size.width
    guard weights.count == photo.size.pixelCount else {
        throw MaskError.sizeMismatch(mask: ImageSize(width: weights.count, height: 1), expected: photo.size, operation: "pasteEdit weights")
    }
    guard region.x >= 0, region.y >= 0, region.width >= 1, region.height >= 1,
          region.x + region.width <= width, region.y + region.height <= photo.size.height else {
        throw MaskError.regionOutsidePhoto(region: region, image: photo.size)
    }
    let upscaled = try edit.resizedLanczos(width: region.width, height: region.height)
    var pixels = photo.image.pixels
    var alpha = photo.alpha
    for ry in 0..<region.height {
        for rx in 0..<region.width {
            let i = (region.y + ry) * width + region.x + rx
            let w = weights[i]
            guard w > 0 else { continue }
            let e = 3 * (ry * region.width + rx)
            for c in 0..<3 {
                let blended = Float(pixels[3 * i + c]) * (1 - w) + Float(upscaled.pixels[e + c]) * w
                pixels[3 * i + c] = UInt8(min(255, max(0, blended.rounded())))
            }
            if let a = alpha?[i] { alpha![i] = UInt8(min(255, (Float(a) * (1 - w) + 255 * w).rounded())) }
        }
    }
    return try Photo(image: RGBImage(validatedWidth: width, height: photo.size.height, pixels: pixels),
                     alpha: alpha, colorProfile: photo.colorProfile)
}

extension Photo {
    /// The colours as a viewer shows them over `background` (alpha applied); the image
    /// itself when the photo is opaque. What the model is given for a photo with
    /// transparency, so the colour hidden under transparent pixels does not steer the edit.
    public func flattened(over background: RGBColor) -> RGBImage {
        guard let alpha else { return image }
        var rgba = [UInt8](repeating: 0, count: 4 * alpha.count)
        for i in 0..<alpha.count {
            rgba[4 * i] = image.pixels[3 * i]
            rgba[4 * i + 1] = image.pixels[3 * i + 1]
            rgba[4 * i + 2] = image.pixels[3 * i + 2]
            rgba[4 * i + 3] = alpha[i]
        }
        return RGBImage(validatedWidth: image.width, height: image.height,
                        pixels: RGBImage.removeAlpha(rgba, .composite(over: background)))
    }
}
