/// The two ways Stable Diffusion weights are named.
public enum StableDiffusionKeyLayout: String, Sendable, CaseIterable {
    /// The original CompVis/Stability single files (`.ckpt`, `.safetensors`): every network
    /// under its prefix (`model.diffusion_model.*` UNet, `first_stage_model.*` VAE,
    /// `cond_stage_model.*` text encoder) with ldm's module names.
    case compVis
    /// diffusers' folder layout: one folder per network (`unet/`, `vae/`, ...) with diffusers'
    /// module names and a `config.json`.
    case diffusers
}

/// Reads a layer's tensors under one of several names (the first present wins) with shape
/// checks: the shared vocabulary of the SD key-layout files.
struct SDWeightReader {
    let weights: ModelWeights

    /// The first of the layer names `names` whose weight the checkpoint holds (the last one
    /// when none, so that the error names it).
    func name(_ names: [String]) -> String { names.first { weights.contains("\($0).weight") } ?? names[names.count - 1] }

    func conv(_ prefix: String, in cin: Int, out cout: Int, kernel: Int, stride: Int = 1, padding: Int? = nil) throws -> Conv2dLayer {
        Conv2dLayer(weight: try weights.take("\(prefix).weight", shape: [cout, cin, kernel, kernel]),
                    bias: try weights.take("\(prefix).bias", shape: [cout]),
                    stride: stride, padding: padding ?? kernel / 2)
    }

    /// A linear layer; `convKernel` accepts its weight stored as a 1×1 convolution `[out, in, 1, 1]`.
    func linear(_ prefix: String, in cin: Int, out cout: Int, bias: Bool = true, convKernel: Bool = false) throws -> LinearLayer {
        let weight = convKernel
            ? try weights.take("\(prefix).weight", shape: [cout, cin, 1, 1]).reshaped([cout, cin])
            : try weights.take("\(prefix).weight", shape: [cout, cin])
        return LinearLayer(weight: weight, bias: bias ? try weights.take("\(prefix).bias", shape: [cout]) : nil)
    }

    func groupNorm(_ prefix: String, channels: Int, groups: Int, eps: Float) throws -> GroupNormLayer {
        GroupNormLayer(groups: groups, weight: try weights.take("\(prefix).weight", shape: [channels]),
                       bias: try weights.take("\(prefix).bias", shape: [channels]), eps: eps)
    }

    func layerNorm(_ prefix: String, channels: Int) throws -> LayerNormLayer {
        LayerNormLayer(weight: try weights.take("\(prefix).weight", shape: [channels]),
                       bias: try weights.take("\(prefix).bias", shape: [channels]), eps: 1e-5)
    }

    /// A `ResnetBlock2D` whose parts are named by `names(part)` (the layouts differ).
    func resnet(in cin: Int, out cout: Int, timeEmbedDim: Int?, groups: Int, eps: Float,
                names: (ResnetPart) -> String) throws -> ResnetBlock2D {
        ResnetBlock2D(
            norm1: try groupNorm(names(.norm1), channels: cin, groups: groups, eps: eps),
            conv1: try conv(names(.conv1), in: cin, out: cout, kernel: 3),
            timeEmbeddingProjection: try timeEmbedDim.map { try linear(names(.timeEmbeddingProjection), in: $0, out: cout) },
            norm2: try groupNorm(names(.norm2), channels: cout, groups: groups, eps: eps),
            conv2: try conv(names(.conv2), in: cout, out: cout, kernel: 3),
            // As in diffusers, a 1×1 shortcut exists exactly when the channel count changes.
            shortcut: cin == cout ? nil : try conv(names(.shortcut), in: cin, out: cout, kernel: 1),
            outputScale: 1)
    }
}

/// The parts of a `ResnetBlock2D`, named differently by each layout.
enum ResnetPart {
    case norm1, conv1, timeEmbeddingProjection, norm2, conv2, shortcut
}
