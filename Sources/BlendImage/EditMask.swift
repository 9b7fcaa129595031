import BlendTensor

/// Which pixels of a photo may change: 1 inside the region to edit, 0 in the background.
///
/// Built as the reference builds `self.mask`: the mask image is converted to RGB (alpha
/// dropped, grey and palettes expanded), resized with nearest neighbour to the working size
/// if it differs, binarised with `value > 0.5` on the 0–255 bytes (so any non-zero value is
/// "edit"), optionally inverted, and then only the first (red) channel is used. A mask
/// painted in pure green or blue on black is therefore empty, as in the reference.
///
/// `blend edit` reads masks by the rules of ``SoftMask`` instead (a 50 % threshold,
/// transparency, resizing to the photo) and cuts them into an `EditMask` with
/// ``SoftMask/thresholded(_:)``; `EditMask(image:)` is the reference's rule, as a threshold of 0.
public struct EditMask: Sendable, Hashable {
    public let width: Int
    public let height: Int
    /// Row-major, one per pixel: true where the photo is edited.
    public let isEdited: [Bool]
    /// Where the mask came from, for error messages.
    public let source: String

    /// A mask from explicit values (`width * height` of them, row-major).
    public init(width: Int, height: Int, isEdited: [Bool], source: String = "mask") throws {
        try ImageSize(width: width, height: height).validate("EditMask")
        guard isEdited.count == width * height else {
            throw ImageError.pixelCountMismatch(width: width, height: height, byteCount: isEdited.count)
        }
        self.width = width
        self.height = height
        self.isEdited = isEdited
        self.source = source
    }

    /// The mask an image describes, resized with nearest neighbour (Pillow's) to `size`
    /// when given and different, and inverted when `inverted` is true.
    public init(image: RGBImage, size: ImageSize? = nil, inverted: Bool = false, source: String = "mask") throws {
        var image = image
        if let size, size != image.size {
            image = try image.resizedNearest(width: size.width, height: size.height)
        }
        let values = (0..<image.width * image.height).map { (image.pixels[3 * $0] > 0) != inverted }
        try self.init(width: image.width, height: image.height, isEdited: values, source: source)
    }

    /// The mask in a PNG or JPEG file (see ``init(image:size:inverted:source:)``).
    public init(contentsOf path: String, size: ImageSize? = nil, inverted: Bool = false) throws {
        let image = try RGBImage(contentsOf: path, alpha: .drop)
        try self.init(image: image, size: size, inverted: inverted, source: path)
    }

    public var size: ImageSize { ImageSize(width: width, height: height) }

    /// The number of pixels marked for editing.
    public var editedPixelCount: Int { isEdited.reduce(0) { $0 + ($1 ? 1 : 0) } }

    /// Edited and kept pixels swapped.
    public func inverted() -> EditMask {
        EditMask(unchecked: width, height, isEdited.map { !$0 }, source)
    }

    /// The mask at another size, by nearest neighbour (Pillow's), as the reference resizes
    /// mask images.
    public func resized(to size: ImageSize) throws -> EditMask {
        try EditMask(image: image(), size: size, source: source)
    }

    /// A `[1, 1, H, W]` float32 tensor: 1 where edited, 0 elsewhere.
    public func tensor() throws -> Tensor {
        try Tensor(shape: [1, 1, height, width], scalars: isEdited.map { $0 ? 1 : 0 })
    }

    /// The mask as an image: white where edited, black elsewhere (for contact sheets).
    public func image() -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: 3 * width * height)
        for (i, edited) in isEdited.enumerated() where edited {
            pixels[3 * i] = 255
            pixels[3 * i + 1] = 255
            pixels[3 * i + 2] = 255
        }
        return RGBImage(validatedWidth: width, height: height, pixels: pixels)
    }

    /// Throws ``MaskError/empty(source:)`` when nothing is marked for editing.
    public func requireEditedRegion() throws {
        guard isEdited.contains(true) else { throw MaskError.empty(source: source) }
    }

    /// Throws ``MaskError/full(source:)`` when nothing is left as background.
    public func requireBackground() throws {
        guard isEdited.contains(false) else { throw MaskError.full(source: source) }
    }

    /// Throws ``MaskError/aspectMismatch(mask:image:)`` unless a mask of size `mask` has the
    /// shape of an image of size `image`. The sizes may differ (a 512x512 mask fits a
    /// 256x256 photo; it is resized), but the aspect ratios must agree to within what
    /// rounding each side to whole pixels explains: one pixel at the smaller of the two.
    public static func checkAspectRatio(mask: ImageSize, image: ImageSize) throws {
        guard mask.width > 0, mask.height > 0, image.width > 0, image.height > 0 else {
            throw MaskError.aspectMismatch(mask: mask, image: image)
        }
        // Compare width/height ratios as a relative difference of cross products.
        let ratio = Double(mask.width * image.height) / Double(mask.height * image.width)
        let smallest = Double(min(mask.width, mask.height, image.width, image.height))
        guard abs(ratio - 1) <= 1 / smallest + 1e-9 else {
            throw MaskError.aspectMismatch(mask: mask, image: image)
        }
    }

    private init(unchecked width: Int, _ height: Int, _ isEdited: [Bool], _ source: String) {
        self.width = width
        self.height = height
        self.isEdited = isEdited
        self.source = source
    }
}
