/// How strongly each pixel of a photo is marked for editing, 0 (keep) to 255 (edit), before
/// it is cut at a threshold into an ``EditMask``. The soft values are kept for a feathered
/// paste-back (``pasteWeights(mask:soft:threshold:feather:)``).
///
/// The mask rules (README, "Masks"):
/// - A mask image without transparency: its brightness (the red channel, as in the
///   reference; grey masks have R = G = B) — white edits, black keeps.
/// - A mask image with transparency: its alpha (transparent edits, opaque keeps: the
///   convention of hosted image-edit APIs) only where the alpha is the drawing
///   (``MaskChannel/auto``): its visible colours are uniform (a layer erased where it should
///   change) or are not black and white (a photo with the region erased). A black-and-white
///   drawing that also has transparent pixels (a stray transparent strip), or whose
///   transparency marks nothing at the threshold (alpha 250 everywhere), is read by its
///   brightness as it shows on black: a transparent pixel keeps, whatever colour it hides.
///   ``note`` says which rule applied and how to choose the other. `--mask-from brightness`
///   reads the colour channel as it is, hidden colours included.
/// - No mask image, a photo with transparency: the photo's transparent area is edited.
/// - A mask of another pixel size with the photo's aspect ratio is resized to the photo
///   (Lanczos on the soft values), so that everything after works at the photo's size.
public struct SoftMask: Sendable, Hashable {
    /// Which rule made the mask.
    public enum Origin: String, Codable, Sendable {
        case brightness
        case maskTransparency = "mask-transparency"
        case photoTransparency = "photo-transparency"
    }

    public let width: Int
    public let height: Int
    /// One value per pixel, row-major: 255 = edit, 0 = keep.
    public let values: [UInt8]
    public let origin: Origin
    /// Where the mask came from, for messages.
    public let source: String
    /// Why ``origin``'s rule was applied to a mask image with transparency, and how to choose
    /// the other (`--mask-from`); nil when there was no choice to make.
    public let note: SettingMessage?
    /// The other rule (brightness for transparency, transparency for brightness) would mark
    /// some pixel of the mask image at the threshold it was read with: worth suggesting when
    /// this one marks nothing.
    public private(set) var otherRuleMarks = false
    /// Read by brightness as asked (`--mask-from brightness`, which reads hidden colours too):
    /// how many pixels of the mask image are transparent (alpha below half) yet marked by the
    /// colour an image editor hides under them — a drawing on a transparent layer whose empty
    /// pixels are white. 0 otherwise.
    public private(set) var hiddenColourMarks = 0

    public init(width: Int, height: Int, values: [UInt8], origin: Origin = .brightness, source: String = "mask",
                note: SettingMessage? = nil) throws {
        try ImageSize(width: width, height: height).validate("SoftMask")
        guard values.count == width * height else {
            throw ImageError.pixelCountMismatch(width: width, height: height, byteCount: values.count)
        }
        self.width = width
        self.height = height
        self.values = values
        self.origin = origin
        self.source = source
        self.note = note
    }

    /// The mask in a PNG or JPEG file, for a photo of `photoSize` (see the rules above).
    /// A file declaring more than `maximumPixels` is refused from its header, before decoding.
    /// - Throws: ``ImageError`` for an unreadable file (``ImageError/exceedsPixelLimit(source:width:height:limit:)``
    ///   over the limit), ``MaskError/aspectMismatch(mask:image:)``.
    public init(contentsOf path: String, photoSize: ImageSize, channel: MaskChannel = .auto, threshold: Float = 0.5,
                maximumPixels: Int = ImageSize.defaultMaximumDecodedPixels) throws {
        try self.init(maskImage: Photo(contentsOf: path, maximumPixels: maximumPixels), photoSize: photoSize, source: path,
                      channel: channel, threshold: threshold)
    }

