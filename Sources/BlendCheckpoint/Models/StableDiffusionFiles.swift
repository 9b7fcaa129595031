import Foundation

/// Why a path does not hold a Stable Diffusion model blend can use.
public enum StableDiffusionFileError: Error, Equatable, CustomStringConvertible {
    case notStableDiffusion(path: String, found: String)
    case unsupported(path: String, what: String)
    case missingComponent(path: String, component: String)

    public var description: String {
        switch self {
        case let .notStableDiffusion(path, found):
            return "\(path) is not a Stable Diffusion checkpoint (it looks like: \(found)); pass an SD 1.x/2.x "
                + ".safetensors/.ckpt file or a diffusers folder (with model_index.json, unet/, vae/)"
        case let .unsupported(path, what):
            return "\(path) is \(what), which blend does not support yet; use a text-to-image SD 1.x or 2.x checkpoint "
                + "(e.g. v1-5-pruned-emaonly.safetensors or stable-diffusion-2-1-base)"
        case let .missingComponent(path, component):
            return "\(path) holds no \(component); SD edits need the UNet, the VAE and the text encoder "
                + "(a full SD checkpoint, not a pruned UNet-only or VAE-only file)"
        }
    }
}

/// A Stable Diffusion model as users have it: one CompVis single file (`.safetensors`, or a
/// `.ckpt` torch.save archive with the weights under `state_dict`), or a diffusers pipeline
/// folder. Recognises SD 1.x, 2.x, inpainting and SDXL from the tensors, and hands each
/// network its tensors (read on demand) and, for folders, its `config.json`. Knows the
/// files, not the networks: BlendModels' key layouts name the tensors.
public final class StableDiffusionFiles: @unchecked Sendable {
    public let path: String
    public let info: StableDiffusionInfo
    private let single: CheckpointGroup?
    private let folder: DiffusersFolder?

    /// Opens `path` (a file or a folder) and recognises the model.
    ///
    /// Throws `StableDiffusionFileError.notStableDiffusion` for other models,
    /// `.unsupported` for inpainting and SDXL checkpoints, and the `CheckpointError` /
    /// `DiffusersFolderError` of an unreadable file or folder.
    public static func open(path: String) throws -> StableDiffusionFiles {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CheckpointError.cannotOpen(file: path, reason: "no such file or folder")
        }
        if isDirectory.boolValue {
            let folder = try DiffusersFolder.open(path: path)
            return try StableDiffusionFiles(path: path, folder: folder)
        }
        // Training checkpoints keep the weights under `state_dict`; a full SD file's own
        // top level (`model.`, `first_stage_model.`, `model_ema.`, ...) is left as it is.
        let group = try CheckpointGroup([CheckpointFile.load(path: path).modelWeights()])
        guard case let .stableDiffusion(info)? = ArchitectureRecognizer.recognize(group.entries) else {
            let found = ArchitectureRecognizer.recognize(group.entries).map(String.init(describing:)) ?? "an unknown model"
            throw StableDiffusionFileError.notStableDiffusion(path: path, found: found)
        }
        try Self.checkSupported(info, path: path)
        return StableDiffusionFiles(path: path, info: info, single: group, folder: nil)
    }

    private init(path: String, info: StableDiffusionInfo, single: CheckpointGroup?, folder: DiffusersFolder?) {
        self.path = path
        self.info = info
        self.single = single
        self.folder = folder
    }

    private convenience init(path: String, folder: DiffusersFolder) throws {
        var components: [StableDiffusionComponent] = []
        for component in StableDiffusionComponent.allCases where folder.hasComponent(component.rawValue) {
            components.append(component)
        }
        guard components.contains(.unet) else {
            throw StableDiffusionFileError.notStableDiffusion(
                path: path, found: "a diffusers folder with \(folder.components.keys.sorted().joined(separator: ", "))")
        }
        let unet = try folder.component(StableDiffusionComponent.unet.rawValue)
        var info: StableDiffusionInfo
        if case let .stableDiffusion(found)? = ArchitectureRecognizer.recognize(unet.tensors.entries) {
            info = found
        } else {
            throw StableDiffusionFileError.notStableDiffusion(path: path, found: "a diffusers folder whose unet/ is not a UNet2DConditionModel")
        }
        info.layout = .diffusers
        info.components = components
        try Self.checkSupported(info, path: path)
        self.init(path: path, info: info, single: nil, folder: folder)
    }

    private static func checkSupported(_ info: StableDiffusionInfo, path: String) throws {
        if info.isInpainting {
            throw StableDiffusionFileError.unsupported(
                path: path, what: "a Stable Diffusion inpainting model (its UNet takes 9 channels: latent, mask, masked-image latent)")
        }
        if info.version == .xl { throw StableDiffusionFileError.unsupported(path: path, what: "a Stable Diffusion XL model") }
    }

    /// The tensors of `component`: for a single file, every tensor of the file (the key
    /// layouts select their network's prefix; a `state_dict` wrapper is already removed), for a folder
    /// the component folder's weights (all shards).
    ///
    /// Throws `StableDiffusionFileError.missingComponent` when the file or folder lacks it.
    public func tensors(for component: StableDiffusionComponent) throws -> CheckpointGroup {
        if let single {
            guard info.components.contains(component) else {
                throw StableDiffusionFileError.missingComponent(path: path, component: component.description)
            }
            return single
        }
        return try diffusersComponent(component).tensors
    }

    /// The component's `config.json` in a diffusers folder; nil for single files, whose
    /// configs the key layouts infer from the shapes.
    public func config(for component: StableDiffusionComponent) throws -> Data? {
        guard folder != nil else { return nil }
        return try diffusersComponent(component).config
    }

    /// Another component folder of a diffusers pipeline (`tokenizer`, `scheduler`), nil for single files.
    public func folder(named name: String) -> String? {
        guard let folder, folder.hasComponent(name) else { return nil }
        return URL(fileURLWithPath: folder.path).appendingPathComponent(name).path
    }

    private func diffusersComponent(_ component: StableDiffusionComponent) throws -> DiffusersComponent {
        guard let folder, info.components.contains(component) else {
            throw StableDiffusionFileError.missingComponent(path: path, component: component.description)
        }
        return try folder.component(component.rawValue)
    }
}
