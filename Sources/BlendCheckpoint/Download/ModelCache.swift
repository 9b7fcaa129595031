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

    public func isCached(_ model: ModelDescriptor) -> Bool { FileManager.default.fileExists(atPath: path(for: model).path) }
}