    /// The mask a decoded mask image describes, for a photo of `photoSize`: read by `channel`
    /// (``MaskChannel/auto``: the rules above, which need the `threshold` the mask is cut at).
    public init(maskImage: Photo, photoSize: ImageSize, source: String = "mask", channel: MaskChannel = .auto,
                threshold: Float = 0.5) throws {
        try EditMask.checkAspectRatio(mask: maskImage.size, image: photoSize)
        let (origin, note) = SoftMask.rule(for: maskImage, source: source, channel: channel, threshold: threshold)
        let values: [UInt8]
        switch origin {
        case .maskTransparency:
            values = maskImage.alpha.map { $0.map { 255 - $0 } } ?? [UInt8](repeating: 0, count: maskImage.size.pixelCount)
        default:
            if channel == .auto, let alpha = maskImage.alpha {
                // The drawing as it shows on black: a transparent pixel keeps, whatever colour
                // it hides (an editor shows none), a half-transparent one counts half.
                values = (0..<maskImage.size.pixelCount).map {
                    UInt8((Int(maskImage.image.pixels[3 * $0]) * Int(alpha[$0]) + 127) / 255)
                }
            } else {
                values = (0..<maskImage.size.pixelCount).map { maskImage.image.pixels[3 * $0] }
            }
        }
        let native = try SoftMask(width: maskImage.size.width, height: maskImage.size.height, values: values,
                                  origin: origin, source: source, note: note)
        self = try native.resized(to: photoSize)
        let cut = threshold * 255
        switch origin {
        case .maskTransparency:
            otherRuleMarks = (0..<maskImage.size.pixelCount).contains { Float(maskImage.image.pixels[3 * $0]) > cut }
        default:
            otherRuleMarks = maskImage.alpha?.contains { Float(255 - $0) > cut } ?? false
            if channel == .brightness, let alpha = maskImage.alpha {
                hiddenColourMarks = alpha.indices.filter { alpha[$0] < 128 && Float(maskImage.image.pixels[3 * $0]) > cut }.count
            }
        }
    }

    /// Which channel of `image` is the mask, and why (nil: no choice to make).
    static func rule(for image: Photo, source: String, channel: MaskChannel, threshold: Float) -> (Origin, SettingMessage?) {
        switch channel {
        case .brightness:
            guard let lowest = image.alpha?.min(), lowest < 255 else { return (.brightness, nil) }
            return (.brightness, "\(source) is partly transparent (lowest alpha \(lowest) of 255); its transparency is ignored and its"
                + " brightness is the mask (white = edit), as \(setting: "maskFrom", to: "brightness") asks")
        case .alpha:
            return (.maskTransparency, "\(source) is read by its transparency (transparent = edit, opaque = keep), as \(setting: "maskFrom", to: "alpha") asks")
        case .auto:
            break
        }
        guard let alpha = image.alpha else { return (.brightness, nil) }
        let cut = threshold * 255
        let marks = alpha.map { Float(255 - $0) > cut }
        let transparent = marks.reduce(0) { $0 + ($1 ? 1 : 0) }
        guard transparent > 0 else {
            return (.brightness, "\(source) is partly transparent (lowest alpha \(alpha.min()!) of 255), but no pixel is transparent"
                + " enough to mark anything at the \(percent(threshold)) threshold, so its brightness is the mask (white = edit);"
                + " \(setting: "maskFrom", to: "alpha") reads its transparency instead")
        }
        // The colours the user sees: those of the pixels the alpha keeps.
        var low: [UInt8] = [255, 255, 255], high: [UInt8] = [0, 0, 0]
        var visible = 0, midTones = 0, white = 0
        for i in 0..<marks.count where !marks[i] {
            visible += 1
            for c in 0..<3 {
                low[c] = min(low[c], image.image.pixels[3 * i + c])
                high[c] = max(high[c], image.image.pixels[3 * i + c])
            }
            let red = image.image.pixels[3 * i]
            if (26...229).contains(red) { midTones += 1 }
            if Float(red) > cut { white += 1 }
        }
        let uniform = (0..<3).allSatisfy { Int(high[$0]) - Int(low[$0]) <= 8 }
        let alphaRule = "its transparent pixels mark the region to edit (transparent = edit, opaque = keep)"
        if visible == 0 || uniform {
            return (.maskTransparency, "\(source): \(alphaRule), since its colours are uniform; \(setting: "maskFrom", to: "brightness") reads its"
                + " brightness instead")
        }
        if Double(midTones) < 0.1 * Double(visible) && white > 0 {
            return (.brightness, "\(source) is a black-and-white drawing with \(transparent) transparent pixel\(transparent == 1 ? "" : "s"):"
                + " its white is the mask (white = edit) as it shows on black, so its transparent pixels are kept, whatever colour they"
                + " hide; \(setting: "maskFrom", to: "alpha") reads the transparency instead")
        }
        return (.maskTransparency, "\(source): \(alphaRule), since its colours are not a black-and-white drawing;"
            + " \(setting: "maskFrom", to: "brightness") reads its brightness instead")
    }

