import Foundation
import Testing
import BlendCheckpoint
import BlendTensor
import BlendTestSupport
@testable import BlendModels

let sdFixtures = modelFixtures.appendingPathComponent("sd")

/// Lazily read weights of one component, as a pipeline would build them.
func sdWeights(_ group: CheckpointGroup, _ model: String) -> ModelWeights {
    ModelWeights(shapes: group.shapes, modelName: model) { try group.tensor(named: $0) }
}

/// The tiny fixtures: "sd1" (CompVis .ckpt + fp16 diffusers folder), "sd2" (CompVis
/// .safetensors + sharded diffusers folder), written by scripts/make-sd-fixtures.py.
func sdPath(_ variant: String, _ layout: StableDiffusionKeyLayout) -> String {
    switch (variant, layout) {
    case ("sd1", .compVis): return sdFixtures.appendingPathComponent("unet_vae_sd1.ckpt").path
    case ("sd2", .compVis): return sdFixtures.appendingPathComponent("unet_vae_sd2.safetensors").path
    default: return sdFixtures.appendingPathComponent("unet_vae_\(variant)_diffusers").path
    }
}

/// The tiny models use GroupNorm with fewer than SD's 32 groups, which the shapes cannot
/// show: their single files are read with the folder's config, as diffusers'
/// `from_single_file(config=...)` does.
func tinyConfig(_ variant: String, _ component: String) throws -> Data {
    try Data(contentsOf: sdFixtures.appendingPathComponent("unet_vae_\(variant)_diffusers/\(component)/config.json"))
}

func loadUNet(_ variant: String, _ layout: StableDiffusionKeyLayout) throws -> UNet2DConditionModel {
    let files = try StableDiffusionFiles.open(path: sdPath(variant, layout))
    return try UNet2DConditionModel.load(weights: sdWeights(files.tensors(for: .unet), "SD UNet"), layout: layout,
                                         configJSON: files.config(for: .unet) ?? tinyConfig(variant, "unet"))
}

func loadVAE(_ variant: String, _ layout: StableDiffusionKeyLayout) throws -> AutoencoderKL {
    let files = try StableDiffusionFiles.open(path: sdPath(variant, layout))
    return try AutoencoderKL.load(weights: sdWeights(files.tensors(for: .vae), "SD VAE"), layout: layout,
                                  configJSON: files.config(for: .vae) ?? tinyConfig(variant, "vae"))
}

/// Names and shapes of a full-size model (CompVis layout) from the fixtures.
func fullSizeShapes(_ name: String) throws -> [String: [Int]] {
    try JSONDecoder().decode([String: [Int]].self, from: Data(contentsOf: sdFixtures.appendingPathComponent(name)))
}

@Suite struct StableDiffusionParityTests {
    @Test(arguments: ["sd1", "sd2"], StableDiffusionKeyLayout.allCases)
    func unetMatchesDiffusers(variant: String, layout: StableDiffusionKeyLayout) throws {
        let unet = try loadUNet(variant, layout)
        let io = try loadTensors("sd/unet_\(variant)_io.safetensors")
        for threads in parityThreadCounts { try EngineThreads.withCount(threads) { for tag in ["a", "b"] {
            let eps = try unet(io["x"]!, timesteps: io["timesteps_\(tag)"]!.scalars, context: io["context"]!)
            #expect(eps.shape == io["eps_\(tag)"]!.shape)
            let error = relativeError(eps, io["eps_\(tag)"]!)
            #expect(error < 1e-4, "\(variant) \(layout) t=\(io["timesteps_\(tag)"]!.scalars) on \(threads) threads: max relative error \(error)")
        } } }
    }

