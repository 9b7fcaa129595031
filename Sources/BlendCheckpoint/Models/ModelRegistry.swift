import Foundation

/// How a downloaded file is checked.
public enum ModelChecksum: Sendable, Equatable {
    /// The full SHA-256, as published by the model's authors.
    case sha256(String)
    /// The leading hex digits of the SHA-256, as torchvision puts in its file names.
    case sha256Prefix(String)
    /// No hash is published: the file is kept as downloaded and its hash printed,
    /// so the user can compare it or pin it with `--sha256`.
    case unpublished

    /// The SHA-256 an address carries as the name of the file's folder, as OpenAI's CLIP
    /// downloads do (`.../clip/models/<sha256>/ViT-B-16.pt`, see clip/clip.py `_MODELS`);
    /// nil when the folder is not 64 hex digits.
    public static func publishedInPath(of url: URL) -> ModelChecksum? {
        let folder = url.deletingLastPathComponent().lastPathComponent
        return FileDigest.isSHA256(folder) ? .sha256(folder.lowercased()) : nil
    }
}

/// What a model file's size must be, so that a wrong file in the cache (an error page, a
/// truncated copy, another model under the same name) is noticed without hashing it.
public enum ExpectedSize: Sendable, Equatable, CustomStringConvertible {
    case unknown
    /// The published file's exact size.
    case exactly(Int64)
    /// A lower bound: the bytes of the weights alone (parameter count × element size);
    /// the file adds its container on top.
    case atLeast(Int64)

    public func admits(_ bytes: Int64) -> Bool {
        switch self {
        case .unknown: return true
        case let .exactly(size): return bytes == size
        case let .atLeast(size): return bytes >= size
        }
    }

    public var description: String {
        switch self {
        case .unknown: return "of unknown size"
        case let .exactly(size): return "\(size) bytes"
        case let .atLeast(size): return "at least \(size) bytes"
        }
    }
}

/// A weight file `blend models download` knows where to get.
public struct ModelDescriptor: Sendable, Equatable {
    /// The name users type (`256x256_diffusion_uncond`, `ViT-B-16`).
    public let name: String
    /// Other spellings accepted for `name` (CLIP's own `ViT-B/16`).
    public let aliases: [String]
    /// The file name in the cache, as the authors name it.
    public let fileName: String
    public let url: URL
    public let checksum: ModelChecksum
    public let summary: String
    /// What the published file's size must be.
    public let size: ExpectedSize

    public init(name: String, aliases: [String] = [], fileName: String, url: URL, checksum: ModelChecksum, summary: String,
                size: ExpectedSize = .unknown) {
        self.name = name
        self.aliases = aliases
        self.fileName = fileName
        self.url = url
        self.checksum = checksum
        self.summary = summary
        self.size = size
    }
}

/// The official files Blended Diffusion and Blended Latent Diffusion use, at the locations
/// their authors publish.
public enum ModelRegistry {
    // guided-diffusion's README lists these under one folder and publishes no hashes.
    private static let guidedDiffusionFolder = "https://openaipublic.blob.core.windows.net/diffusion/jul-2021/"
    // CLIP's download folder is named by the file's SHA-256 (clip/clip.py, `_MODELS`).
    private static let clipFolder = "https://openaipublic.azureedge.net/clip/models/"

