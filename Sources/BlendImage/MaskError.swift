// Mask errors and notes name settings as SettingMessage parts, worded by each front end.
@_exported import BlendMessages

/// Errors about an edit mask, each saying how to fix the mask.
public enum MaskError: Error, Equatable, CustomStringConvertible {
    /// No pixel is marked for editing.
    case empty(source: String)
    /// No pixel is marked for editing under the rule that read the mask (see ``SoftMask``);
    /// `otherRule` is true when the image could be read by the other one (`--mask-from`).
    case nothingMarked(source: String, rule: SoftMask.Origin, otherRule: Bool)
    /// Every pixel is marked for editing, but the caller needs some background to keep.
    case full(source: String)
    /// Read by brightness, no pixel is brighter than the threshold (0 to 1), though some are
    /// not black: the brightest is `brightest` of 255.
    case belowThreshold(source: String, brightest: UInt8, threshold: Float)
    /// Read by brightness, every pixel is marked, `transparentPixels` of them only by the
    /// white an image editor hides under their transparency (a drawing on a transparent layer).
    case fullUnderTransparency(source: String, transparentPixels: Int)
    /// The mask's shape is not the photo's: it was drawn for another image (or rotated).
    case aspectMismatch(mask: ImageSize, image: ImageSize)
    /// The mask is not at the size an operation needs.
    case sizeMismatch(mask: ImageSize, expected: ImageSize, operation: String)
    /// No mask was given and the photo has no transparent pixels to take as one.
    case noTransparency(source: String)
    /// A `--region` box that does not lie inside the photo.
    case regionOutsidePhoto(region: PixelBox, image: ImageSize)
    /// A `--region` box that holds none of the mask's marked pixels (`marked`: their box).
    case nothingMarkedInRegion(source: String, region: PixelBox, marked: PixelBox)

    /// The command line's words (`--mask-from alpha`); ``message`` for another front end's.
    public var description: String { message.text(.commandLine) }

    /// The error with its settings as ``SettingName`` parts, for ``SettingMessage/text(_:)``.
    public var message: SettingMessage {
        switch self {
        case let .empty(source):
            return "\(source): the mask marks no pixel for editing (it is all black); paint the region to change in white"
        case let .nothingMarked(source, rule, otherRule):
            switch rule {
            case .brightness:
                return "\(source): the mask marks no pixel for editing: read by its brightness (white = edit), it is all black;"
                    + " paint the region to change in white" + (otherRule ? ", or read its transparency with \(setting: "maskFrom", to: "alpha")" as SettingMessage : "")
            case .maskTransparency:
                return "\(source): the mask marks no pixel for editing: read by its transparency (transparent = edit), no pixel"
                    + " is transparent enough to pass the threshold; erase the region to change" + (otherRule ? ", or read its white with \(setting: "maskFrom", to: "brightness")" as SettingMessage : "")
            case .photoTransparency:
                return "\(source): no mask was given and no pixel of the photo is transparent enough to edit (past the mask"
                    + " threshold): pass a mask image (white = edit) as \(setting: "mask"), or erase the region to change to transparency"
            }
        case let .belowThreshold(source, brightest, threshold):
            let percent = Double(threshold) * 100
            let cut = percent == percent.rounded() ? "\(Int(percent)) %" : "\(percent) %"
            return "\(source): the mask marks no pixel for editing: read by its brightness (white = edit), none is brighter than"
                + " the threshold of \(cut) (\(setting: "maskThreshold")); the brightest is \(Int(brightest)) of 255: paint the region to"
                + " change in white, or lower \(setting: "maskThreshold")"
        case let .full(source):
            return "\(source): the mask marks every pixel for editing, leaving no background to keep; paint the region"
                + " to keep in black"
        case let .fullUnderTransparency(source, transparentPixels):
            return "\(source): read by its brightness (white = edit), the mask marks every pixel for editing, leaving no background"
                + " to keep: its \(transparentPixels) transparent pixels are white underneath, a colour image editors hide (a drawing"
                + " on a transparent layer?); flatten it onto black so that only the region to change is white, or read its"
                + " transparency (\(setting: "maskFrom", to: "alpha")): with \(setting: "invertMask") too the drawing's opaque pixels are"
                + " edited, without it its transparent ones"
        case let .aspectMismatch(mask, image):
            return "the mask is \(mask) but the image is \(image): their shapes differ, so the mask was made for another"
                + " image (or one of them is rotated); make the mask from this image, at its size or scaled uniformly"
        case let .sizeMismatch(mask, expected, operation):
            return "\(operation): the mask is \(mask) but must be \(expected); load it with EditMask(image:size:) at that size"
        case let .noTransparency(source):
            return "\(source): no mask was given and the photo has no transparent pixels to edit; pass a mask image"
                + " (white = edit) as \(setting: "mask"), or erase the region to change to transparency"
        case let .nothingMarkedInRegion(source, region, marked):
            return "\(source): no marked pixel lies inside the region \(region) (x,y,width,height); the marked pixels lie in"
                + " \(marked): give \(setting: "region") a box that holds them, or \(setting: "region", to: "auto")"
        case let .regionOutsidePhoto(region, image):
            return "the region \(region) (x,y,width,height) does not fit inside the \(image) photo; give \(setting: "region") a box inside"
                + " it, or \(setting: "region", to: "auto")"
        }
    }
}