    private static func percent(_ threshold: Float) -> String {
        let value = Double(threshold) * 100
        return value == value.rounded() ? "\(Int(value)) %" : String(format: "%.1f %%", value)
    }

    /// The transparent area of `photo` as the mask (fully transparent = 255).
    /// - Throws: ``MaskError/noTransparency(source:)`` when the photo has none.
    public init(transparencyOf photo: Photo, source: String) throws {
        guard let alpha = photo.alpha else { throw MaskError.noTransparency(source: source) }
        try self.init(width: photo.size.width, height: photo.size.height, values: alpha.map { 255 - $0 },
                      origin: .photoTransparency, source: source)
    }

    public var size: ImageSize { ImageSize(width: width, height: height) }

    /// The mask at `size`, its values resized with Lanczos (Pillow's) and rounded.
    public func resized(to size: ImageSize) throws -> SoftMask {
        guard size != self.size else { return self }
        let grey = RGBImage(validatedWidth: width, height: height, pixels: values.flatMap { [$0, $0, $0] })
        let resized = try grey.resizedLanczos(width: size.width, height: size.height)
        var mask = try SoftMask(width: size.width, height: size.height,
                                values: (0..<size.pixelCount).map { resized.pixels[3 * $0] }, origin: origin, source: source, note: note)
        mask.otherRuleMarks = otherRuleMarks
        mask.hiddenColourMarks = hiddenColourMarks
        return mask
    }

    /// Edit and keep swapped.
    public func inverted() -> SoftMask {
        // Cannot fail: same size and count.
        var mask = try! SoftMask(width: width, height: height, values: values.map { 255 - $0 }, origin: origin, source: source, note: note)
        mask.otherRuleMarks = otherRuleMarks
        mask.hiddenColourMarks = hiddenColourMarks
        return mask
    }

    /// The binary mask: a pixel is edited where its value exceeds `threshold` (0 to 1) of 255.
    /// A threshold of 0 is the reference's rule (any non-zero value edits).
    public func thresholded(_ threshold: Float) -> EditMask {
        let cut = threshold * 255
        return try! EditMask(width: width, height: height, isEdited: values.map { Float($0) > cut }, source: source)
    }

    /// The share of pixels that are neither near black nor near white (between 10 % and
    /// 90 %). A drawn mask, even a feathered one, has few; a photo given as a mask has many.
    public var midToneFraction: Double {
        Double(values.reduce(0) { $0 + ((26...229).contains($1) ? 1 : 0) }) / Double(max(values.count, 1))
    }
}

/// Which channel of a mask image marks the region to edit (`--mask-from`).
public enum MaskChannel: String, Codable, Sendable, CaseIterable {
    /// Brightness, or transparency where the transparency is the drawing (``SoftMask``'s rules).
    case auto
    /// White edits, black keeps; transparency ignored.
    case brightness
    /// Transparent edits, opaque keeps; colours ignored.
    case alpha
}
