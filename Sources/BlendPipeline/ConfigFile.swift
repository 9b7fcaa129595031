import BlendModels
import Foundation

/// Why a JSON model config could not be read: one line that names the file and the key.
public struct ConfigFileError: Error, Equatable, CustomStringConvertible {
    public let path: String
    /// What is wrong, naming the key (`channel_mult[1]`) where there is one.
    public let detail: String

    public var description: String { "cannot read the config \(path): \(detail)" }
}

/// JSON model configs given by users (`image_size`, `num_channels`, ... as guided-diffusion's
/// flags are named), read with errors a user can act on rather than a `DecodingError` dump.
public enum ConfigFile {
    /// Reads a guided-diffusion UNet config (see `UNetConfig` for the keys).
    public static func unet(path: String) throws -> UNetConfig { try load(UNetConfig.self, path: path) }

    /// Reads a CLIP config (see `ClipConfig` for the keys).
    public static func clip(path: String) throws -> ClipConfig { try load(ClipConfig.self, path: path) }

    /// Reads any `Decodable` config from a JSON file; throws `ConfigFileError`.
    public static func load<T: Decodable>(_ type: T.Type, path: String) throws -> T {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ConfigFileError(path: path, detail: "the file cannot be read (\(error.localizedDescription))")
        }
        return try decode(type, from: data, path: path)
    }

    /// Decodes `data`; `path` names it in errors.
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data, path: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let error as DecodingError {
            throw ConfigFileError(path: path, detail: explain(error))
        }
    }

    /// One line for a `DecodingError`, naming the key path as written in JSON (`channel_mult[2]`).
    static func explain(_ error: DecodingError) -> String {
        func keyPath(_ path: [any CodingKey]) -> String {
            var text = ""
            for key in path {
                if let index = key.intValue { text += "[\(index)]" } else { text += (text.isEmpty ? "" : ".") + key.stringValue }
            }
            return text
        }
        func kind(_ type: Any.Type) -> String {
            switch type {
            case is Int.Type: return "a whole number"
            case is Double.Type, is Float.Type: return "a number"
            case is Bool.Type: return "true or false"
            case is String.Type: return "a string"
            default:
                let name = String(describing: type)
                if name.hasPrefix("Array") { return "a list" }
                if name.hasPrefix("Dictionary") { return "an object" }
                return "a \(name)"
            }
        }
        switch error {
        case let .keyNotFound(key, context):
            let parent = keyPath(context.codingPath)
            return "the required key `\(keyPath(context.codingPath + [key]))` is missing" + (parent.isEmpty ? "" : " (in `\(parent)`)")
        case let .typeMismatch(type, context):
            let path = keyPath(context.codingPath)
            return path.isEmpty ? "the file holds no JSON object of settings" : "`\(path)` should be \(kind(type))"
        case let .valueNotFound(type, context):
            return "`\(keyPath(context.codingPath))` is null; it should be \(kind(type))"
        case let .dataCorrupted(context):
            let path = keyPath(context.codingPath)
            if path.isEmpty {
                let underlying = context.underlyingError.map { ($0 as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\($0)" }
                return "it is not valid JSON" + (underlying.map { " (\(oneLine($0)))" } ?? "")
            }
            return "`\(path)` is invalid: \(oneLine(context.debugDescription))"
        @unknown default:
            return oneLine("\(error)")
        }
    }

    private static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).joined(separator: " ")
    }
}
