import ArgumentParser
import BlendCheckpoint
import BlendTensor
import Foundation

/// `blend models`: the weight files blend uses.
struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect weight files and download the official ones.",
        subcommands: [Inspect.self, Download.self, List.self]
    )
}

/// Where downloads go, shared by the subcommands that use the cache: the folder `blend edit`
/// and `blend serve` read the official files from, under the same option, `--models-dir`.
struct CacheOptions: ParsableArguments {
    @Option(name: .customLong("models-dir"),
            help: ArgumentHelp("Model cache directory, the one blend edit and blend serve read (default: $BLEND_MODELS_DIR, else $XDG_CACHE_HOME/blend/models, else ~/.cache/blend/models).",
                               valueName: "dir"))
    var modelsDirectory: String?

    /// The former name of `--models-dir`, still accepted.
    @Option(name: .customLong("cache-dir"), help: .hidden)
    var cacheDirectory: String?

    func validate() throws {
        if let modelsDirectory, let cacheDirectory, modelsDirectory != cacheDirectory {
            throw ValidationError("--cache-dir is the old name of --models-dir: give the model cache once (--models-dir \(modelsDirectory))")
        }
    }

    var directory: String? { modelsDirectory ?? cacheDirectory }

    var cache: ModelCache {
        directory.map { ModelCache(directory: URL(fileURLWithPath: $0, isDirectory: true)) } ?? .standard()
    }
}

