/// A setting as the front ends name it. `key` is the web API's JSON name (`clipLambda`); `blend
/// edit`'s flag is the key in kebab case (`--clip-lambda`); the page's switches are named by the
/// key's words (`turn on "truncate prompt"`), as its labels read.
public struct SettingName: Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    public let key: String

    public init(_ key: String) { self.key = key }
    public init(stringLiteral key: String) { self.key = key }
    /// The name of a settings type's coding key (``PixelOptions/CodingKeys``, the pipeline's
    /// `LatentOptions.CodingKeys`): the keys are the API's names.
    public init(_ key: some CodingKey) { self.key = key.stringValue }

    /// `--clip-lambda`.
    public var flag: String { "--" + words(separator: "-") }
    /// `clip lambda`.
    public var label: String { words(separator: " ") }
    public var description: String { key }

    /// The camel-case key's words, lower-cased: `l2Lambda` → `l2`, `lambda`.
    private func words(separator: String) -> String {
        var out = ""
        for character in key {
            if character.isUppercase {
                out += separator + character.lowercased()
            } else {
                out.append(character)
            }
        }
        return out
    }
}

/// A sentence about the user's settings in which every setting is a ``SettingName``, not words:
/// the front end that shows it words them (``text(_:)``): `blend edit` as its flags, the web API
/// and page as the settings' names. So an error is phrased once, where it is found, and no front
/// end rewrites another's words.
///
///     let message: SettingMessage = "\(setting: "skip") must be less than the steps; \(turnOn: "truncatePrompt")"
///     message.text(.commandLine)  // "--skip must be less than the steps; pass --truncate-prompt"
///     message.text(.api)          // "skip must be less than the steps; turn on \"truncate prompt\""
public struct SettingMessage: Sendable, Equatable, Hashable, CustomStringConvertible, ExpressibleByStringInterpolation {
    /// Whose words: the command line's flags, or the API's (and page's) settings.
    public enum Wording: Sendable { case commandLine, api }

    enum Part: Sendable, Hashable {
        case text(String)
        /// The setting itself: `--skip` / `skip`.
        case name(SettingName)
        /// Giving a setting a value: `--mask-from alpha` / `maskFrom set to alpha`.
        case value(SettingName, String)
        /// Turning a switch on or off: `pass --truncate-prompt` / `turn on "truncate prompt"`,
        /// `drop --invert-mask` / `turn off "invert mask"`.
        case turnOn(SettingName)
        case turnOff(SettingName)
    }

    var parts: [Part]

    public init(stringLiteral value: String) { parts = [.text(value)] }

    /// Plain text that names no setting.
    public init(_ text: String) { parts = [.text(text)] }

    public init(stringInterpolation: StringInterpolation) { parts = stringInterpolation.parts }

    /// The sentence in `wording`'s words.
    public func text(_ wording: Wording) -> String {
        parts.map { part in
            switch (part, wording) {
            case let (.text(text), _): return text
            case let (.name(name), .commandLine): return name.flag
            case let (.name(name), .api): return name.key
            case let (.value(name, value), .commandLine): return "\(name.flag) \(value)"
            case let (.value(name, value), .api): return "\(name.key) set to \(value)"
            case let (.turnOn(name), .commandLine): return "pass \(name.flag)"
            case let (.turnOn(name), .api): return "turn on \"\(name.label)\""
            case let (.turnOff(name), .commandLine): return "drop \(name.flag)"
            case let (.turnOff(name), .api): return "turn off \"\(name.label)\""
            }
        }.joined()
    }

    /// One sentence after the other, for messages built over several lines.
    public static func + (lhs: SettingMessage, rhs: SettingMessage) -> SettingMessage {
        var joined = lhs
        joined.parts += rhs.parts
        return joined
    }

    /// The command line's words (what a library user or a log sees).
    public var description: String { text(.commandLine) }

    public struct StringInterpolation: StringInterpolationProtocol {
        var parts: [Part] = []

        public init(literalCapacity: Int, interpolationCount: Int) {}

        public mutating func appendLiteral(_ literal: String) { parts.append(.text(literal)) }

        /// Any other value, as Swift's own interpolation writes it.
        public mutating func appendInterpolation<T>(_ value: T) { parts.append(.text(String(describing: value))) }

        public mutating func appendInterpolation(setting name: SettingName) { parts.append(.name(name)) }

        public mutating func appendInterpolation(setting key: some CodingKey) { parts.append(.name(SettingName(key))) }

        public mutating func appendInterpolation(setting name: SettingName, to value: String) { parts.append(.value(name, value)) }

        public mutating func appendInterpolation(turnOn name: SettingName) { parts.append(.turnOn(name)) }

        public mutating func appendInterpolation(turnOff name: SettingName) { parts.append(.turnOff(name)) }

        /// Another message's parts (a reason inside a sentence).
        public mutating func appendInterpolation(_ message: SettingMessage) { parts += message.parts }
    }
}
