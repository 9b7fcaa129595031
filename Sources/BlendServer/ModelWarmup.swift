import BlendModels
import BlendPipeline
import Foundation
import Synchronization

/// A model file the server cannot find, with the command that gets it.
public struct MissingModelFile: Codable, Sendable, Equatable {
    public var path: String
    public var expected: String
    /// e.g. `blend models download ViT-B-16`; nil for a file that is not an official one.
    public var command: String?
}

/// Where the models are: what `GET /api/status` reports and the page shows.
public struct ModelsStatus: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable { case loading, ready, missing, failed }
    public var state: State
    /// For `missing` and `failed`: what to do, in a sentence.
    public var message: String?
    /// For `missing`: the files needed for every edit (CLIP and its vocabulary, which rank
    /// the samples of every method) and, when neither generator is there, the pixel UNet.
    public var missing: [MissingModelFile]
    /// Files only `--method local-clip` needs, absent (that method fails without them).
    public var missingForLocalClip: [MissingModelFile]
    /// The Stable Diffusion model of `--method latent`, when absent (latent jobs are refused
    /// with its download command until it is there; the others run).
    public var missingForLatent: [MissingModelFile] = []
    /// The guided-diffusion UNet of the pixel methods (`blended`, `local-clip`), when absent
    /// while the Stable Diffusion model is there: pixel jobs are refused with its download
    /// command, latent jobs run.
    public var missingForPixel: [MissingModelFile] = []
    public var loadSeconds: Double?
}

/// Loads the models once, in the background, at start-up, and keeps them (``KeptModels``):
/// the diffusion UNet (when there), CLIP and its tokenizer. A missing file is reported with
/// the `blend models download ...` command that gets it; ``reload()`` checks again. The server
/// is usable when CLIP, its vocabulary and at least one generator (the pixel UNet or the
/// Stable Diffusion model) are there; each method's absent file is listed for it.
final class ModelWarmup: Sendable {
    let paths: EditModelPaths
    private let state = Mutex<(status: ModelsStatus, tokenizer: ClipTokenizer?, generation: Int)>(
        (ModelsStatus(state: .loading, message: nil, missing: [], missingForLocalClip: []), nil, 0))
    /// Called (on the loading thread) whenever the status changes.
    private let onChange: @Sendable (ModelsStatus) -> Void

    init(paths: EditModelPaths, onChange: @escaping @Sendable (ModelsStatus) -> Void) {
        self.paths = paths
        self.onChange = onChange
    }

    var status: ModelsStatus { state.withLock { $0.status } }
    var tokenizer: ClipTokenizer? { state.withLock { $0.tokenizer } }

    /// The files every edit needs, the pixel methods' UNet, and those of the local-CLIP
    /// baseline: absent ones only.
    func missingFiles() -> (required: [MissingModelFile], pixel: [MissingModelFile], localClip: [MissingModelFile]) {
        func check(_ path: String, _ expected: String, _ download: String?) -> MissingModelFile? {
            FileManager.default.fileExists(atPath: path) ? nil
                : MissingModelFile(path: path, expected: expected, command: download.map { "blend models download \($0)" })
        }
        // Files given explicitly under another name are not official downloads: no command.
        func official(_ path: String, _ name: String, _ download: String) -> String? {
            URL(fileURLWithPath: path).lastPathComponent == name ? download : nil
        }
        let pixel = [
            check(paths.diffusion, "a guided-diffusion UNet checkpoint such as 256x256_diffusion_uncond.pt",
                  official(paths.diffusion, "256x256_diffusion_uncond.pt", "256x256_diffusion_uncond")
                    ?? official(paths.diffusion, "512x512_diffusion.pt", "512x512_diffusion")),
        ].compactMap { $0 }
        let required = [
            check(paths.clip, "an OpenAI CLIP ViT checkpoint such as ViT-B-16.pt", official(paths.clip, "ViT-B-16.pt", "ViT-B-16")),
            check(paths.clipVocabulary, "CLIP's BPE vocabulary (bpe_simple_vocab_16e6.txt.gz)",
                  official(paths.clipVocabulary, "bpe_simple_vocab_16e6.txt.gz", "clip-vocab")),
        ].compactMap { $0 }
        let localClip = [
            check(paths.vgg16, "torchvision's VGG16 weights (vgg16-397923af.pth)", official(paths.vgg16, "vgg16-397923af.pth", "vgg16")),
            check(paths.lpipsLinear, "the LPIPS v0.1 VGG linear layers (vgg.pth)", official(paths.lpipsLinear, "vgg.pth", "lpips-vgg")),
        ].compactMap { $0 }
        return (required, pixel, localClip)
    }

    /// The latent method's Stable Diffusion model (a file or a diffusers folder), when absent.
    func missingForLatent() -> [MissingModelFile] {
        guard !FileManager.default.fileExists(atPath: paths.stableDiffusion) else { return [] }
        let name = URL(fileURLWithPath: paths.stableDiffusion).lastPathComponent
        let download = ["v1-5-pruned-emaonly.safetensors": "stable-diffusion-v1-5",
                        "v2-1_512-ema-pruned.safetensors": "stable-diffusion-2-1-base"][name]
        return [MissingModelFile(path: paths.stableDiffusion,
                                 expected: "a Stable Diffusion 1.x/2.x checkpoint or diffusers folder such as v1-5-pruned-emaonly.safetensors",
                                 command: download.map { "blend models download \($0)" })]
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
        var (required, pixel, localClip) = missingFiles()
        let latent = missingForLatent()
        // Without either generator nothing can run: the pixel UNet (the default method's) is
        // then listed with the files every edit needs, and the message names the SD download.
        let noGenerator = !pixel.isEmpty && !latent.isEmpty
        if noGenerator { required.insert(contentsOf: pixel, at: 0) }
        var status = ModelsStatus(state: .loading, message: nil, missing: required, missingForLocalClip: localClip,
                                  missingForLatent: latent, missingForPixel: noGenerator ? [] : pixel)
        var tokenizer: ClipTokenizer?
        if !required.isEmpty {
            status.state = .missing
            let commands = required.compactMap(\.command)
            status.message = "model files are missing: " + required.map { URL(fileURLWithPath: $0.path).lastPathComponent }.joined(separator: ", ")
                + (commands.isEmpty ? "" : "; get them with: " + commands.joined(separator: "; "))
                + (required.count > commands.count ? "; pass the others' paths to blend serve" : "")
                + (noGenerator ? latent.compactMap(\.command).map { " (or, for the latent method only: \($0))" }.joined() : "")
                + ", then press \"Check again\""
        } else {
            let start = Date()
            do {
                tokenizer = try ClipTokenizer(vocabularyFile: paths.clipVocabulary)
                if pixel.isEmpty { _ = try ModelLoader.unet(path: paths.diffusion, config: paths.diffusionConfig) }
                _ = try ModelLoader.clip(path: paths.clip)
                status.state = .ready
                status.loadSeconds = Date().timeIntervalSince(start)
            } catch {
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
