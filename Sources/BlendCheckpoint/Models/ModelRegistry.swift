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

    public init(name: String, aliases: [String] = [], fileName: String, url: URL, checksum: ModelChecksum, summary: String) {
        self.name = name
        self.aliases = aliases
        self.fileName = fileName
        self.url = url
        self.checksum = checksum
        self.summary = summary
    }
}

/// The official files Blended Diffusion uses, at the locations their reference
/// repositories publish.
public enum ModelRegistry {
    // guided-diffusion's README lists these under one folder and publishes no hashes.
    private static let guidedDiffusionFolder = "https://openaipublic.blob.core.windows.net/diffusion/jul-2021/"
    // CLIP's download folder is named by the file's SHA-256 (clip/clip.py, `_MODELS`).
    private static let clipFolder = "https://openaipublic.azureedge.net/clip/models/"

    public static let models: [ModelDescriptor] = [
        guidedDiffusion("256x256_diffusion_uncond", "unconditional 256x256 ImageNet diffusion model (Blended Diffusion's default), fp32, 2.2 GB"),
        guidedDiffusion("256x256_diffusion", "class-conditional 256x256 ImageNet diffusion model, fp32, 2.2 GB"),
        guidedDiffusion("512x512_diffusion", "class-conditional 512x512 ImageNet diffusion model, fp32, 2.2 GB"),
        clip("ViT-B-32", "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af", "OpenAI CLIP ViT-B/32 (TorchScript, fp16), ~340 MB"),
        clip("ViT-B-16", "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f", "OpenAI CLIP ViT-B/16 (TorchScript, fp16), ~340 MB"),
        clip("ViT-L-14", "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836", "OpenAI CLIP ViT-L/14 (TorchScript, fp16), ~890 MB"),
        clip("ViT-L-14-336px", "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02", "OpenAI CLIP ViT-L/14@336px (TorchScript, fp16), ~890 MB"),
        // The tokenizer's vocabulary, from the openai/CLIP repository (the same file ships in
        // the reference code and in clip-anytorch).
        ModelDescriptor(
            name: "clip-vocab", aliases: ["bpe_simple_vocab_16e6"], fileName: "bpe_simple_vocab_16e6.txt.gz",
            url: URL(string: "https://github.com/openai/CLIP/raw/main/clip/bpe_simple_vocab_16e6.txt.gz")!,
            checksum: .sha256("924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"),
            summary: "CLIP's byte-pair-encoding vocabulary (49,408 tokens), 1.4 MB"),
        ModelDescriptor(
            name: "vgg16", fileName: "vgg16-397923af.pth",
            url: URL(string: "https://download.pytorch.org/models/vgg16-397923af.pth")!,
            checksum: .sha256Prefix("397923af"),
            summary: "torchvision VGG16 ImageNet weights (LPIPS backbone), ~530 MB"),
        // The LPIPS package ships these in its repository; the hash is that of the copy
        // in the lpips 0.1.4 wheel, which is built from the same file.
        ModelDescriptor(
            name: "lpips-vgg", fileName: "vgg.pth",
            url: URL(string: "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/vgg.pth")!,
            checksum: .sha256("a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868"),
            summary: "LPIPS v0.1 linear-layer weights for VGG (legacy torch.save format), 7 KB"),
    ]

    private static func guidedDiffusion(_ name: String, _ summary: String) -> ModelDescriptor {
        ModelDescriptor(name: name, fileName: "\(name).pt", url: URL(string: guidedDiffusionFolder + "\(name).pt")!,
                        checksum: .unpublished, summary: summary)
    }

    private static func clip(_ name: String, _ sha256: String, _ summary: String) -> ModelDescriptor {
        // CLIP's own names use a slash ("ViT-B/16"); files and URLs a dash.
        let slashed = name.replacingOccurrences(of: "ViT-B-", with: "ViT-B/").replacingOccurrences(of: "ViT-L-", with: "ViT-L/")
            .replacingOccurrences(of: "-336px", with: "@336px")
        return ModelDescriptor(name: name, aliases: [slashed], fileName: "\(name).pt",
                               url: URL(string: "\(clipFolder)\(sha256)/\(name).pt")!, checksum: .sha256(sha256), summary: summary)
    }

    /// The model called `name` (case-insensitive; a file name or CLIP's slashed name works too).
    public static func model(named name: String) -> ModelDescriptor? {
        let wanted = name.lowercased()
        return models.first { model in
            ([model.name, model.fileName] + model.aliases).contains { $0.lowercased() == wanted }
        }
    }
}
