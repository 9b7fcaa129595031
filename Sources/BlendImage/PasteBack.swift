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
/// - the feather: `d / T`, where `d` is the pixel's depth inside the mask (its Chebyshev
///   distance to the nearest kept pixel: 1 on the mask's edge; pixels beyond the photo's
///   border count as marked, so the border makes no seam), capped at `feather + 1`, and `T`
///   the largest capped depth within `feather` pixels of it. Deep inside a large region this
///   is a ramp from `1/(feather+1)` on the edge to 1 at `feather` pixels in: the edit fades
///   into the photo *inside* the mask. Where the marked area is narrower than
///   `2·feather + 1` pixels, `T` is its own half-width, so the fade shortens to what the
///   area allows and its middle still takes the whole edit: a feather never fades a small
///   mark away (every marked pixel takes at least `1/(feather+1)`; see ``FeatherFit``).
///   `feather` 0 gives 1 everywhere (a hard edge).
/// - the soft mask, when given: `(v/255 − threshold) / (0.9 − threshold)`, clamped to
///   [0, 1], so a feathered brush's own soft edge is honoured and values above 90 % (white,
///   with JPEG noise) take the whole edit.
public func pasteWeights(mask: EditMask, soft: SoftMask? = nil, threshold: Float = 0.5, feather: Int) -> [Float] {
    let width = mask.width, height = mask.height
    var weights = [Float](repeating: 0, count: width * height)
    let depth = cappedDepths(mask, cap: feather + 1)
    var reach = depth
    if feather > 0 { maxFilter(&reach, width: width, height: height, radius: feather) }
    let softScale: Float = threshold < 0.9 ? 1 / (0.9 - threshold) : 0
    for i in 0..<weights.count where mask.isEdited[i] {
        // depth ≤ reach: the pixel is inside its own window.
        var w = Float(depth[i]) / Float(reach[i])
        if let soft, softScale > 0 {
            w = min(w, min(1, max(0, (Float(soft.values[i]) / 255 - threshold) * softScale)))
        }
        // Every marked pixel takes some of the edit, however faint.
        weights[i] = max(w, 1 / 256)
    }
    return weights
}

/// How a feather fits a mask's marked areas: those narrower than `2·feather + 1` pixels get
/// a shorter fade (``pasteWeights(mask:soft:threshold:feather:)``), which a front end
/// reports.
public struct FeatherFit: Sendable, Equatable {
    /// The mask's connected marked areas (``MarkedAreas``).
    public var areas: Int
    /// Areas narrower than `2·feather + 1` pixels, whose fade is shortened.
    public var narrowAreas: Int
    /// The width in pixels of the narrowest area, measured through its deepest pixels: the
    /// shorter of the row and the column of marked pixels through each, the least of those
    /// (a 6-pixel-wide mark is 6, a 5-pixel one 5, a 1-pixel stroke 1); nil without areas.
    public var narrowestWidth: Int?
    /// The other areas with a part narrower than `2·feather + 1` pixels (a thin arm of a broad
    /// mark), whose fade is shortened there only.
    public var narrowInPlaces = 0
    /// The width of the thinnest such part, measured as ``narrowestWidth`` is, through its
    /// deepest pixels; nil without one.
    public var thinnestPartWidth: Int?

    public init(areas: Int, narrowAreas: Int, narrowestWidth: Int?, narrowInPlaces: Int = 0, thinnestPartWidth: Int? = nil) {
        self.areas = areas
        self.narrowAreas = narrowAreas
        self.narrowestWidth = narrowestWidth
        self.narrowInPlaces = narrowInPlaces
        self.thinnestPartWidth = thinnestPartWidth
    }

    /// The fit of `feather` (pixels) to `mask`.
    public init(mask full: EditMask, feather: Int) {
        // Measured on the marked pixels' box and a 1-pixel ring around it (clamped to the
        // image): the ring is kept pixels (the box is tight) or the image's border, so every
        // depth and every area is the full mask's, at the size of the mark rather than of the photo.
        guard let box = full.boundingBox else {
            (areas, narrowAreas, narrowestWidth) = (0, 0, nil)
            return
        }
        let x0 = max(0, box.x - 1), y0 = max(0, box.y - 1)
        let ring = PixelBox(x: x0, y: y0, width: min(full.width, box.x + box.width + 1) - x0,
                            height: min(full.height, box.y + box.height + 1) - y0)
        let mask = (try? full.cropped(to: ring)) ?? full
        let depth = cappedDepths(mask, cap: feather + 1)
        let marked = MarkedAreas(mask)
        let width = mask.width, height = mask.height
        let (rowRun, columnRun) = marked.runLengths()
        var deepest = [Int32](repeating: 0, count: marked.count)
        for i in 0..<marked.labels.count where marked.labels[i] >= 0 {
            deepest[Int(marked.labels[i])] = max(deepest[Int(marked.labels[i])], depth[i])
        }
        var across = [Int32](repeating: .max, count: marked.count)
        for i in 0..<marked.labels.count where marked.labels[i] >= 0 && depth[i] == deepest[Int(marked.labels[i])] {
            let area = Int(marked.labels[i])
            across[area] = min(across[area], rowRun[i], columnRun[i])
        }
        areas = marked.count
        narrowAreas = feather > 0 ? deepest.filter { $0 < feather + 1 }.count : 0
        narrowestWidth = across.min().map(Int.init)
        // Parts of the broad areas where the fade is shortened: the pixels whose window (the
        // paste's `reach`) holds no pixel `feather + 1` deep, measured through their deepest.
        guard feather > 0 else { return }
        var reach = depth
        maxFilter(&reach, width: width, height: height, radius: feather)
        let thin = (0..<marked.labels.count).filter {
            marked.labels[$0] >= 0 && deepest[Int(marked.labels[$0])] >= feather + 1 && reach[$0] < feather + 1
        }
        narrowInPlaces = Set(thin.map { marked.labels[$0] }).count
        // Measured through the deepest of those pixels, as an area's width is (not across a
        // ragged edge, whose runs are short).
        if let deepestThin = thin.map({ depth[$0] }).max() {
            thinnestPartWidth = Int(thin.filter { depth[$0] == deepestThin }.map { min(rowRun[$0], columnRun[$0]) }.min()!)
        }
    }
}