    @Test(arguments: ["sd1", "sd2"], StableDiffusionKeyLayout.allCases)
    func vaeMatchesDiffusers(variant: String, layout: StableDiffusionKeyLayout) throws {
        let vae = try loadVAE(variant, layout)
        let io = try loadTensors("sd/vae_io.safetensors")
        for threads in parityThreadCounts { try EngineThreads.withCount(threads) {
        let posterior = try vae.encode(io["images"]!)
        #expect(relativeError(posterior.mean, io["mean"]!) < 1e-4)
        #expect(relativeError(posterior.logvar, io["logvar"]!) < 1e-4)
        let z = io["z"]!.requiringGradient()
        let decoded = try vae.decode(z)
        #expect(relativeError(decoded, io["decoded"]!) < 1e-4)
        // Background reconstruction optimises a latent through the decoder.
        let g = try gradients(of: decoded, withRespectTo: [z], seed: io["r"]!)[0]
        #expect(relativeError(g, io["grad_z"]!) < 1e-4, "\(variant) \(layout) on \(threads) threads")
        } }
    }

    @Test func latentHelpers() throws {
        let vae = try loadVAE("sd1", .diffusers)
        #expect(vae.config.scalingFactor == 0.18215)
        let z = randn([1, 4, 2, 2], seed: 1)
        expectClose(vae.unscaledLatents(vae.scaledLatents(z)), z.scalars, tolerance: 1e-6)
        let posterior = try vae.encode(randn([1, 3, 4, 4], seed: 2))
        let noise = randn(posterior.mean.shape, seed: 3)
        let sample = try posterior.sample(noise: noise)
        let expected = zip(zip(posterior.mean.scalars, posterior.logvar.scalars), noise.scalars).map { ms, n in ms.0 + expf(ms.1 / 2) * n }
        expectClose(sample, expected, tolerance: 1e-5)
        #expect(throws: ModelError.self) { try posterior.sample(noise: randn([1, 4, 1, 1], seed: 4)) }
    }
}

@Suite struct StableDiffusionFileTests {
    @Test func recognisesTheTinyFiles() throws {
        let ckpt = try StableDiffusionFiles.open(path: sdPath("sd1", .compVis))
        #expect(ckpt.info.layout == .compVis)
        #expect(ckpt.info.components == [.unet, .vae])
        #expect(ckpt.info.unetInChannels == 4 && ckpt.info.unetBaseChannels == 16 && ckpt.info.crossAttentionDim == 16)
        #expect(ckpt.info.emaTensorCount == 3)
        // The training wrapper is removed; the EMA copy is not taken for the weights.
        let unwrapped = try CheckpointFile.load(path: sdPath("sd1", .compVis)).modelWeights()
        #expect(unwrapped.selection?.keyPath == ["state_dict"] && unwrapped.selection?.usedEMA == false)
        #expect(try ckpt.config(for: .unet) == nil)
        #expect(throws: StableDiffusionFileError.missingComponent(path: sdPath("sd1", .compVis), component: "text encoder")) {
            try ckpt.tensors(for: .textEncoder)
        }

        let folder = try StableDiffusionFiles.open(path: sdPath("sd1", .diffusers))
        #expect(folder.info.layout == .diffusers && folder.info.components == [.unet, .vae])
        let unet = try DiffusersFolder.open(path: sdPath("sd1", .diffusers)).component("unet")
        #expect(unet.variant == "fp16")
        #expect(unet.tensors.entries.allSatisfy { $0.dtype == .float16 })

