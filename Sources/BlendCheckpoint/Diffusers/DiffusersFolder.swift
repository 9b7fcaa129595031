import Foundation

/// Why a diffusers folder could not be read. Every message names the file or folder and
/// says what the user can do.
public enum DiffusersFolderError: Error, Equatable, CustomStringConvertible {
    case notAFolder(path: String)
    /// A JSON file (model_index.json, a config, a shard index) is unreadable or malformed.
    case malformedJSON(file: String, detail: String)
    /// model_index.json does not list the component, or its folder is missing.
    case missingComponent(folder: String, component: String, listed: [String])
    /// The component folder has none of the weight files diffusers/transformers write.
    case noWeights(folder: String, tried: [String])
    /// A `*.index.json` of a sharded model does not match its shards.
    case badShardIndex(file: String, detail: String)

    public var description: String {
        switch self {
        case let .notAFolder(path):
            return "\(path) is not a diffusers folder (no model_index.json and no config.json with weights); "
                + "pass the folder that holds model_index.json, unet/ and vae/, or a single .safetensors/.ckpt file"
        case let .malformedJSON(file, detail):
            return "cannot read \(file): \(detail); download or copy the folder again"
        case let .missingComponent(folder, component, listed):
            return "\(folder) has no \(component)/ folder (model_index.json lists: \(listed.isEmpty ? "nothing" : listed.joined(separator: ", "))); "
                + "download the complete pipeline folder"
        case let .noWeights(folder, tried):
            return "\(folder) holds no weights (looked for \(tried.prefix(4).joined(separator: ", ")), ...); "
                + "download the weight files of this folder too (the fp16 variant is enough)"
        case let .badShardIndex(file, detail):
            return "the shard index \(file) does not match its shards: \(detail); download the folder again"
        }
    }
}

/// A diffusers pipeline folder (`save_pretrained` layout): `model_index.json` naming the
/// components, one sub-folder per component with its `config.json` (`scheduler_config.json`
/// for schedulers) and weights. Weight files are found as diffusers and transformers name
/// them: `diffusion_pytorch_model.safetensors` / `model.safetensors` (and `.bin`), the
/// `fp16` variant (`diffusion_pytorch_model.fp16.safetensors`) when no full-precision file
/// is there, and sharded models through their `*.safetensors.index.json`.
public struct DiffusersFolder: Sendable {
    public let path: String
    /// model_index.json's components: name → [library, class] (e.g. "unet" → ["diffusers", "UNet2DConditionModel"]).
    public let components: [String: [String]]

    /// Reads `path/model_index.json`.
    ///
    /// Throws `DiffusersFolderError.notAFolder` when it is missing, `.malformedJSON` when unreadable.
    public static func open(path: String) throws -> DiffusersFolder {
        let index = URL(fileURLWithPath: path).appendingPathComponent("model_index.json").path
        guard FileManager.default.fileExists(atPath: index) else { throw DiffusersFolderError.notAFolder(path: path) }
        guard let object = try readJSON(index) as? [String: Any] else {
            throw DiffusersFolderError.malformedJSON(file: index, detail: "it is not a JSON object")
        }
        var components: [String: [String]] = [:]
        for (key, value) in object where !key.hasPrefix("_") {
            if let pair = value as? [Any], pair.count == 2 {
                components[key] = pair.map { ($0 as? String) ?? "" }
            }
        }
        return DiffusersFolder(path: path, components: components)
    }

    /// The folder of component `name`, with its config and weights.
    ///
    /// Throws `DiffusersFolderError.missingComponent` when neither model_index.json nor the
    /// disk has it, and the errors of ``DiffusersComponent/init(folder:)``.
    public func component(_ name: String) throws -> DiffusersComponent {
        let folder = URL(fileURLWithPath: path).appendingPathComponent(name).path
        guard hasComponent(name) else {
            throw DiffusersFolderError.missingComponent(folder: path, component: name, listed: components.keys.sorted())
        }
        return try DiffusersComponent(folder: folder)
    }

    /// Whether component `name`'s folder exists (a plain name: nothing outside the folder is reached).
    public func hasComponent(_ name: String) -> Bool {
        guard !name.isEmpty, name != ".", name != "..", !name.contains("/"), !name.contains("\\") else { return false }
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: URL(fileURLWithPath: path).appendingPathComponent(name).path,
                                              isDirectory: &isDirectory) && isDirectory.boolValue
    }
}

/// One component folder of a diffusers pipeline (or a model saved alone with `save_pretrained`).
public struct DiffusersComponent: Sendable {
    public let folder: String
    /// `config.json` (or `scheduler_config.json`) as stored, nil when absent.
    public let config: Data?
    /// The weight files read, in shard order.
    public let weightFiles: [String]
    /// "fp16" when the half-precision variant was read, nil for the plain files.
    public let variant: String?
    /// The tensors of all weight files, read on demand.
    public let tensors: CheckpointGroup