    // Sizes: exact where the file is known byte for byte; otherwise the weights' own bytes,
    // from the parameter counts of Tests/BlendCheckpointTests/Fixtures/architectures (float32
    // for guided-diffusion; CLIP keeps at least 2 bytes per parameter, float16).
    public static let models: [ModelDescriptor] = [
        guidedDiffusion("256x256_diffusion_uncond", parameters: 552_814_086,
                        "unconditional 256x256 ImageNet diffusion model (Blended Diffusion's default), fp32, 2.2 GB"),
        // The unconditional model plus the class embedding (1000 x 1024).
        guidedDiffusion("256x256_diffusion", parameters: 553_838_086, "class-conditional 256x256 ImageNet diffusion model, fp32, 2.2 GB"),
        guidedDiffusion("512x512_diffusion", parameters: 558_997_638, "class-conditional 512x512 ImageNet diffusion model, fp32, 2.2 GB"),
        clip("ViT-B-32", "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af", parameters: 151_277_313,
             "OpenAI CLIP ViT-B/32 (TorchScript, fp16), ~340 MB"),
        clip("ViT-B-16", "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f", parameters: 149_620_737,
             "OpenAI CLIP ViT-B/16 (TorchScript, fp16), ~340 MB"),
        clip("ViT-L-14", "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836", parameters: 427_616_513,
             "OpenAI CLIP ViT-L/14 (TorchScript, fp16), ~890 MB"),
        // ViT-L/14 with 577 rather than 257 positions of 1024 channels.
        clip("ViT-L-14-336px", "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02", parameters: 427_944_193,
             "OpenAI CLIP ViT-L/14@336px (TorchScript, fp16), ~890 MB"),
        // The tokenizer's vocabulary, from the openai/CLIP repository (the same file ships in
        // the reference code and in clip-anytorch).
        ModelDescriptor(
            name: "clip-vocab", aliases: ["bpe_simple_vocab_16e6"], fileName: "bpe_simple_vocab_16e6.txt.gz",
            url: URL(string: "https://github.com/openai/CLIP/raw/main/clip/bpe_simple_vocab_16e6.txt.gz")!,
            checksum: .sha256("924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"),
            summary: "CLIP's byte-pair-encoding vocabulary (49,408 tokens), 1.4 MB", size: .exactly(1_356_917)),
        ModelDescriptor(
            name: "vgg16", fileName: "vgg16-397923af.pth",
            url: URL(string: "https://download.pytorch.org/models/vgg16-397923af.pth")!,
            checksum: .sha256Prefix("397923af"),
            summary: "torchvision VGG16 ImageNet weights (LPIPS backbone), ~530 MB", size: .exactly(553_433_881)),
        // The LPIPS package ships these in its repository; the hash is that of the copy
        // in the lpips 0.1.4 wheel, which is built from the same file.
        ModelDescriptor(
            name: "lpips-vgg", fileName: "vgg.pth",
            url: URL(string: "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/vgg.pth")!,
            checksum: .sha256("a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868"),
            summary: "LPIPS v0.1 linear-layer weights for VGG (legacy torch.save format), 7 KB", size: .exactly(7_289)),
        // Stable Diffusion single files for the latent method (CompVis keys: UNet, VAE and text
        // encoder in one file), from the Hugging Face repositories the issue names. SD 1.5: the
        // size and the LFS SHA-256 the Hub lists for the file. SD 2.1-base: the size public
        // listings of the file state; no SHA-256 was found to check against (none recorded:
        // the hash of the download is printed instead).
        ModelDescriptor(
            name: "stable-diffusion-v1-5", aliases: ["sd-v1-5", "v1-5-pruned-emaonly"], fileName: "v1-5-pruned-emaonly.safetensors",
            url: URL(string: "https://huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5/resolve/main/v1-5-pruned-emaonly.safetensors")!,
            checksum: .sha256("6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa"),
            summary: "Stable Diffusion 1.5 (EMA weights, fp32; --method latent's default), 4.3 GB", size: .exactly(4_265_146_304)),
        ModelDescriptor(
            name: "stable-diffusion-2-1-base", aliases: ["sd-v2-1-base", "v2-1_512-ema-pruned"], fileName: "v2-1_512-ema-pruned.safetensors",
            url: URL(string: "https://huggingface.co/stabilityai/stable-diffusion-2-1-base/resolve/main/v2-1_512-ema-pruned.safetensors")!,
            checksum: .unpublished,
            summary: "Stable Diffusion 2.1-base (512, epsilon; EMA weights, fp32), 5.2 GB", size: .exactly(5_214_604_494)),
    ]

    private static func guidedDiffusion(_ name: String, parameters: Int64, _ summary: String) -> ModelDescriptor {
        ModelDescriptor(name: name, fileName: "\(name).pt", url: URL(string: guidedDiffusionFolder + "\(name).pt")!,
                        checksum: .unpublished, summary: summary, size: .atLeast(parameters * 4))
    }

    private static func clip(_ name: String, _ sha256: String, parameters: Int64, _ summary: String) -> ModelDescriptor {
        // CLIP's own names use a slash ("ViT-B/16"); files and URLs a dash.
        let slashed = name.replacingOccurrences(of: "ViT-B-", with: "ViT-B/").replacingOccurrences(of: "ViT-L-", with: "ViT-L/")
            .replacingOccurrences(of: "-336px", with: "@336px")
        let url = URL(string: "\(clipFolder)\(sha256)/\(name).pt")!
        // The hash is the one the address carries: one source for both.
        return ModelDescriptor(name: name, aliases: [slashed], fileName: "\(name).pt", url: url,
                               checksum: ModelChecksum.publishedInPath(of: url) ?? .unpublished, summary: summary,
                               size: .atLeast(parameters * 2))
    }

    /// The model called `name` (case-insensitive; a file name or CLIP's slashed name works too).
    public static func model(named name: String) -> ModelDescriptor? {
        let wanted = name.lowercased()
        return models.first { model in
            ([model.name, model.fileName] + model.aliases).contains { $0.lowercased() == wanted }
        }
    }
}
