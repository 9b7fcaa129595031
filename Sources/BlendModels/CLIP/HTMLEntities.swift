/// HTML character references ("&amp;", "&eacute;", "&#39;", "&#x27;"), decoded the two ways
/// CLIP's text clean-up decodes them, so that prompts containing them give the reference's tokens.
///
/// - `decodeLenient` follows the HTML5 parsing rules, as Python's `html.unescape` does: named
///   references of the HTML5 list; the 106 legacy names also without their semicolon, and as a
///   prefix ("&notit" is "¬it"); decimal and hex references with or without the semicolon, where
///   0x80–0x9F mean their Windows-1252 characters and invalid code points give U+FFFD or nothing.
/// - `decodeStrict` is ftfy's more careful pass: only references closed by a semicolon, plus
///   all-caps spellings of lowercase names that are not names themselves ("&EACUTE;" is "É").
///
/// Text is handled as Unicode scalars throughout: the reference works on code points, and
/// Swift's `Character` would merge a combining mark into the character before it.
enum HTMLEntities {
    /// Named references by name as written after "&" (with its ";" when it has one).
    static let named: [String: [Unicode.Scalar]] = {
        var table: [String: [Unicode.Scalar]] = [:]
        table.reserveCapacity(2_300)
        for line in namedReferenceTable.split(separator: "\n") {
            let fields = line.split(separator: " ")
            table[String(fields[0])] = fields.dropFirst().map { Unicode.Scalar(UInt32($0, radix: 16)!)! }
        }
        return table
    }()

    /// ftfy's table: names that end in ";", and the all-caps spellings (upper-cased values) of
    /// lowercase names whose all-caps spelling the lenient rules would leave alone.
    static let strictNamed: [String: [Unicode.Scalar]] = {
        var table: [String: [Unicode.Scalar]] = [:]
        for (name, value) in named where name.hasSuffix(";") {
            table[name] = value
            let upper = name.uppercased()
            guard upper != name, name == name.lowercased() else { continue }
            let reference = Array(("&" + upper).unicodeScalars)
            if decodeLenient(reference) == reference {
                let text = String(String.UnicodeScalarView(value))
                table[upper] = Array(text.uppercased().unicodeScalars)
            }
        }
        return table
    }()

    // MARK: - Lenient (Python's html.unescape)

