/// How strongly each pixel of a photo is marked for editing, 0 (keep) to 255 (edit), before
/// it is cut at a threshold into an ``EditMask``. The soft values are kept for a feathered
/// paste-back (``pasteWeights(mask:soft:threshold:feather:)``).
///
/// The mask rules (README, "Masks"):
/// - A mask image without transparency: its brightness (the red channel, as in the
///   reference; grey masks have R = G = B) — white edits, black keeps.
/// - A mask image with transparency (any pixel with alpha < 255): its alpha — transparent
///   edits, opaque keeps (the convention of hosted image-edit APIs); the colours are ignored.
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

    public init(width: Int, height: Int, values: [UInt8], origin: Origin = .brightness, source: String = "mask") throws {
        try ImageSize(width: width, height: height).validate("SoftMask")
        guard values.count == width * height else {
            throw ImageError.pixelCountMismatch(width: width, height: height, byteCount: values.count)
        }
        self.width = width
        self.height = height
        self.values = values
        self.origin = origin
        self.source = source
    }

    /// The mask in a PNG or JPEG file, for a photo of `photoSize` (see the rules above).
    /// A file declaring more than `maximumPixels` is refused from its header, before decoding.
    /// - Throws: ``ImageError`` for an unreadable file (``ImageError/exceedsPixelLimit(source:width:height:limit:)``
    ///   over the limit), ``MaskError/aspectMismatch(mask:image:)``.
    public init(contentsOf path: String, photoSize: ImageSize,
                maximumPixels: Int = ImageSize.defaultMaximumDecodedPixels) throws {
        try self.init(maskImage: Photo(contentsOf: path, maximumPixels: maximumPixels), photoSize: photoSize, source: path)
    }

    /// The mask a decoded mask image describes, for a photo of `photoSize`.
    public init(maskImage: Photo, photoSize: ImageSize, source: String = "mask") throws {
        try EditMask.checkAspectRatio(mask: maskImage.size, image: photoSize)
        let values: [UInt8], origin: Origin
        if let alpha = maskImage.alpha {
            values = alpha.map { 255 - $0 }
            origin = .maskTransparency
        } else {
            values = (0..<maskImage.size.pixelCount).map { maskImage.image.pixels[3 * $0] }
            origin = .brightness
        }
        let native = try SoftMask(width: maskImage.size.width, height: maskImage.size.height, values: values,
                                  origin: origin, source: source)
        self = try native.resized(to: photoSize)
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
        return try SoftMask(width: size.width, height: size.height,
                            values: (0..<size.pixelCount).map { resized.pixels[3 * $0] }, origin: origin, source: source)
    }

    /// Edit and keep swapped.
    public func inverted() -> SoftMask {
        // Cannot fail: same size and count.
        try! SoftMask(width: width, height: height, values: values.map { 255 - $0 }, origin: origin, source: source)
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
