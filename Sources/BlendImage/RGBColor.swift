/// One 8-bit sRGB pixel.
public struct RGBColor: Sendable, Hashable {
    public var red: UInt8
    public var green: UInt8
    public var blue: UInt8

    public init(red: UInt8, green: UInt8, blue: UInt8) {
        self.red = red
        self.green = green
        self.blue = blue
    }

    public init(grey: UInt8) {
        self.init(red: grey, green: grey, blue: grey)
    }

    public static let black = RGBColor(grey: 0)
    public static let white = RGBColor(grey: 255)
}
