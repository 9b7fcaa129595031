import BlendCheckpoint
import Foundation

/// Where the model files are expected by default: the download cache of
/// `blend models download`, under the official file names.
public struct ModelFiles: Sendable {
    public var directory: URL

    public init(directory: URL) { self.directory = directory }

    /// The standard cache ($BLEND_MODELS_DIR, else $XDG_CACHE_HOME/blend/models, else ~/.cache/blend/models).
    public static func standard() -> ModelFiles { ModelFiles(directory: ModelCache.standard().directory) }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    public var diffusion256: String { path("256x256_diffusion_uncond.pt") }
    public var diffusion512: String { path("512x512_diffusion.pt") }
    public var clipViTB16: String { path("ViT-B-16.pt") }
    public var clipVocabulary: String { path("bpe_simple_vocab_16e6.txt.gz") }
    public var vgg16: String { path("vgg16-397923af.pth") }
    public var lpipsLinear: String { path("vgg.pth") }
    /// Stable Diffusion 1.5 (`blend models download stable-diffusion-v1-5`), the latent method's default.
    public var stableDiffusion15: String { path("v1-5-pruned-emaonly.safetensors") }
}