    /// Weight-file names tried, in order: full precision before the fp16 variant,
    /// safetensors before pickles, single files before shard indexes.
    public static let weightFileCandidates: [(name: String, variant: String?)] = {
        var names: [(String, String?)] = []
        for variant in [nil, "fp16"] as [String?] {
            let v = variant.map { ".\($0)" } ?? ""
            for base in ["diffusion_pytorch_model", "model"] {
                names.append(("\(base)\(v).safetensors", variant))
                names.append(("\(base).safetensors.index\(v).json", variant))
            }
            for base in ["diffusion_pytorch_model", "pytorch_model"] {
                names.append(("\(base)\(v).bin", variant))
                names.append(("\(base).bin.index\(v).json", variant))
            }
        }
        return names
    }()

    /// Reads `folder`'s config and opens its weights (every shard of a sharded model).
    ///
    /// Throws `DiffusersFolderError.noWeights`, `.badShardIndex`, `.malformedJSON`, or the
    /// `CheckpointError` of a weight file.
    public init(folder: String) throws {
        let url = URL(fileURLWithPath: folder)
        let fm = FileManager.default
        self.folder = folder
        config = ["config.json", "scheduler_config.json"].lazy
            .map { url.appendingPathComponent($0).path }
            .first { fm.fileExists(atPath: $0) }
            .flatMap { fm.contents(atPath: $0) }
        guard let (name, variant) = Self.weightFileCandidates.first(where: { fm.fileExists(atPath: url.appendingPathComponent($0.name).path) }) else {
            throw DiffusersFolderError.noWeights(folder: folder, tried: Self.weightFileCandidates.map(\.name))
        }
        self.variant = variant
        let file = url.appendingPathComponent(name).path
        if name.hasSuffix(".json") {
            let (shards, expected) = try Self.readShardIndex(file)
            let checkpoints = try shards.map { try CheckpointFile.load(path: url.appendingPathComponent($0).path) }
            let group = try CheckpointGroup(checkpoints)
            for (tensor, shard) in expected {
                guard let path = group.path(of: tensor) else {
                    throw DiffusersFolderError.badShardIndex(file: file, detail: "tensor \(tensor) is listed in \(shard) but no shard holds it")
                }
                guard URL(fileURLWithPath: path).lastPathComponent == shard else {
                    throw DiffusersFolderError.badShardIndex(file: file, detail: "tensor \(tensor) is listed in \(shard) but found in \(path)")
                }
            }
            if let stray = group.entries.first(where: { expected[$0.name] == nil }) {
                throw DiffusersFolderError.badShardIndex(file: file, detail: "\(group.path(of: stray.name) ?? "a shard") holds \(stray.name), which the index does not list")
            }
            weightFiles = checkpoints.map(\.path)
            tensors = group
        } else {
            tensors = try CheckpointGroup([CheckpointFile.load(path: file)])
            weightFiles = [file]
        }
    }

    /// The shard files of an index (in first-mention order) and its tensor → shard map.
    static func readShardIndex(_ file: String) throws -> (shards: [String], map: [String: String]) {
        guard let object = try readJSON(file) as? [String: Any], let map = object["weight_map"] as? [String: Any] else {
            throw DiffusersFolderError.malformedJSON(file: file, detail: "it has no \"weight_map\" object")
        }
        var result: [String: String] = [:]
        var shards: [String] = []
        for (tensor, value) in map.sorted(by: { $0.key < $1.key }) {
            guard let shard = value as? String, !shard.isEmpty, !shard.contains("/"), !shard.contains("\\"), shard != ".", shard != ".." else {
                throw DiffusersFolderError.badShardIndex(file: file, detail: "tensor \(tensor) names no shard file in this folder")
            }
            result[tensor] = shard
            if !shards.contains(shard) { shards.append(shard) }
        }
        guard !shards.isEmpty else { throw DiffusersFolderError.badShardIndex(file: file, detail: "the weight_map is empty") }
        return (shards.sorted(), result)
    }
}

/// The JSON object in `file`.
func readJSON(_ file: String) throws -> Any {
    guard let data = FileManager.default.contents(atPath: file) else {
        throw DiffusersFolderError.malformedJSON(file: file, detail: "it cannot be read")
    }
    do {
        return try JSONSerialization.jsonObject(with: data)
    } catch {
        throw DiffusersFolderError.malformedJSON(file: file, detail: "it is not valid JSON")
    }
}
