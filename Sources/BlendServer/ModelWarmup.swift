import BlendModels
import BlendPipeline
import Foundation
import BlendConcurrency

/// A model file the server cannot find, with the command that gets it.
public struct MissingModelFile: Codable, Sendable, Equatable {
    public var path: String
    public var expected: String
    /// e.g. `blend models download ViT-B-16`; nil for a file that is not an official one.
    public var command: String?
    /// The `blend serve` option that gives its path (`--clip-vocab`); nil for files read only
    /// from the model cache (`--models-dir`).
    public var option: String?

    /// Every field, `null` where empty (as README lists them), not left out.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(path, forKey: .path)
        try c.encode(expected, forKey: .expected)
        try c.encode(command, forKey: .command)
        try c.encode(option, forKey: .option)
    }

    public init(_ missing: MissingModel) {
        path = missing.path
        expected = missing.expected
        command = missing.download.map { "blend models download \($0)" }
        option = missing.option
    }

    /// One line for the console: the file, what it should be, and the command that gets it or
    /// the option that gives it.
    public var line: String {
        "\(path) (\(expected)): " + (command.map { "get it with `\($0)`" + (option.map { ", or give its path with \($0)" } ?? "") }
            ?? option.map { "give its path with \($0)" } ?? "put it in the model cache (--models-dir)")
    }
}

/// Where the models are: what `GET /api/status` reports and the page shows.
public struct ModelsStatus: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable { case loading, ready, missing, failed }
    /// `missing` when a file every method needs is absent, or neither generator (the pixel
    /// UNet, the Stable Diffusion model) is there: no method can run.
    public var state: State
    /// For `missing` and `failed`: what to do, in a sentence.
    public var message: String?
    /// The absent files every method needs: CLIP and its vocabulary, which rank the samples
    /// of every method.
    public var missing: [MissingModelFile]
    /// Files only `--method local-clip` needs, absent (that method fails without them).
    public var missingForLocalClip: [MissingModelFile]
    /// The Stable Diffusion model of `--method latent`, when absent (latent jobs are refused
    /// with its download command until it is there).
    public var missingForLatent: [MissingModelFile] = []
    /// The guided-diffusion UNet of the pixel methods (`blended`, `local-clip`), when absent
    /// (their jobs are refused with its download command until it is there).
    public var missingForPixel: [MissingModelFile] = []
    public var loadSeconds: Double?

    public init(state: State, message: String? = nil, missing: [MissingModelFile] = [], missingForLocalClip: [MissingModelFile] = [],
                missingForLatent: [MissingModelFile] = [], missingForPixel: [MissingModelFile] = [], loadSeconds: Double? = nil) {
        self.state = state
        self.message = message
        self.missing = missing
        self.missingForLocalClip = missingForLocalClip
        self.missingForLatent = missingForLatent
        self.missingForPixel = missingForPixel
        self.loadSeconds = loadSeconds
    }

    /// Every absent file with the methods that need it, one line each, for the console.
    public var missingLines: [String] {
        missing.map { "missing model file (every method): \($0.line)" }
            + missingForPixel.map { "missing model file (pixel and local-clip methods): \($0.line)" }
            + missingForLatent.map { "missing model file (latent method): \($0.line)" }
            + missingForLocalClip.map { "missing model file (local-clip method): \($0.line)" }
    }
}

/// Loads the models once, in the background, at start-up, and keeps them (``KeptModels``):
/// the diffusion UNet (when there), CLIP and its tokenizer. A missing file is reported with
/// the `blend models download ...` command that gets it; ``reload()`` checks again. The server
/// is usable when CLIP, its vocabulary and at least one generator (the pixel UNet or the
/// Stable Diffusion model) are there; each method's absent file is listed for it.
final class ModelWarmup: Sendable {
    let paths: EditModelPaths
    private let state = PThreadMutex<(status: ModelsStatus, tokenizer: ClipTokenizer?, generation: Int)>(
        (ModelsStatus(state: .loading, message: nil, missing: [], missingForLocalClip: []), nil, 0))
    /// Called (on the loading thread) whenever the status changes.
    private let onChange: @Sendable (ModelsStatus) -> Void