extension Models {
    /// `blend models inspect FILE`
    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List a weight file's tensors, its parameter count and the architecture it holds.",
            discussion: "Reads torch.save archives (zip and legacy), TorchScript archives and safetensors without executing anything from the file.")

        @Argument(help: "A .pt/.pth/.ckpt/.safetensors file, or a diffusers folder (with model_index.json).")
        var file: String

        @Flag(help: "Print only the summary, not every tensor.")
        var summary = false

        @Flag(help: "Also convert every tensor to float32 and keep them all, as loading a model does; report the time and peak memory.")
        var load = false

        /// Metadata longer than this is cut when printed (a safetensors header may hold megabytes).
        static let metadataLimit = 200

        func run() throws {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory), isDirectory.boolValue {
                return try inspectFolder()
            }
            let checkpoint = try CheckpointFile.load(path: file)
            var dtypeCounts: [CheckpointDType: Int] = [:]
            for entry in checkpoint.entries { dtypeCounts[entry.dtype, default: 0] += 1 }
            let dtypes = dtypeCounts.sorted { $0.value > $1.value }.map { "\($0.key) x\($0.value)" }.joined(separator: ", ")

            print("file:         \(terminalSafe(checkpoint.path))")
            print("format:       \(checkpoint.format)")
            print("tensors:      \(checkpoint.entries.count) (\(dtypes.isEmpty ? "none" : dtypes))")
            print("parameters:   \(grouped(checkpoint.parameterCount)) (\(byteSize(Int64(checkpoint.parameterCount) * 4)) as float32)")
            // A training checkpoint: say which weights a model loader takes, and recognise those.
            var weights = checkpoint
            do {
                weights = try checkpoint.modelWeights()
                if let selection = weights.selection {
                    print("weights:      \(terminalSafe(selection.description)), \(grouped(weights.parameterCount)) parameters")
                }
            } catch let error as CheckpointError {
                print("weights:      \(terminalSafe(error.description))")
            }
            let architecture = ArchitectureRecognizer.recognize(weights.entries)
            print("architecture: \(architecture?.description ?? "not one blend recognises")")
            for (key, value) in checkpoint.metadata.sorted(by: { $0.key < $1.key }) {
                print("metadata:     \(terminalSafe(key, limit: 64)) = \(terminalSafe(value, limit: Inspect.metadataLimit))")
            }

            if !summary, !checkpoint.entries.isEmpty {
                print("")
                let names = checkpoint.entries.map { terminalSafe($0.name, limit: 200) }
                let nameWidth = min(names.map(\.count).max() ?? 0, 64)
                for (entry, safeName) in zip(checkpoint.entries, names) {
                    let name = safeName.padding(toLength: max(nameWidth, safeName.count), withPad: " ", startingAt: 0)
                    let dtype = entry.dtype.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)
                    print("\(name)  \(dtype)  \(entry.shape)")
                }
            }
            if load { try loadEverything(checkpoint) }
        }

        /// A diffusers pipeline folder: its components, their weight files, and what blend recognises.
        private func inspectFolder() throws {
            let folder = try DiffusersFolder.open(path: file)
            print("folder:       \(terminalSafe(folder.path))")
            if let sd = try? StableDiffusionFiles.open(path: file) {
                print("architecture: \(sd.info)")
            } else {
                print("architecture: not one blend recognises")
            }
            for name in folder.components.keys.sorted() {
                let kind = terminalSafe(folder.components[name]?.joined(separator: ".") ?? "", limit: 100)
                let shownName = terminalSafe(name, limit: 100)
                guard folder.hasComponent(name) else {
                    print("\(shownName): \(kind) (folder missing)")
                    continue
                }
                guard let component = try? folder.component(name) else {
                    print("\(shownName): \(kind) (no weights)")
                    continue
                }
                let files = component.weightFiles.map { URL(fileURLWithPath: $0).lastPathComponent }
                let shown = terminalSafe(files.count > 2 ? "\(files[0]) ... (\(files.count) shards)" : files.joined(separator: ", "), limit: 200)
                print("\(shownName): \(kind), \(component.tensors.entries.count) tensors, \(grouped(component.tensors.parameterCount)) parameters in \(shown)")
                if !summary {
                    for entry in component.tensors.entries {
                        print("  \(terminalSafe(entry.name, limit: 200))  \(entry.dtype.rawValue)  \(entry.shape)")
                    }
                }
            }
        }

        private func loadEverything(_ checkpoint: Checkpoint) throws {
            let start = Date()
            var kept: [Tensor] = []
            kept.reserveCapacity(checkpoint.entries.count)
            for entry in checkpoint.entries {
                kept.append(try checkpoint.tensor(named: entry.name, convertingIntegers: true))
            }
            let seconds = Date().timeIntervalSince(start)
            let bytes = kept.reduce(Int64(0)) { $0 + Int64($1.count) * 4 }
            print("")
            print("loaded:       \(kept.count) tensors, \(byteSize(bytes)) of float32 in \(String(format: "%.2f", seconds)) s")
            print("peak memory:  \(byteSize(peakResidentBytes())) resident (file: \(byteSize(fileSize(checkpoint.path))))")
        }
    }

    /// `blend models download NAME`
    struct Download: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download an official weight file into the model cache, resuming and verifying it.",
            discussion: "Known names: \(ModelRegistry.models.map(\.name).joined(separator: ", ")). See `blend models list`.")

        @Argument(help: "A model name from `blend models list`.")
        var name: String

        @OptionGroup var cacheOptions: CacheOptions

        @Option(help: ArgumentHelp("Require this SHA-256 (for files whose authors publish none).", valueName: "hex"))
        var sha256: String?

        @Flag(help: "Download again even if the file is already cached.")
        var force = false

        @Option(help: "Transfers to try, each resuming the last, before giving up.")
        var attempts = 3

        @Option(help: ArgumentHelp("Fetch from this URL (a mirror) instead of the official location; the checksum still applies.", valueName: "url"))
        var from: String?

        func validate() throws {
            if let from, URL(string: from)?.scheme == nil { throw ValidationError("--from takes a URL such as https://host/path/file.pt") }
            if let sha256, sha256.count != 64 || !sha256.allSatisfy(\.isHexDigit) {
                throw ValidationError("--sha256 takes 64 hex digits")
            }
            guard attempts >= 1 else { throw ValidationError("--attempts must be at least 1") }
        }

        func run() throws {
            guard var model = ModelRegistry.model(named: name) else {
                throw DownloadError.unknownModel(name: name, known: ModelRegistry.models.map(\.name))
            }
            if let from, let mirror = URL(string: from) {
                model = ModelDescriptor(name: model.name, aliases: model.aliases, fileName: model.fileName, url: mirror,
                                        checksum: model.checksum, summary: model.summary, size: model.size)
            }
            var downloader = ModelDownloader(cache: cacheOptions.cache)
            downloader.maximumAttempts = attempts
            if force || downloader.cache.entry(for: model) == .missing {
                FileHandle.standardError.write(Data("downloading \(model.url.absoluteString)\n".utf8))
            }
            let bar = ProgressBar(label: model.fileName)
            let result = try downloader.download(model, expectedSHA256: sha256, force: force) { bar.update($0) }
            bar.finish()
            switch result.verification {
            case .cached:
                print("already cached: \(result.path.path)" + (result.sha256.map { " (SHA-256 verified: \($0))" } ?? " (size checked; no published hash)"))
            case .matched: print("verified SHA-256 \(result.sha256 ?? "")")
            case .matchedPrefix: print("verified SHA-256 prefix: \(result.sha256 ?? "")")
            case .unverified:
                print("SHA-256 \(result.sha256 ?? "") (no published hash to check against; keep it to compare, or pin it with --sha256)")
            }
            if result.verification != .cached { print("saved \(byteSize(result.bytes)) to \(result.path.path)") }
        }
    }

    /// `blend models list`
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the downloadable models and whether each is cached.",
            discussion: "Each file is marked cached (with its size), missing, or WRONG: a cached file of the wrong size, which "
                + "blend edit and blend serve refuse; `blend models download NAME --force` replaces it. "
                + "Hashes are checked by `blend models download`, not here.")

        @OptionGroup var cacheOptions: CacheOptions

        func run() throws {
            let cache = cacheOptions.cache
            print("cache: \(cache.directory.path)")
            for line in List.lines(cache: cache) { print(line) }
        }

        /// One line per known model: its name, cached (and the file's size) / missing / WRONG, what it is.
        static func lines(cache: ModelCache) -> [String] {
            let width = ModelRegistry.models.map(\.name.count).max() ?? 0
            return ModelRegistry.models.map { model in
                let name = model.name.padding(toLength: width, withPad: " ", startingAt: 0)
                switch cache.entry(for: model) {
                case .missing:
                    return "\(name)  missing            \(model.summary)"
                case let .present(bytes):
                    let size = byteSize(bytes).padding(toLength: 9, withPad: " ", startingAt: 0)
                    return "\(name)  cached  \(size)  \(model.summary)"
                case let .wrongSize(bytes, expected):
                    return "\(name)  WRONG     \(model.fileName) in the cache has \(bytes) bytes, the published file \(expected): "
                        + "not the published file; delete it and download it again with `blend models download \(model.name) --force`"
                }
            }
        }
    }
}
