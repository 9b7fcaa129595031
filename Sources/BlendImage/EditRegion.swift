/// A rectangle of photo pixels: columns `x..<x+width`, rows `y..<y+height`.
public struct PixelBox: Codable, Sendable, Hashable, CustomStringConvertible {
    public var x: Int
    public var y: Int
    public var width: Int
    public var height: Int

    public init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }

    public var size: ImageSize { ImageSize(width: width, height: height) }

    /// `"X,Y,W,H"`, as `--region` takes it.
    public var description: String { "\(x),\(y),\(width),\(height)" }

    /// Whether pixel (`px`, `py`) lies inside.
    public func contains(x px: Int, y py: Int) -> Bool { px >= x && px < x + width && py >= y && py < y + height }
}

/// Which part of the photo the model edits (`--region`).
///
/// The diffusion model works on a small square (256x256). `full` squeezes the whole photo
/// into it, as the reference does; `auto` (the default) crops the mask's bounding box plus a
/// margin of context, grown to a square and clamped to the photo, so that a small object in
/// a large photo is edited at close to the photo's own resolution; `box` crops the given
/// rectangle. The crop is resized to the model's size, edited and pasted back.
public enum EditRegion: Sendable, Hashable, Codable, LosslessStringConvertible {
    case auto
    case full
    case box(PixelBox)

    /// Parses `auto`, `full` or `X,Y,W,H` (non-negative integers, W and H at least 1).
    public init?(_ description: String) {
        switch description.lowercased() {
        case "auto": self = .auto
        case "full": self = .full
        default:
            let parts = description.split(separator: ",", omittingEmptySubsequences: false)
                .map { Int($0.filter { $0 != " " }) }
            guard parts.count == 4, let x = parts[0], let y = parts[1], let w = parts[2], let h = parts[3],
                  x >= 0, y >= 0, w >= 1, h >= 1 else { return nil }
            self = .box(PixelBox(x: x, y: y, width: w, height: h))
        }
    }

    public var description: String {
        switch self {
        case .auto: return "auto"
        case .full: return "full"
        case let .box(box): return box.description
        }
    }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let region = EditRegion(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: "not a region (auto, full or X,Y,W,H): \(text)"))
        }
        self = region
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    /// The default context margin around a mask's bounding box: a quarter of its longer
    /// side on each side (so the model sees the object at about two thirds of its width),
    /// and at least 8 pixels.
    public static func defaultPadding(for box: PixelBox) -> Int {
        max(8, (max(box.width, box.height) + 2) / 4)
    }

    /// The rectangle of a photo of `photo` size to edit for `mask` (at the photo's size).
    ///
    /// `auto`: the mask's bounding box grown by `padding` (default ``defaultPadding(for:)``)
    /// on every side, made square (and at least `minimumSide` — the model's size — so the
    /// crop is not upscaled when the photo is large enough), centred on the box and shifted
    /// to lie inside the photo. A side longer than the photo's is cut to the photo's: then
    /// the region is not square and is resized to the model's square unevenly, as `full` is.
    ///
    /// - Throws: ``MaskError/empty(source:)`` for an empty mask (`auto`),
    ///   ``MaskError/regionOutsidePhoto(region:image:)`` for a box that does not fit the photo,
    ///   ``MaskError/sizeMismatch(mask:expected:operation:)`` if the mask is not the photo's size.
    public func resolve(mask: EditMask, photo: ImageSize, padding: Int? = nil, minimumSide: Int = 1) throws -> PixelBox {
        guard mask.size == photo else {
            throw MaskError.sizeMismatch(mask: mask.size, expected: photo, operation: "EditRegion.resolve")
        }
        switch self {
        case .full:
            return PixelBox(x: 0, y: 0, width: photo.width, height: photo.height)
        case let .box(box):
            guard box.x + box.width <= photo.width, box.y + box.height <= photo.height else {
                throw MaskError.regionOutsidePhoto(region: box, image: photo)
            }
            return box
        case .auto:
            guard let bounds = mask.boundingBox else { throw MaskError.empty(source: mask.source) }
            let margin = max(0, padding ?? EditRegion.defaultPadding(for: bounds))
            let side = max(max(bounds.width, bounds.height) + 2 * margin, minimumSide)
            let width = min(side, photo.width), height = min(side, photo.height)
            func place(_ start: Int, _ extent: Int, _ size: Int, _ limit: Int) -> Int {
                let centred = start + extent / 2 - size / 2
                return min(max(centred, 0), limit - size)
            }
            return PixelBox(x: place(bounds.x, bounds.width, width, photo.width),
                            y: place(bounds.y, bounds.height, height, photo.height), width: width, height: height)
        }
    }
}

extension EditMask {
    /// The smallest rectangle holding every edited pixel; nil when none is.
    public var boundingBox: PixelBox? {
        var minX = width, minY = height, maxX = -1, maxY = -1
        for y in 0..<height {
            for x in 0..<width where isEdited[y * width + x] {
                minX = min(minX, x); maxX = max(maxX, x)
                minY = min(minY, y); maxY = max(maxY, y)
            }
        }
        return maxX < 0 ? nil : PixelBox(x: minX, y: minY, width: maxX - minX + 1, height: maxY - minY + 1)
    }

    /// The part of the mask inside `box` (which must lie inside the mask).
    public func cropped(to box: PixelBox) throws -> EditMask {
        guard box.x >= 0, box.y >= 0, box.x + box.width <= width, box.y + box.height <= height else {
            throw MaskError.regionOutsidePhoto(region: box, image: size)
        }
        var values: [Bool] = []
        values.reserveCapacity(box.width * box.height)
        for y in box.y..<box.y + box.height { values += isEdited[(y * width + box.x)..<(y * width + box.x + box.width)] }
        return try EditMask(width: box.width, height: box.height, isEdited: values, source: source)
    }

    /// The mask with every pixel outside `box` kept (not edited).
    public func restricted(to box: PixelBox) -> EditMask {
        let values = isEdited.enumerated().map { $1 && box.contains(x: $0 % width, y: $0 / width) }
        return try! EditMask(width: width, height: height, isEdited: values, source: source)
    }
}

extension RGBImage {
    /// The part of the image inside `box` (which must lie inside the image).
    public func cropped(to box: PixelBox) throws -> RGBImage {
        guard box.x >= 0, box.y >= 0, box.width >= 1, box.height >= 1,
              box.x + box.width <= width, box.y + box.height <= height else {
            throw MaskError.regionOutsidePhoto(region: box, image: size)
        }
        var out: [UInt8] = []
        out.reserveCapacity(3 * box.width * box.height)
        for y in box.y..<box.y + box.height {
            out += pixels[3 * (y * width + box.x)..<3 * (y * width + box.x + box.width)]
        }
        return RGBImage(validatedWidth: box.width, height: box.height, pixels: out)
    }
}