    init(paths: EditModelPaths, onChange: @escaping @Sendable (ModelsStatus) -> Void) {
        self.paths = paths
        self.onChange = onChange
    }

    var status: ModelsStatus { state.withLock { $0.status } }
    var tokenizer: ClipTokenizer? { state.withLock { $0.tokenizer } }

    /// The absent files: those every edit needs, the pixel methods' UNet, those of the
    /// local-CLIP baseline, the latent method's Stable Diffusion model.
    func missingFiles() -> (required: [MissingModelFile], pixel: [MissingModelFile], localClip: [MissingModelFile], latent: [MissingModelFile]) {
        func check(_ files: [(String, ModelRole)]) -> [MissingModelFile] {
            files.filter { !FileManager.default.fileExists(atPath: $0.0) }.map { MissingModelFile($0.1.missing($0.0)) }
        }
        return (check([(paths.clip, .clip), (paths.clipVocabulary, .clipVocabulary)]), check([(paths.diffusion, .diffusion)]),
                check([(paths.vgg16, .vgg16), (paths.lpipsLinear, .lpipsLinear)]), check([(paths.stableDiffusion, .stableDiffusion)]))
    }

    /// Starts (again) checking and loading on a background thread. A load already under way
    /// is superseded: its result is ignored.
    func reload() {
        let generation = state.withLock { state -> Int in
            state.generation += 1
            state.status = ModelsStatus(state: .loading, message: nil, missing: [], missingForLocalClip: [])
            return state.generation
        }
        onChange(status)
        let thread = Thread { [self] in load(generation: generation) }
        thread.name = "blend model loading"
        thread.start()
    }

    private func load(generation: Int) {
        let (required, pixel, localClip, latent) = missingFiles()
        let noGenerator = !pixel.isEmpty && !latent.isEmpty
        var status = ModelsStatus(state: .loading, message: nil, missing: required, missingForLocalClip: localClip,
                                  missingForLatent: latent, missingForPixel: pixel)
        var tokenizer: ClipTokenizer?
        if !required.isEmpty || noGenerator {
            // No method can run: name what each needs.
            status.state = .missing
            func files(_ list: [MissingModelFile]) -> String {
                list.map { file in
                    URL(fileURLWithPath: file.path).lastPathComponent
                        + (file.command.map { " (\($0))" } ?? file.option.map { " (give its path with \($0))" } ?? "")
                }.joined(separator: ", ")
            }
            var parts: [String] = []
            if !required.isEmpty { parts.append("every method needs " + files(required)) }
            if noGenerator {
                parts.append("the pixel method needs " + files(pixel) + "; the latent method needs " + files(latent))
            }
            status.message = "model files are missing: " + parts.joined(separator: "; ") + ". Get them, then press \"Check again\""
        } else {
            let start = Date()
            do {
                // A damaged official file in the model cache (`blend models list`: WRONG) is refused.
                if let cache = paths.cacheDirectory {
                    try ModelLoader.requireCachedFilesIntact([paths.clipVocabulary, paths.clip, paths.diffusion, paths.stableDiffusion],
                                                             cacheDirectory: cache)
                }
                let vocabulary = try ClipTokenizer(vocabularyFile: paths.clipVocabulary)
                tokenizer = vocabulary
                if pixel.isEmpty { _ = try ModelLoader.unet(path: paths.diffusion, config: paths.diffusionConfig) }
                let clip = try ModelLoader.clip(path: paths.clip)
                try ModelLoader.requireVocabulary(size: vocabulary.vocabularySize, of: paths.clipVocabulary, fits: clip, at: paths.clip)
                status.state = .ready
                status.loadSeconds = Date().timeIntervalSince(start)
            } catch {
                tokenizer = nil
                status.state = .failed
                status.message = String(describing: error)
            }
        }
        let current = state.withLock { state -> Bool in
            guard state.generation == generation else { return false }
            state.status = status
            state.tokenizer = tokenizer
            return true
        }
        if current { onChange(status) }
    }
}
