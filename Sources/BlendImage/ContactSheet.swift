/// A one-row overview image of an edit: source | mask | results, each with a caption
/// beneath it (e.g. `"#1 0.7123"`), on a plain background. Rendering is deterministic:
/// the same panels always give the same bytes.
public struct ContactSheet: Sendable {
    public struct Panel: Sendable {
        public var image: RGBImage
        public var caption: String

        public init(image: RGBImage, caption: String) {
            self.image = image
            self.caption = caption
        }
    }

    public var panels: [Panel]
    /// Every panel is scaled (Lanczos) to this height, keeping its aspect ratio.
    public var tileHeight: Int
    /// Space around and between tiles, in pixels.
    public var padding: Int
    /// Each font pixel is drawn as a `textScale`×`textScale` square.
    public var textScale: Int
    public var background: RGBColor
    public var textColor: RGBColor

    public init(panels: [Panel], tileHeight: Int = 256, padding: Int = 8, textScale: Int = 2,
                background: RGBColor = .white, textColor: RGBColor = .black) {
        self.panels = panels
        self.tileHeight = tileHeight
        self.padding = padding
        self.textScale = textScale
        self.background = background
        self.textColor = textColor
    }

    /// The usual sheet for an edit: the source photo, the mask, then the results in rank
    /// order captioned `#rank score` (score with four decimals).
    public init(source: RGBImage, mask: EditMask, results: [(image: RGBImage, score: Float)], tileHeight: Int = 256) {
        var panels = [Panel(image: source, caption: "source"), Panel(image: mask.image(), caption: "mask")]
        for (rank, result) in results.enumerated() {
            panels.append(Panel(image: result.image, caption: "#\(rank + 1) \(ContactSheet.format(result.score))"))
        }
        self.init(panels: panels, tileHeight: tileHeight)
    }

    /// `score` with exactly four decimals, computed without Foundation or locale: "0.7123".
    static func format(_ score: Float) -> String {
        guard score.isFinite else { return score.isNaN ? "nan" : (score > 0 ? "inf" : "-inf") }
        let scaled = (Double(score) * 10_000).rounded()
        let negative = scaled < 0
        let magnitude = Int(abs(scaled))
        let fraction = String(magnitude % 10_000)
        return (negative ? "-" : "") + "\(magnitude / 10_000)." + String(repeating: "0", count: 4 - fraction.count) + fraction
    }

    /// The sheet as an image.
    public func render() throws -> RGBImage {
        guard !panels.isEmpty else {
            throw ImageError.invalidSize(width: 0, height: 0, context: "ContactSheet with no panels")
        }
        guard tileHeight > 0, padding >= 0, textScale > 0 else {
            throw ImageError.invalidSize(width: tileHeight, height: textScale, context: "ContactSheet tile height and text scale")
        }
        let tiles = try panels.map { panel -> RGBImage in
            let image = panel.image
            // Round to nearest; never narrower than one pixel.
            let width = max(1, (image.width * tileHeight * 2 + image.height) / (2 * image.height))
            return try image.resizedLanczos(width: width, height: tileHeight)
        }
        let textHeight = BitmapFont.glyphHeight * textScale
        let captionGap = max(padding / 2, textScale)
        let sheetWidth = padding + tiles.reduce(0) { $0 + $1.width + padding }
        let sheetHeight = padding + tileHeight + captionGap + textHeight + padding
        var sheet = try RGBImage(width: sheetWidth, height: sheetHeight, filledWith: background)
        var x = padding
        for (tile, panel) in zip(tiles, panels) {
            sheet.draw(tile, atX: x, y: padding)
            // Captions are clipped to their tile's width so they never run into the next one.
            sheet.drawText(panel.caption, atX: x, y: padding + tileHeight + captionGap, scale: textScale,
                           color: textColor, clipWidth: tile.width)
            x += tile.width + padding
        }
        return sheet
    }

    /// Renders the sheet and writes it atomically (PNG or JPEG by the extension; PNG keeps
    /// the captions sharp).
    public func write(to path: String) throws {
        try render().write(to: path)
    }
}

extension RGBImage {
    /// Copies `image` with its top-left corner at (`x`, `y`); the parts outside are dropped.
    mutating func draw(_ image: RGBImage, atX x: Int, y: Int) {
        for row in 0..<image.height where (0..<height).contains(y + row) {
            for column in 0..<image.width where (0..<width).contains(x + column) {
                self[x + column, y + row] = image[column, row]
            }
        }
    }

    /// Draws one line of text in ``BitmapFont`` with its top-left corner at (`x`, `y`).
    mutating func drawText(_ text: String, atX x: Int, y: Int, scale: Int, color: RGBColor, clipWidth: Int) {
        let advance = (BitmapFont.glyphWidth + BitmapFont.spacing) * scale
        for (index, character) in text.enumerated() {
            let glyph = BitmapFont.glyph(character)
            for (row, bits) in glyph.enumerated() {
                for column in 0..<BitmapFont.glyphWidth where bits & (1 << (BitmapFont.glyphWidth - 1 - column)) != 0 {
                    for dy in 0..<scale {
                        for dx in 0..<scale {
                            let px = index * advance + column * scale + dx
                            let (tx, ty) = (x + px, y + row * scale + dy)
                            if px < clipWidth && (0..<width).contains(tx) && (0..<height).contains(ty) {
                                self[tx, ty] = color
                            }
                        }
                    }
                }
            }
        }
    }
}
