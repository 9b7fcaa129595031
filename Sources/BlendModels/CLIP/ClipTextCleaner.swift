import Foundation

/// CLIP's text clean-up before tokenization, step for step as OpenAI's `SimpleTokenizer` does it:
/// ftfy's `fix_text`, HTML unescaping twice, trimming, whitespace runs to one space, lowercasing.
///
/// ftfy is reproduced except for its mojibake repair (`fix_encoding` and the steps it runs:
/// `restore_byte_a0`, `replace_lossy_sequences`, `decode_inconsistent_utf8`): text such as
/// "cafÃ©", UTF-8 that was decoded as Windows-1252, is tokenized as written here, where the
/// reference first turns it back into "café". That repair rests on ftfy's statistical heuristics
/// and codec tables; typed and pasted prompts are rarely mojibake. The result is exactly
/// `ftfy.fix_text(text, fix_encoding=False)`, which the fixture script checks prompt by prompt.
/// The other ftfy steps run in ftfy's order, and repeat until the text stops changing:
/// strict HTML unescaping (only before the first line that contains "<"), C1 controls read as
/// Windows-1252, Latin ligatures split, half/fullwidth forms to normal width, curly quotes
/// straightened, line breaks to "\n", terminal escapes and unwanted controls removed, NFC.
/// (ftfy's surrogate repair has nothing to do: a Swift string cannot hold a lone surrogate.
/// ftfy also cuts lines of over a million code points into pieces, which is not reproduced.)
///
/// Character data comes from the Swift runtime's Unicode tables. The reference takes case
/// mappings, NFC and `str.isspace` from Python's (Unicode 14.0 in Python 3.11) and letters and
/// numbers from the `regex` module's own; results differ only for text containing code points
/// assigned after Unicode 14.
enum ClipTextCleaner {
    /// The text the tokenizer splits: `whitespace_clean(basic_clean(text)).lower()`.
    static func clean(_ text: String) -> [Unicode.Scalar] {
        var scalars = fixText(Array(text.unicodeScalars))
        scalars = HTMLEntities.decodeLenient(HTMLEntities.decodeLenient(scalars))
        scalars = collapseWhitespace(strip(scalars[...]))
        return lowercased(strip(scalars[...]))
    }

    // MARK: - ftfy

    /// `ftfy.fix_text(text, fix_encoding=False)`.
    static func fixText(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        // ftfy fixes line by line (each line keeps its "\n"). Its "auto" HTML setting turns
        // unescaping off at the first line containing "<" (likely real HTML, whose entities are
        // meant literally) and, as ftfy is written, it stays off for the lines after it.
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        var unescape = true
        var lineStart = 0
        while lineStart < text.count {
            var lineEnd = lineStart
            while lineEnd < text.count, text[lineEnd] != "\n" { lineEnd += 1 }
            if lineEnd < text.count { lineEnd += 1 }
            var line = Array(text[lineStart..<lineEnd])
            if line.contains("<") { unescape = false }
            while true {
                let fixed = fixOnce(line, unescapeHTML: unescape)
                if fixed == line { break }
                line = fixed
            }
            out += line
            lineStart = lineEnd
        }
        return out
    }

    /// One round of ftfy's fixers, in its order.
    static func fixOnce(_ text: [Unicode.Scalar], unescapeHTML: Bool) -> [Unicode.Scalar] {
        var text = unescapeHTML ? HTMLEntities.decodeStrict(text) : text
        // C1 controls, ligatures, character width and quotes are one-scalar translations,
        // applied one after another to each scalar (a C1 quote becomes curly, then straight).
        var translated: [Unicode.Scalar] = []
        translated.reserveCapacity(text.count)
        for scalar in text {
            let c1Fixed = (0x80...0x9F).contains(scalar.value) ? HTMLEntities.windows1252(UInt8(scalar.value)) : scalar
            for letter in latinLigatures[c1Fixed] ?? [c1Fixed] {
                for narrow in normalWidth(letter) {
                    translated.append(straightQuote(narrow))
                }
            }
        }
        text = unifyLineBreaks(translated)
        text = removeTerminalEscapes(text)
        text.removeAll(where: isUnwantedControl)
        return nfc(text)
    }

    /// Single-character Latin ligatures and digraphs, split into their letters.
    private static let latinLigatures: [Unicode.Scalar: [Unicode.Scalar]] = [
        "\u{0132}": ["I", "J"], "\u{0133}": ["i", "j"], "\u{0149}": ["\u{02BC}", "n"],
        "\u{01F1}": ["D", "Z"], "\u{01F2}": ["D", "z"], "\u{01F3}": ["d", "z"],
        "\u{01C4}": ["D", "\u{017D}"], "\u{01C5}": ["D", "\u{017E}"], "\u{01C6}": ["d", "\u{017E}"],
        "\u{01C7}": ["L", "J"], "\u{01C8}": ["L", "j"], "\u{01C9}": ["l", "j"],
        "\u{01CA}": ["N", "J"], "\u{01CB}": ["N", "j"], "\u{01CC}": ["n", "j"],
        "\u{FB00}": ["f", "f"], "\u{FB01}": ["f", "i"], "\u{FB02}": ["f", "l"],
        "\u{FB03}": ["f", "f", "i"], "\u{FB04}": ["f", "f", "l"], "\u{FB05}": ["\u{017F}", "t"],
        "\u{FB06}": ["s", "t"],
    ]

