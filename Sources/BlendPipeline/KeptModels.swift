import BlendModels
import Foundation
import Synchronization

/// Models kept in memory between edits by a long-running front end (`blend serve`), so that
/// each edit does not read gigabytes of weights again.
///
/// Off until ``enable()`` is called (the CLI edits once per process and keeps nothing). When
/// on, ``ModelLoader`` returns the kept model for a role when the file's path, size and
/// modification time and the configuration are those it was loaded from, and otherwise loads
/// the file and keeps the new model in place of the old one: at most one model per role
/// (diffusion, CLIP, LPIPS) stays in memory.
public final class KeptModels: Sendable {
    /// The process's one store, consulted by ``ModelLoader``.
    public static let shared = KeptModels()

    /// What identifies a loaded model: its files (path, size, modification time) and config.
    struct Key: Equatable, Sendable {
        var files: [FileStamp]
        var config: UNetConfig?
    }

    struct FileStamp: Equatable, Sendable {
        var path: String
        var size: UInt64
        var modified: Date

        init?(_ path: String) {
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                  let size = attributes[.size] as? UInt64, let modified = attributes[.modificationDate] as? Date
            else { return nil }
            self.path = path
            self.size = size
            self.modified = modified
        }
    }

    private struct State {
        var enabled = false
        var unet: (key: Key, model: UNetModel)?
        var clip: (key: Key, model: ClipModel)?
        var lpips: (key: Key, model: LPIPSModel)?
    }

    private let state = Mutex(State())

    public init() {}

    /// From now on, keep every model the loader reads.
    public func enable() { state.withLock { $0.enabled = true } }

    /// Drops every kept model (their memory is freed once no edit uses them).
    public func forgetAll() {
        state.withLock { $0.unet = nil; $0.clip = nil; $0.lpips = nil }
    }

    static func key(_ paths: [String], config: UNetConfig? = nil) -> Key? {
        let stamps = paths.compactMap(FileStamp.init)
        return stamps.count == paths.count ? Key(files: stamps, config: config) : nil
    }

    /// The kept UNet for `path` and `config`, or `load()`'s, which is then kept (when enabled).
    func unet(path: String, config: UNetConfig?, load: () throws -> UNetModel) throws -> UNetModel {
        try kept(Self.key([path], config: config), \.unet, load)
    }

    func clip(path: String, load: () throws -> ClipModel) throws -> ClipModel {
        try kept(Self.key([path]), \.clip, load)
    }

    func lpips(vggPath: String, linearPath: String, load: () throws -> LPIPSModel) throws -> LPIPSModel {
        try kept(Self.key([vggPath, linearPath]), \.lpips, load)
    }

    private func kept<Model: Sendable>(_ key: Key?, _ slot: WritableKeyPath<State, (key: Key, model: Model)?>,
                             _ load: () throws -> Model) throws -> Model {
        let (enabled, found) = state.withLock { state in
            (state.enabled, key != nil && state[keyPath: slot]?.key == key ? state[keyPath: slot]?.model : nil)
        }
        if let found { return found }
        // Loading happens outside the lock; one edit runs at a time, so two loads of the same
        // file at once only waste time, never give a wrong model.
        let model = try load()
        if enabled, let key { state.withLock { $0[keyPath: slot] = (key, model) } }
        return model
    }
}
