import BlendModels
import Foundation
import BlendConcurrency

/// Models kept in memory between edits by a long-running front end (`blend serve`), so that
/// each edit does not read gigabytes of weights again.
///
/// Off until ``enable()`` is called (the CLI edits once per process and keeps nothing). When
/// on, ``ModelLoader`` returns the kept model for a role when the file's path, size and
/// modification time and the configuration are those it was loaded from (and repeats what the
/// loader said about the file then, e.g. that a training checkpoint's EMA weights were used),
/// and otherwise loads the file and keeps the new model in place of the old one: at most one
/// model per role (diffusion, CLIP, LPIPS, Stable Diffusion) stays in memory.
public final class KeptModels: Sendable {
    /// The process's one store, consulted by ``ModelLoader``.
    public static let shared = KeptModels()

    /// What identifies a loaded model: its files (path, size, modification time) and config.
    struct Key: Equatable, Sendable {
        var files: [FileStamp]
        var config: UNetConfig?
        /// Loading options besides the files (a Stable Diffusion model's prediction type and config folder).
        var options: [String] = []
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
        var unet: Kept<UNetModel>?
        var clip: Kept<ClipModel>?
        var lpips: Kept<LPIPSModel>?
        var stableDiffusion: Kept<StableDiffusionModels>?
    }

    private struct Kept<Model: Sendable>: Sendable {
        var key: Key
        var model: Model
        var notes: [String]
    }

    private let state = PThreadMutex(State())

    public init() {}

    /// From now on, keep every model the loader reads.
    public func enable() { state.withLock { $0.enabled = true } }

    /// Drops every kept model (their memory is freed once no edit uses them).
    public func forgetAll() {
        state.withLock { $0.unet = nil; $0.clip = nil; $0.lpips = nil; $0.stableDiffusion = nil }
    }

    static func key(_ paths: [String], config: UNetConfig? = nil) -> Key? {
        let stamps = paths.compactMap(FileStamp.init)
        return stamps.count == paths.count ? Key(files: stamps, config: config) : nil
    }

    /// The kept UNet for `path` and `config`, or the one `load` makes (telling `note` what it
    /// tells), which is then kept (when enabled).
    func unet(path: String, config: UNetConfig?, note: (String) -> Void,
              load: ((String) -> Void) throws -> UNetModel) throws -> UNetModel {
        try kept(Self.key([path], config: config), \.unet, note, load)
    }

    func clip(path: String, note: (String) -> Void, load: ((String) -> Void) throws -> ClipModel) throws -> ClipModel {
        try kept(Self.key([path]), \.clip, note, load)
    }

    func lpips(vggPath: String, linearPath: String, note: (String) -> Void,
               load: ((String) -> Void) throws -> LPIPSModel) throws -> LPIPSModel {
        try kept(Self.key([vggPath, linearPath]), \.lpips, note, load)
    }

    /// The kept Stable Diffusion model of `path` (a single file, or a diffusers folder: the
    /// folder and its `unet/`, `vae/`, `text_encoder/`, `scheduler/` folders are stamped, so that
    /// a replaced part is noticed) loaded with `options`, or the one `load` makes.
    func stableDiffusion(path: String, options: StableDiffusionLoadOptions, note: (String) -> Void,
                         load: ((String) -> Void) throws -> StableDiffusionModels) throws -> StableDiffusionModels {
        var isDirectory: ObjCBool = false
        var paths = [path]
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            paths += ["unet", "vae", "text_encoder", "scheduler"].map { URL(fileURLWithPath: path).appendingPathComponent($0).path }
                .filter { FileManager.default.fileExists(atPath: $0) }
        }
        var key = Self.key(paths + (options.configFolder.map { [$0] } ?? []))
        key?.options = [options.predictionType?.rawValue ?? "", options.configFolder ?? ""]
        return try kept(key, \.stableDiffusion, note, load)
    }

    private func kept<Model: Sendable>(_ key: Key?, _ slot: WritableKeyPath<State, Kept<Model>?>, _ note: (String) -> Void,
                                       _ load: ((String) -> Void) throws -> Model) throws -> Model {
        let (enabled, found) = state.withLock { state in
            (state.enabled, key != nil && state[keyPath: slot]?.key == key ? state[keyPath: slot] : nil)
        }
        if let found {
            found.notes.forEach(note)
            return found.model
        }
        // Loading happens outside the lock; one edit runs at a time, so two loads of the same
        // file at once only waste time, never give a wrong model.
        var notes: [String] = []
        let model = try withoutActuallyEscaping(note) { tell in
            try load { text in
                notes.append(text)
                tell(text)
            }
        }
        if enabled, let key { state.withLock { $0[keyPath: slot] = Kept(key: key, model: model, notes: notes) } }
        return model
    }
}