    static func decodeLenient(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard text.contains("&") else { return text }
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            if text[i] == "&", let (value, end) = lenientReference(in: text, at: i) {
                out.append(contentsOf: value)
                i = end
            } else {
                out.append(text[i])
                i += 1
            }
        }
        return out
    }

    /// The reference starting at the "&" at `start`, and where it ends; nil when none starts there.
    private static func lenientReference(in text: [Unicode.Scalar], at start: Int) -> ([Unicode.Scalar], Int)? {
        var i = start + 1
        guard i < text.count else { return nil }
        if text[i] == "#" {
            i += 1
            var radix: UInt32 = 10
            var digitsEnd = i
            while digitsEnd < text.count, text[digitsEnd].isASCIIDigit { digitsEnd += 1 }
            if digitsEnd == i {
                // Not decimal: "#x" or "#X" and at least one hex digit, or no reference at all.
                guard i < text.count, text[i] == "x" || text[i] == "X" else { return nil }
                i += 1
                digitsEnd = i
                while digitsEnd < text.count, text[digitsEnd].hexDigitValue != nil { digitsEnd += 1 }
                guard digitsEnd > i else { return nil }
                radix = 16
            }
            // Saturate: any value past the last code point decodes the same way.
            var value: UInt32 = 0
            for digit in text[i..<digitsEnd] {
                value = min(value * radix + digit.hexDigitValue!, 0x11_0000)
            }
            var end = digitsEnd
            if end < text.count, text[end] == ";" { end += 1 }
            return (numericReference(value), end)
        }

        // A name: up to 32 scalars other than tab, line feed, form feed, space, "<", "&", "#", ";".
        var nameEnd = i
        while nameEnd < text.count, nameEnd - i < 32, !text[nameEnd].endsLenientName { nameEnd += 1 }
        guard nameEnd > i else { return nil }
        var end = nameEnd
        if end < text.count, text[end] == ";" { end += 1 }
        let name = Array(text[i..<end])
        if let value = lookUp(name[...]) { return (value, end) }
        // A legacy name (they have no semicolon) as a prefix: the longest of two scalars or more.
        var length = name.count - 1
        while length >= 2 {
            if let value = lookUp(name[0..<length]) {
                return (value + name[length...], end)
            }
            length -= 1
        }
        return (["&"] + name, end)
    }

    /// The value of a named reference. Names are ASCII: comparing scalars, not `String`s, keeps
    /// canonically equivalent spellings such as U+212A KELVIN SIGN for "K" from matching.
    private static func lookUp(_ name: ArraySlice<Unicode.Scalar>) -> [Unicode.Scalar]? {
        guard name.allSatisfy(\.isASCII) else { return nil }
        return named[String(String.UnicodeScalarView(name))]
    }

    /// A numeric reference's value (`code` saturated at 0x110000), by the HTML5 rules.
    static func numericReference(_ code: UInt32) -> [Unicode.Scalar] {
        if code == 0 { return ["\u{FFFD}"] }
        if code == 0x0D { return ["\r"] }
        if (0x80...0x9F).contains(code) { return [windows1252(UInt8(code))] }
        if (0xD800...0xDFFF).contains(code) || code > 0x10_FFFF { return ["\u{FFFD}"] }
        let controls = (0x01...0x08).contains(code) || code == 0x0B || (0x0E...0x1F).contains(code) || code == 0x7F
        let nonCharacter = (0xFDD0...0xFDEF).contains(code) || code & 0xFFFE == 0xFFFE
        if controls || nonCharacter { return [] }
        return [Unicode.Scalar(code)!]
    }

    /// The Windows-1252 character of a byte in 0x80–0x9F, where it names one; the five bytes
    /// it leaves undefined stand for themselves. Browsers read C1 references this way, and ftfy
    /// reads stray C1 control characters this way too.
    static func windows1252(_ byte: UInt8) -> Unicode.Scalar {
        let table: [UInt32] = [
            0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
            0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D, 0x017D, 0x8F,
            0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
            0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
        ]
        guard (0x80...0x9F).contains(byte) else { return Unicode.Scalar(byte) }
        return Unicode.Scalar(table[Int(byte) - 0x80])!
    }

    // MARK: - Strict (ftfy)

    static func decodeStrict(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard text.contains("&") else { return text }
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            guard text[i] == "&", let end = strictReferenceEnd(in: text, at: i) else {
                out.append(text[i])
                i += 1
                continue
            }
            let reference = Array(text[i..<end])
            if reference[1] == "#" {
                // A numeric reference counts only when the lenient rules decode all of it.
                let value = decodeLenient(reference)
                out.append(contentsOf: value.contains(";") ? reference : value)
            } else if let value = strictNamed[String(String.UnicodeScalarView(reference.dropFirst()))] {
                out.append(contentsOf: value)
            } else {
                out.append(contentsOf: reference)
            }
            i = end
        }
        return out
    }

    /// The end of "&", an optional "#", 1 to 24 ASCII letters or digits and ";" at `start`.
    private static func strictReferenceEnd(in text: [Unicode.Scalar], at start: Int) -> Int? {
        var i = start + 1
        if i < text.count, text[i] == "#" { i += 1 }
        let nameStart = i
        while i < text.count, i - nameStart < 24, text[i].isASCIIAlphanumeric { i += 1 }
        guard i > nameStart, i < text.count, text[i] == ";" else { return nil }
        return i + 1
    }
}

extension Unicode.Scalar {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
    var isASCIIAlphanumeric: Bool { isASCIIDigit || ("a"..."z").contains(self) || ("A"..."Z").contains(self) }
    /// The value of an ASCII hex digit.
    var hexDigitValue: UInt32? {
        switch self {
        case "0"..."9": return value - 0x30
        case "a"..."f": return value - 0x61 + 10
        case "A"..."F": return value - 0x41 + 10
        default: return nil
        }
    }
    fileprivate var endsLenientName: Bool {
        self == "\t" || self == "\n" || self == "\u{0C}" || self == " " || self == "<" || self == "&" || self == "#" || self == ";"
    }
}