    /// Halfwidth and fullwidth forms (U+FF01–U+FFEF) as their compatibility (NFKC) equivalents,
    /// and the ideographic space as a plain space.
    private static func normalWidth(_ scalar: Unicode.Scalar) -> [Unicode.Scalar] {
        if scalar == "\u{3000}" { return [" "] }
        guard (0xFF01...0xFFEF).contains(scalar.value) else { return [scalar] }
        return widthForms[Int(scalar.value - 0xFF01)]
    }

    private static let widthForms: [[Unicode.Scalar]] = (0xFF01...0xFFEF).map { code in
        let text = String(Unicode.Scalar(UInt32(code))!)
        return Array(text.precomposedStringWithCompatibilityMapping.unicodeScalars)
    }

    private static func straightQuote(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
        switch scalar.value {
        case 0x02BC, 0x2018...0x201B: return "'"
        case 0x201C...0x201F: return "\""
        default: return scalar
        }
    }

    /// CR LF, CR, LINE SEPARATOR, PARAGRAPH SEPARATOR and NEXT LINE to "\n".
    private static func unifyLineBreaks(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            switch text[i] {
            case "\r":
                out.append("\n")
                if i + 1 < text.count, text[i + 1] == "\n" { i += 1 }
            case "\u{2028}", "\u{2029}", "\u{85}":
                out.append("\n")
            default:
                out.append(text[i])
            }
            i += 1
        }
        return out
    }

    /// ANSI terminal escapes: ESC "[", decimal digits (any script) and ";", then an ASCII letter.
    private static func removeTerminalEscapes(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard text.contains("\u{1B}") else { return text }
        var out: [Unicode.Scalar] = []
        var i = 0
        while i < text.count {
            if text[i] == "\u{1B}", i + 1 < text.count, text[i + 1] == "[" {
                var j = i + 2
                while j < text.count, text[j] == ";" || text[j].properties.generalCategory == .decimalNumber { j += 1 }
                if j < text.count, ("a"..."z").contains(text[j]) || ("A"..."Z").contains(text[j]) {
                    i = j + 1
                    continue
                }
            }
            out.append(text[i])
            i += 1
        }
        return out
    }

    /// Controls ftfy removes: C0 controls other than tab, line feed, form feed and carriage return;
    /// DEL; deprecated Arabic format controls; interlinear annotation marks; the object
    /// replacement character; the byte order mark.
    private static func isUnwantedControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x08, 0x0B, 0x0E...0x1F, 0x7F, 0x206A...0x206F, 0xFEFF, 0xFFF9...0xFFFC: return true
        default: return false
        }
    }

    /// Unicode Normalization Form C, by the standard library's own normalizer (the one behind
    /// `String` comparison). Not Foundation's `precomposedStringWithCanonicalMapping`: on Linux
    /// it composes a supplementary-plane letter as the BMP letter with the same low 16 bits
    /// (U+20041 U+0301 becomes U+00C1 "Á"), which the fixtures catch.
    static func nfc(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        if text.allSatisfy(\.isASCII) { return text }
        let utf8 = String(String.UnicodeScalarView(text))._nfcCodeUnits
        return Array(String(decoding: utf8, as: UTF8.self).unicodeScalars)
    }

    // MARK: - Whitespace and case

    /// Python's `str.isspace`: Unicode White_Space plus the four ASCII information separators.
    private static func isPythonSpace(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.isWhitespace || (0x1C...0x1F).contains(scalar.value)
    }

    /// `str.strip()`.
    private static func strip(_ text: ArraySlice<Unicode.Scalar>) -> [Unicode.Scalar] {
        guard let first = text.firstIndex(where: { !isPythonSpace($0) }),
              let last = text.lastIndex(where: { !isPythonSpace($0) }) else { return [] }
        return Array(text[first...last])
    }

    /// Runs of whitespace (the `regex` module's `\s`: Unicode White_Space) to one space.
    private static func collapseWhitespace(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        for scalar in text {
            if scalar.properties.isWhitespace {
                if out.last != " " { out.append(" ") }
            } else {
                out.append(scalar)
            }
        }
        return out
    }

    /// Python's `str.lower()`: full lowercase mappings, and capital sigma as final sigma (ς)
    /// where it ends a word (`String.lowercased()` does not apply that rule).
    static func lowercased(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        for (i, scalar) in text.enumerated() {
            if scalar.isASCII {
                out.append(("A"..."Z").contains(scalar) ? Unicode.Scalar(scalar.value + 0x20)! : scalar)
            } else if scalar == "\u{03A3}" {
                out.append(isFinalSigma(at: i, in: text) ? "\u{03C2}" : "\u{03C3}")
            } else {
                out.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
            }
        }
        return out
    }

    /// Unicode's Final_Sigma condition: a cased letter before (case-ignorable scalars between)
    /// and no cased letter after (case-ignorable scalars between).
    private static func isFinalSigma(at index: Int, in text: [Unicode.Scalar]) -> Bool {
        let before = text[..<index].last(where: { !$0.properties.isCaseIgnorable })
        guard let before, before.properties.isCased else { return false }
        let after = text[(index + 1)...].first(where: { !$0.properties.isCaseIgnorable })
        return !(after?.properties.isCased ?? false)
    }
}
