/// Splits cleaned text into the pieces CLIP byte-pair-encodes one by one, as the reference's
/// case-insensitive regular expression does:
///
///     <|startoftext|> | <|endoftext|> | 's | 't | 're | 've | 'm | 'll | 'd
///     | letters+ | one number character | (anything but whitespace, letters, numbers)+
///
/// At each position the first alternative that matches wins, and the runs are greedy, so "!<|"
/// in "!<|endoftext|>" is one piece. Whitespace belongs to no piece and is dropped.
/// Letters are general category L, number characters category N. Case-insensitive matching of
/// the literal parts also lets "ſ" (U+017F, LONG S) stand for "s" (a special token so spelled
/// is ordinary text: the reference recognises only the exact spelling); and U+0345 (COMBINING GREEK
/// YPOGEGRAMMENI), whose case folding is the letter ι, is left out of the "anything else" class,
/// so, like whitespace, it belongs to no piece.
enum ClipPreTokenizer {
    enum Piece: Equatable {
        case startOfText
        case endOfText
        case text([Unicode.Scalar])
    }

    private static let specials: [(literal: [Unicode.Scalar], piece: Piece)] = [
        (Array("<|startoftext|>".unicodeScalars), .startOfText),
        (Array("<|endoftext|>".unicodeScalars), .endOfText),
    ]
    private static let contractions = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"].map { Array($0.unicodeScalars) }

    static func split(_ text: [Unicode.Scalar]) -> [Piece] {
        var pieces: [Piece] = []
        var i = 0
        while i < text.count {
            if text[i] == "<", let (literal, special) = specials.first(where: { matches($0.literal, in: text, at: i) }) {
                // Only the exact spelling is the special token; another spelling that matches
                // case-insensitively (with "ſ") is one piece of ordinary text.
                let spelled = Array(text[i..<(i + literal.count)])
                pieces.append(spelled == literal ? special : .text(spelled))
                i += literal.count
                continue
            }
            if let contraction = contractions.first(where: { matches($0, in: text, at: i) }) {
                pieces.append(.text(Array(text[i..<(i + contraction.count)])))
                i += contraction.count
                continue
            }
            let scalar = text[i]
            let run: (Unicode.Scalar) -> Bool
            if isLetter(scalar) {
                run = isLetter
            } else if isNumber(scalar) {
                pieces.append(.text([scalar]))
                i += 1
                continue
            } else if isOther(scalar) {
                run = isOther
            } else {
                i += 1
                continue
            }
            var end = i + 1
            while end < text.count, run(text[end]) { end += 1 }
            pieces.append(.text(Array(text[i..<end])))
            i = end
        }
        return pieces
    }

    /// Whether `literal` (ASCII) matches case-insensitively at `start`.
    private static func matches(_ literal: [Unicode.Scalar], in text: [Unicode.Scalar], at start: Int) -> Bool {
        guard start + literal.count <= text.count else { return false }
        for (offset, expected) in literal.enumerated() {
            let scalar = text[start + offset]
            if scalar == expected { continue }
            if ("a"..."z").contains(expected), scalar.value == expected.value - 0x20 { continue }
            if expected == "s", scalar == "\u{017F}" { continue }
            return false
        }
        return true
    }

    static func isLetter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    static func isNumber(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    private static func isOther(_ scalar: Unicode.Scalar) -> Bool {
        !scalar.properties.isWhitespace && !isLetter(scalar) && !isNumber(scalar) && scalar != "\u{0345}"
    }
}
