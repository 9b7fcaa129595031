/// Errors about an edit mask, each saying how to fix the mask.
public enum MaskError: Error, Equatable, CustomStringConvertible {
    /// No pixel is marked for editing.
    case empty(source: String)
    /// Every pixel is marked for editing, but the caller needs some background to keep.
    case full(source: String)
    /// The mask's shape is not the photo's: it was drawn for another image (or rotated).
    case aspectMismatch(mask: ImageSize, image: ImageSize)
    /// The mask is not at the size an operation needs.
    case sizeMismatch(mask: ImageSize, expected: ImageSize, operation: String)

    public var description: String {
        switch self {
        case let .empty(source):
            return "\(source): the mask marks no pixel for editing (it is all black); paint the region to change in white"
                + " (or drop --invert-mask if you inverted it)"
        case let .full(source):
            return "\(source): the mask marks every pixel for editing, leaving no background to keep; paint the region"
                + " to keep in black (or use --invert-mask if the mask is inverted)"
        case let .aspectMismatch(mask, image):
            return "the mask is \(mask) but the image is \(image): their shapes differ, so the mask was made for another"
                + " image (or one of them is rotated); make the mask from this image, at its size or scaled uniformly"
        case let .sizeMismatch(mask, expected, operation):
            return "\(operation): the mask is \(mask) but must be \(expected); load it with EditMask(image:size:) at that size"
        }
    }
}