        let sharded = try DiffusersFolder.open(path: sdPath("sd2", .diffusers)).component("unet")
        #expect(sharded.variant == nil && sharded.weightFiles.count == 3)
        #expect(try StableDiffusionFiles.open(path: sdPath("sd2", .compVis)).info.crossAttentionDim == 24)
    }

    @Test func recognisesFullSizeSD1AndSD2() throws {
        func info(_ shapes: [String: [Int]]) -> StableDiffusionInfo? {
            guard case let .stableDiffusion(info)? = ArchitectureRecognizer.recognize(
                shapes.map { CheckpointEntry(name: $0.key, dtype: .float16, shape: $0.value) }) else { return nil }
            return info
        }
        var sd15 = try fullSizeShapes("unet_keys_sd15.json")
        for (key, shape) in try fullSizeShapes("vae_keys_sd.json") { sd15[key] = shape }
        let v1 = try #require(info(sd15))
        #expect(v1.version == .v1 && v1.components == [.unet, .vae] && v1.unetBaseChannels == 320 && v1.crossAttentionDim == 768)
        #expect(v1.description.hasPrefix("Stable Diffusion 1.x, CompVis single-file layout: UNet, VAE"))
        let sd21 = try fullSizeShapes("unet_keys_sd21.json")
        #expect(info(sd21)?.version == .v2)
        // Inpainting: the first convolution takes latent, mask and masked-image latent.
        var inpainting = sd21
        inpainting["model.diffusion_model.input_blocks.0.0.weight"] = [320, 9, 3, 3]
        #expect(info(inpainting)?.isInpainting == true)
        #expect(info(inpainting)?.description.contains("inpainting (not supported yet)") == true)
        // A stand-alone VAE file (no prefix) and wrapped training checkpoints.
        let bareVAE = Dictionary(uniqueKeysWithValues: try fullSizeShapes("vae_keys_sd.json").map { (String($0.key.dropFirst(18)), $0.value) })
        #expect(info(bareVAE)?.components == [.vae])
    }

    @Test func infersTheOfficialConfigsFromFullSizeShapes() throws {
        func weights(_ name: String) throws -> ModelWeights {
            ModelWeights(shapes: try fullSizeShapes(name), modelName: "SD") { _ in throw ModelError.badInput("not read") }
        }
        var sd1 = UNet2DConditionConfig.stableDiffusion1, sd2 = UNet2DConditionConfig.stableDiffusion2
        sd1.sampleSize = nil
        sd2.sampleSize = nil
        #expect(try UNet2DConditionConfig.inferred(fromCompVis: weights("unet_keys_sd15.json")) == sd1)
        #expect(try UNet2DConditionConfig.inferred(fromCompVis: weights("unet_keys_sd21.json")) == sd2)
        var vae = AutoencoderKLConfig.stableDiffusion
        vae.sampleSize = nil
        #expect(try AutoencoderKLConfig.inferred(fromCompVis: weights("vae_keys_sd.json")) == vae)
        #expect(throws: ModelError.self) { try UNet2DConditionConfig.inferred(fromCompVis: weights("vae_keys_sd.json")) }
        #expect(throws: ModelError.self) { try AutoencoderKLConfig.inferred(fromCompVis: weights("unet_keys_sd15.json")) }
    }

    @Test func diffusersConfigsDecodeAsPublished() throws {
        let unet = try UNet2DConditionConfig.decode(json: tinyConfig("sd2", "unet"))
        #expect(unet.blockOutChannels == [16, 16, 32] && unet.useLinearProjection && unet.heads(downBlock: 1) == 4)
        #expect(unet.heads(upBlock: 0) == 4 && unet.heads(upBlock: 2) == 2 && unet.contextDim(upBlock: 1) == 24)
        let vae = try AutoencoderKLConfig.decode(json: tinyConfig("sd1", "vae"))
        #expect(vae.blockOutChannels == [8, 16] && vae.normNumGroups == 4 && vae.downsamplingFactor == 2)
        // Errors name the key.
        #expect(throws: ModelError.invalidConfig("UNet config.json: 'block_out_channels' has the wrong type (Expected to decode Array<Any> but found a string instead.)")) {
            try UNet2DConditionConfig.decode(json: Data(#"{"block_out_channels": "320"}"#.utf8))
        }
        #expect(throws: ModelError.self) { try UNet2DConditionConfig.decode(json: Data(#"{"addition_embed_type": "text_time"}"#.utf8)) }
        #expect(throws: ModelError.self) { try UNet2DConditionConfig.decode(json: Data("{".utf8)) }
        #expect(throws: ModelError.self) { try AutoencoderKLConfig.decode(json: Data(#"{"block_out_channels": [128, 100]}"#.utf8)) }
        var inpainting = UNet2DConditionConfig.stableDiffusion1
        inpainting.inChannels = 9
        #expect(throws: ModelError.self) { try inpainting.validate() }
    }
}

