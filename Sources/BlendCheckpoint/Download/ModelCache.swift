import Foundation

/// Where downloaded weights live: `$BLEND_MODELS_DIR`, else
/// `$XDG_CACHE_HOME/blend/models`, else `~/.cache/blend/models`.
public struct ModelCache: Sendable, Equatable {
    public static let environmentVariable = "BLEND_MODELS_DIR"

    public let directory: URL

    public init(directory: URL) { self.directory = directory }

    /// The cache the environment selects (see the type's documentation).
    public static func standard(environment: [String: String] = ProcessInfo.processInfo.environment) -> ModelCache {
        if let explicit = environment[environmentVariable], !explicit.isEmpty {
            return ModelCache(directory: URL(fileURLWithPath: explicit, isDirectory: true))
        }
        // The XDG spec says to ignore relative paths.
        if let xdg = environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") {
            return ModelCache(directory: URL(fileURLWithPath: xdg, isDirectory: true).appendingPathComponent("blend/models", isDirectory: true))
        }
        let home = environment["HOME"].map { URL(fileURLWithPath: $0, isDirectory: true) } ?? FileManager.default.homeDirectoryForCurrentUser
        return ModelCache(directory: home.appendingPathComponent(".cache/blend/models", isDirectory: true))
    }

    public func path(for model: ModelDescriptor) -> URL { directory.appendingPathComponent(model.fileName) }

    /// The file a download writes to until it is complete and verified.
    public func partialPath(for model: ModelDescriptor) -> URL { directory.appendingPathComponent(model.fileName + ".part") }

    /// What the cache holds under a model's file name, judged by size alone (cheap enough for
    /// `models list`; `ModelDownloader` also checks the hash where one is published).
    public enum Entry: Sendable, Equatable {
        case missing
        /// A file whose size is what the published file's must be.
        case present(bytes: Int64)
        /// A file of the wrong size: not the published file (an error page, a truncated copy...).
        case wrongSize(bytes: Int64, expected: ExpectedSize)
    }

    public func entry(for model: ModelDescriptor) -> Entry {
        let path = path(for: model).path
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return .missing }
        let bytes = (attributes[.size] as? NSNumber)?.int64Value ?? 0
        return model.size.admits(bytes) ? .present(bytes: bytes) : .wrongSize(bytes: bytes, expected: model.size)
    }

    /// Whether a file of plausible size is cached under the model's name.
    public func isCached(_ model: ModelDescriptor) -> Bool {
        if case .present = entry(for: model) { return true }
        return false
    }
}