/// Each marked pixel's Chebyshev distance to the nearest kept pixel (1 next to one), capped
/// at `cap`; 0 for kept pixels. Outside the mask counts as marked. Two chamfer passes with
/// every one of the 8 neighbours at distance 1, which is exact for the Chebyshev metric.
func cappedDepths(_ mask: EditMask, cap: Int) -> [Int32] {
    let width = mask.width, height = mask.height, cap = Int32(max(cap, 1))
    var depth = mask.isEdited.map { $0 ? cap : 0 }
    for y in 0..<height {
        for x in 0..<width where depth[y * width + x] > 0 {
            var d = depth[y * width + x]
            if x > 0 { d = min(d, depth[y * width + x - 1] + 1) }
            if y > 0 {
                for nx in max(0, x - 1)...min(width - 1, x + 1) { d = min(d, depth[(y - 1) * width + nx] + 1) }
            }
            depth[y * width + x] = d
        }
    }
    for y in stride(from: height - 1, through: 0, by: -1) {
        for x in stride(from: width - 1, through: 0, by: -1) where depth[y * width + x] > 0 {
            var d = depth[y * width + x]
            if x < width - 1 { d = min(d, depth[y * width + x + 1] + 1) }
            if y < height - 1 {
                for nx in max(0, x - 1)...min(width - 1, x + 1) { d = min(d, depth[(y + 1) * width + nx] + 1) }
            }
            depth[y * width + x] = d
        }
    }
    return depth
}

/// The largest value in each pixel's (2r+1)² window (clipped to the image): separably, a
/// sliding-window maximum along rows and then columns (a monotonic queue of indices), so the
/// cost does not grow with `radius`. The maximum over a square is the maximum over its
/// rows' maxima, so the two passes give exactly the 2-D window's maximum.
func maxFilter(_ values: inout [Int32], width: Int, height: Int, radius: Int) {
    func filterLines(count: Int, length: Int, index: (Int, Int) -> Int) {
        var line = [Int32](repeating: 0, count: length)
        var queue = [Int](repeating: 0, count: length)
        for l in 0..<count {
            for i in 0..<length { line[i] = values[index(l, i)] }
            var head = 0, tail = 0, next = 0
            for i in 0..<length {
                // Admit everything up to i + radius; drop what left the window on the left.
                while next < length && next <= i + radius {
                    while tail > head && line[queue[tail - 1]] <= line[next] { tail -= 1 }
                    queue[tail] = next; tail += 1; next += 1
                }
                while queue[head] < i - radius { head += 1 }
                values[index(l, i)] = line[queue[head]]
            }
        }
    }
    filterLines(count: height, length: width) { $0 * width + $1 }
    filterLines(count: width, length: height) { $1 * width + $0 }
}

/// The edit of `region` put back into the full-resolution `photo`, pixel by pixel with
/// `weights` (from ``pasteWeights(mask:soft:threshold:feather:)``, at the photo's size).
///
/// Where w is 0 the pixel, and its alpha, stay the photo's bit for bit. Where w > 0 the pixel
/// was asked to be filled, so it becomes opaque, and the feather blends colour, not coverage:
/// `round(photo·(1 − w′) + edit·w′)` with `w′ = 1 − (1 − w)·α` (α the photo's opacity, 0 to 1),
/// so the photo contributes only as much of its colour as was visible — a transparent pixel
/// (a cut-out's hole) takes the edit's colour whole, an opaque one fades by w. A photo with
/// 16-bit samples (``Photo/deep``) is blended at 16 bits (the edit's 8-bit values scaled by
/// 257), so its untouched pixels keep all 16. The colour profile is kept.
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
    var deep = photo.deep
    for ry in 0..<region.height {
        for rx in 0..<region.width {
            let i = (region.y + ry) * width + region.x + rx
            let w = weights[i]
            guard w > 0 else { continue }
            let e = 3 * (ry * region.width + rx)
            let opacity = alpha.map { Float($0[i]) / 255 } ?? 1
            let cover = 1 - (1 - w) * opacity
            for c in 0..<3 {
                let blended = Float(pixels[3 * i + c]) * (1 - cover) + Float(upscaled.pixels[e + c]) * cover
                pixels[3 * i + c] = UInt8(min(255, max(0, blended.rounded())))
            }
            if alpha != nil { alpha![i] = 255 }
            if deep != nil {
                let deepOpacity = deep!.alpha.map { Float($0[i]) / 65535 } ?? 1
                let deepCover = 1 - (1 - w) * deepOpacity
                for c in 0..<3 {
                    let blended = Float(deep!.rgb[3 * i + c]) * (1 - deepCover) + Float(upscaled.pixels[e + c]) * 257 * deepCover
                    deep!.rgb[3 * i + c] = UInt16(min(65535, max(0, blended.rounded())))
                }
                if deep!.alpha != nil { deep!.alpha![i] = 65535 }
            }
        }
    }
    return try Photo(image: RGBImage(validatedWidth: width, height: photo.size.height, pixels: pixels),
                     alpha: alpha, colorProfile: photo.colorProfile, deep: deep)
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