@Suite struct StableDiffusionErrorTests {
    let temporary = FileManager.default.temporaryDirectory.appendingPathComponent("blend-sd-tests-\(UUID().uuidString)")

    func write(_ text: String, to relative: String) throws {
        let url = temporary.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }

    @Test func strictLoadingNamesTheTensor() throws {
        let group = try StableDiffusionFiles.open(path: sdPath("sd1", .compVis)).tensors(for: .unet)
        let config = try UNet2DConditionConfig.decode(json: tinyConfig("sd1", "unet"))
        func weights(_ edit: (inout [String: [Int]]) -> Void) -> ModelWeights {
            var shapes = group.shapes
            edit(&shapes)
            return ModelWeights(shapes: shapes, modelName: "SD UNet") { try group.tensor(named: $0) }
        }
        let p = "model.diffusion_model."
        #expect(throws: ModelError.missingWeight(key: p + "middle_block.1.proj_in.weight", model: "SD UNet")) {
            try UNet2DConditionModel(config: config, weights: weights { $0[p + "middle_block.1.proj_in.weight"] = nil }, layout: .compVis)
        }
        #expect(throws: ModelError.weightShape(key: p + "out.2.weight", expected: [4, 16, 3, 3], got: [4, 16, 1, 1])) {
            try UNet2DConditionModel(config: config, weights: weights { $0[p + "out.2.weight"] = [4, 16, 1, 1] }, layout: .compVis)
        }
        #expect(throws: ModelError.unexpectedWeights(keys: [p + "extra.weight"], model: "SD UNet")) {
            try UNet2DConditionModel(config: config, weights: weights { $0[p + "extra.weight"] = [3] }, layout: .compVis)
        }
        // The other networks, EMA copies and schedule buffers in the file are not the UNet's,
        // and are never read.
        var read: Set<String> = []
        let lazy = ModelWeights(shapes: group.shapes, modelName: "SD UNet") { read.insert($0); return try group.tensor(named: $0) }
        _ = try UNet2DConditionModel(config: config, weights: lazy, layout: .compVis)
        #expect(read.count == group.entries.filter { $0.name.hasPrefix(p) }.count && read.allSatisfy { $0.hasPrefix(p) })
        // The wrong layout finds nothing.
        #expect(throws: ModelError.self) { try UNet2DConditionModel(config: config, weights: weights { _ in }, layout: .diffusers) }
        // A UNet-only config for a VAE file.
        #expect(throws: ModelError.self) { try AutoencoderKL.load(weights: weights { _ in }, layout: .diffusers, configJSON: nil) }
    }

    @Test func badFilesAndFoldersSayWhatIsWrong() throws {
        defer { try? FileManager.default.removeItem(at: temporary) }
        // A guided-diffusion UNet is not SD.
        let adm = modelFixtures.appendingPathComponent("unet_tiny.pt").path
        #expect(throws: StableDiffusionFileError.self) { try StableDiffusionFiles.open(path: adm) }
        #expect(throws: CheckpointError.self) { try StableDiffusionFiles.open(path: temporary.appendingPathComponent("none.ckpt").path) }

        // An inpainting single file.
        try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: true)
        let inpainting = temporary.appendingPathComponent("inpainting.safetensors")
        try SafetensorsWriter.write([
            try SafetensorsTensor(name: "model.diffusion_model.input_blocks.0.0.weight", tensor: Tensor.zeros([8, 9, 3, 3])),
            try SafetensorsTensor(name: "model.diffusion_model.out.2.weight", tensor: Tensor.zeros([4, 8, 3, 3])),
        ], to: inpainting)
        // A UNet-only file keeps its `model.diffusion_model.` names (no `model` wrapper is removed).
        #expect(try CheckpointFile.load(path: inpainting.path).modelWeights().selection == nil)
        #expect(throws: StableDiffusionFileError.unsupported(
            path: inpainting.path,
            what: "a Stable Diffusion inpainting model (its UNet takes 9 channels: latent, mask, masked-image latent)")) {
            try StableDiffusionFiles.open(path: inpainting.path)
        }

        // Folders: no model_index.json, malformed JSON, no weights, a shard index that lies.
        #expect(throws: DiffusersFolderError.notAFolder(path: temporary.path)) { try StableDiffusionFiles.open(path: temporary.path) }
        try write("{", to: "model_index.json")
        #expect(throws: DiffusersFolderError.self) { try StableDiffusionFiles.open(path: temporary.path) }
        try write(#"{"unet": ["diffusers", "UNet2DConditionModel"]}"#, to: "model_index.json")
        #expect(throws: StableDiffusionFileError.self) { try StableDiffusionFiles.open(path: temporary.path) }
        try write("{}", to: "unet/config.json")
        #expect(throws: DiffusersFolderError.self) { try StableDiffusionFiles.open(path: temporary.path) }

        let shards = sdFixtures.appendingPathComponent("unet_vae_sd2_diffusers/unet")
        for file in try FileManager.default.contentsOfDirectory(atPath: shards.path) where file.hasSuffix(".safetensors") {
            try FileManager.default.copyItem(at: shards.appendingPathComponent(file), to: temporary.appendingPathComponent("unet/\(file)"))
        }
        let index = try String(contentsOf: shards.appendingPathComponent("diffusion_pytorch_model.safetensors.index.json"), encoding: .utf8)
        try write(index.replacingOccurrences(of: "\"weight_map\": {", with: "\"weight_map\": {\"ghost.weight\": \"diffusion_pytorch_model-00001-of-00003.safetensors\", "),
                  to: "unet/diffusion_pytorch_model.safetensors.index.json")
        #expect(throws: DiffusersFolderError.self) { try StableDiffusionFiles.open(path: temporary.path) }
        try write(index, to: "unet/diffusion_pytorch_model.safetensors.index.json")
        let unetOnly = try StableDiffusionFiles.open(path: temporary.path)
        // model_index.json names cannot reach outside the folder.
        #expect(throws: DiffusersFolderError.self) { try DiffusersFolder.open(path: temporary.path).component("../\(temporary.lastPathComponent)/unet") }
        #expect(throws: StableDiffusionFileError.missingComponent(path: temporary.path, component: "VAE")) { try unetOnly.tensors(for: .vae) }
    }

    @Test func modelsRefuseBadInputs() throws {
        let unet = try loadUNet("sd1", .diffusers)
        let context = randn([1, 77, 16], seed: 1)
        #expect(throws: ModelError.self) { try unet(randn([1, 3, 8, 8], seed: 2), timesteps: [1], context: context) }
        #expect(throws: ModelError.self) { try unet(randn([1, 4, 6, 8], seed: 2), timesteps: [1], context: context) }
        #expect(throws: ModelError.self) { try unet(randn([1, 4, 8, 8], seed: 2), timesteps: [1, 2], context: context) }
        #expect(throws: ModelError.self) { try unet(randn([1, 4, 8, 8], seed: 2), timesteps: [1], context: randn([1, 77, 24], seed: 3)) }
        #expect(throws: ModelError.self) { try unet(randn([2, 4, 8, 8], seed: 2), timesteps: [1, 2], context: context) }
        let vae = try loadVAE("sd1", .diffusers)
        #expect(throws: ModelError.self) { try vae.encode(randn([1, 3, 5, 4], seed: 4)) }
        #expect(throws: ModelError.self) { try vae.encode(randn([1, 4, 4, 4], seed: 4)) }
        #expect(throws: ModelError.self) { try vae.decode(randn([1, 3, 4, 4], seed: 5)) }
    }
}
