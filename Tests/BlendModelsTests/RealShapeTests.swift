import Testing
import BlendTensor
import BlendTestSupport
@testable import BlendModels

/// One call of an engine op at a real model's shape.
enum LayerCall: Hashable, CustomStringConvertible, Sendable {
    /// `conv2d` of `[N, C, H, W]` with `[O, C, k, k]`.
    case conv(input: [Int], out: Int, kernel: Int, stride: Int, padding: Int)
    /// `linear` of `[..., in]` to `out` features.
    case linear(input: [Int], out: Int)
    /// `scaledDotProductAttention` of `[B, T, D]` queries on `[B, S, D]` keys.
    case attention(batch: Int, queries: Int, keys: Int, headDim: Int, causal: Bool)
    /// `tiledAttention` of `[N, T, H·D]` queries on `[N, S, H·D]` keys and values.
    case tiledAttention(batch: Int, queries: Int, keys: Int, heads: Int, headDim: Int)
    /// `groupNorm` (32 groups) of `shape`, or `groupNormSiLU`, with the timestep modulation when `modulated`.
    case groupNorm(shape: [Int], silu: Bool, modulated: Bool)
    case layerNorm(shape: [Int])
    case geglu(shape: [Int])
    case matmul(input: [Int], out: Int)

    var description: String {
        switch self {
        case let .conv(input, out, kernel, stride, padding): "conv \(input) -> \(out) k\(kernel) s\(stride) p\(padding)"
        case let .linear(input, out): "linear \(input) -> \(out)"
        case let .attention(b, t, s, d, causal): "attention [\(b), \(t), \(d)] x \(s) keys\(causal ? " causal" : "")"
        case let .tiledAttention(n, t, s, h, d): "tiled attention [\(n), \(t), \(h)x\(d)] x \(s) keys"
        case let .groupNorm(shape, silu, modulated): "groupNorm\(silu ? "+SiLU" : "")\(modulated ? " modulated" : "") \(shape)"
        case let .layerNorm(shape): "layerNorm \(shape)"
        case let .geglu(shape): "geglu \(shape)"
        case let .matmul(input, out): "matmul \(input) x [\(input.last!), \(out)]"
        }
    }

    /// The same call on fewer rows, where the whole image would take seconds: images wider than
    /// 128² become strips of 72 rows (at 256 and 512 columns, one band of Winograd tiles and a
    /// partial one, or two and a partial: each band's products keep their real shapes, only
    /// their number falls, and the plane stays large enough for the path the full image takes);
    /// attention over more than 10⁹ multiply-adds keeps its keys and a 300-query slice (one full
    /// tile of rows and a partial one).
    var cheapened: LayerCall {
        func strip(_ shape: [Int]) -> [Int] {
            guard shape.count == 4, shape[2] * shape[3] > 128 * 128 else { return shape }
            return [shape[0], shape[1], min(shape[2], shape[2] % 2 == 1 ? 73 : 72), shape[3]]
        }
        switch self {
        case let .conv(input, out, kernel, stride, padding):
            return .conv(input: strip(input), out: out, kernel: kernel, stride: stride, padding: padding)
        case let .groupNorm(shape, silu, modulated):
            return .groupNorm(shape: strip(shape), silu: silu, modulated: modulated)
        case let .tiledAttention(n, t, s, h, d) where t * s * h * d > 1_000_000_000:
            return .tiledAttention(batch: n, queries: min(t, 300), keys: s, heads: h, headDim: d)
        case let .attention(b, t, s, d, causal) where b * t * s * d > 1_000_000_000:
            return .attention(batch: b, queries: min(t, 300), keys: s, headDim: d, causal: causal)
        default:
            return self
        }
    }

    /// Seeded random inputs of the call: the differentiable ones first (`differentiable` of
    /// them), then weights.
    func inputs(seed: UInt64) -> (tensors: [Tensor], differentiable: Int) {
        switch self {
        case let .conv(input, out, kernel, _, _):
            let fanIn = Float(input[1] * kernel * kernel)
            return ([randn(input, seed: seed), randn([out, input[1], kernel, kernel], seed: seed + 1, std: 1 / fanIn.squareRoot()),
                     randn([out], seed: seed + 2)], 1)
        case let .linear(input, out):
            return ([randn(input, seed: seed), randn([out, input.last!], seed: seed + 1, std: 1 / Float(input.last!).squareRoot()),
                     randn([out], seed: seed + 2)], 1)
        case let .matmul(input, out):
            return ([randn(input, seed: seed), randn([input.last!, out], seed: seed + 1)], 1)
        case let .attention(b, t, s, d, _):
            return ([randn([b, t, d], seed: seed), randn([b, s, d], seed: seed + 1), randn([b, s, d], seed: seed + 2)], 3)
        case let .tiledAttention(n, t, s, heads, d):
            return ([randn([n, t, heads * d], seed: seed), randn([n, s, heads * d], seed: seed + 1),
                     randn([n, s, heads * d], seed: seed + 2)], 3)
        case let .groupNorm(shape, _, _):
            let c = shape[1]
            return ([randn(shape, seed: seed), randn([c], seed: seed + 1) + 1, randn([c], seed: seed + 2),
                     randn([shape[0], c], seed: seed + 3) * 0.1, randn([shape[0], c], seed: seed + 4) * 0.1], 1)
        case let .layerNorm(shape):
            return ([randn(shape, seed: seed), randn([shape.last!], seed: seed + 1), randn([shape.last!], seed: seed + 2)], 1)
        case let .geglu(shape):
            return ([randn(shape, seed: seed)], 1)
        }
    }

    /// The op on `t` (as ``inputs(seed:)`` makes them).
    func apply(_ t: [Tensor]) throws -> Tensor {
        switch self {
        case let .conv(_, _, _, stride, padding): return try conv2d(t[0], weight: t[1], bias: t[2], stride: stride, padding: padding)
        case .linear: return try BlendTensor.linear(t[0], weight: t[1], bias: t[2])
        case .matmul: return try t[0].matmul(t[1])
        case let .attention(_, _, _, _, causal): return try scaledDotProductAttention(q: t[0], k: t[1], v: t[2], causal: causal)
        case let .tiledAttention(_, _, _, heads, _): return try BlendTensor.tiledAttention(q: t[0], k: t[1], v: t[2], heads: heads)
        case let .groupNorm(_, silu, modulated):
            if !silu { return try BlendTensor.groupNorm(t[0], groups: 32, weight: t[1], bias: t[2]) }
            return try groupNormSiLU(t[0], groups: 32, weight: t[1], bias: t[2], scale: modulated ? t[3] : nil, shift: modulated ? t[4] : nil)
        case .layerNorm: return try BlendTensor.layerNorm(t[0], weight: t[1], bias: t[2])
        case .geglu: return try BlendTensor.geglu(t[0])
        }
    }
}

/// The distinct layer calls of the full-size models, derived from their published configs as
/// the models run them (batch: ADM-256 1, CLIP's 8 augmentations, SD's CFG pair 2, VAE 1).
enum RealModelShapes {
    /// guided-diffusion's `256x256_diffusion_uncond` (UNetConfig preset): every conv of its
    /// input, middle and output blocks with the skip concatenations, the timestep-modulated
    /// GroupNorm+SiLU, the 1×1 qkv/projection convs and the legacy-order attention at 32², 16², 8².
    static func adm256() -> Set<LayerCall> {
        let config = UNetConfig.presets["256x256_diffusion_uncond"]!
        let mc = config.modelChannels, n = 1
        let channels = config.channelMult.map { Int($0 * Double(mc)) }
        var calls: Set<LayerCall> = [.linear(input: [n, mc], out: 4 * mc), .linear(input: [n, 4 * mc], out: 4 * mc)]
        func res(_ r: Int) -> Int { config.imageSize >> r }
        func resBlock(_ cin: Int, _ cout: Int, _ level: Int, resample: Int = 0) {
            let r = res(level), r2 = resample < 0 ? r / 2 : resample > 0 ? r * 2 : r
            calls.insert(.groupNorm(shape: [n, cin, r, r], silu: true, modulated: false))
            calls.insert(.conv(input: [n, cin, r2, r2], out: cout, kernel: 3, stride: 1, padding: 1))
            calls.insert(.linear(input: [n, 4 * mc], out: 2 * cout))
            calls.insert(.groupNorm(shape: [n, cout, r2, r2], silu: true, modulated: true))
            calls.insert(.conv(input: [n, cout, r2, r2], out: cout, kernel: 3, stride: 1, padding: 1))
            if cin != cout { calls.insert(.conv(input: [n, cin, r2, r2], out: cout, kernel: 1, stride: 1, padding: 0)) }
        }
        func attention(_ c: Int, _ level: Int) {
            let tokens = res(level) * res(level), heads = c / config.numHeadChannels
            calls.insert(.groupNorm(shape: [n, c, tokens], silu: false, modulated: false))
            calls.insert(.conv(input: [n, c, 1, tokens], out: 3 * c, kernel: 1, stride: 1, padding: 0))
            calls.insert(.attention(batch: n * heads, queries: tokens, keys: tokens, headDim: config.numHeadChannels, causal: false))
            calls.insert(.conv(input: [n, c, 1, tokens], out: c, kernel: 1, stride: 1, padding: 0))
        }
        let attentionAt = Set(config.attentionResolutions)
        calls.insert(.conv(input: [n, config.inChannels, config.imageSize, config.imageSize], out: mc, kernel: 3, stride: 1, padding: 1))
        var skips = [mc], ch = mc
        for (level, c) in channels.enumerated() {
            for _ in 0..<config.numResBlocks {
                resBlock(ch, c, level)
                ch = c
                if attentionAt.contains(res(level)) { attention(c, level) }
                skips.append(ch)
            }
            if level < channels.count - 1 {
                resBlock(ch, ch, level, resample: -1)
                skips.append(ch)
            }
        }
        let deepest = channels.count - 1
        resBlock(ch, ch, deepest)
        attention(ch, deepest)
        for (level, c) in channels.enumerated().reversed() {
            for i in 0...config.numResBlocks {
                resBlock(ch + skips.removeLast(), c, level)
                ch = c
                if attentionAt.contains(res(level)) { attention(c, level) }
                if level > 0 && i == config.numResBlocks { resBlock(ch, ch, level, resample: 1) }
            }
        }
        calls.insert(.groupNorm(shape: [n, ch, config.imageSize, config.imageSize], silu: true, modulated: false))
        calls.insert(.conv(input: [n, ch, config.imageSize, config.imageSize], out: config.outChannels, kernel: 3, stride: 1, padding: 1))
        return calls
    }

    /// OpenAI CLIP ViT-B/16's image tower on 8 augmentations of a 224² crop (197 tokens).
    static func clipViTB16() -> Set<LayerCall> {
        let c = ClipConfig.presets["ViT-B/16"]!
        let n = 8, width = c.visionWidth, tokens = c.gridSize * c.gridSize + 1, heads = width / 64
        return [
            .conv(input: [n, 3, c.imageResolution, c.imageResolution], out: width, kernel: c.visionPatchSize,
                  stride: c.visionPatchSize, padding: 0),
            .layerNorm(shape: [n, tokens, width]), .linear(input: [n, tokens, width], out: 3 * width),
            .attention(batch: n * heads, queries: tokens, keys: tokens, headDim: 64, causal: false),
            .linear(input: [n, tokens, width], out: width), .linear(input: [n, tokens, width], out: 4 * width),
            .linear(input: [n, tokens, 4 * width], out: width), .layerNorm(shape: [n, 1, width]),
            .matmul(input: [n, 1, width], out: c.embedDim),
        ]
    }

    /// SD 1.5's UNet (`UNet2DConditionConfig.stableDiffusion1`) on the CFG pair at 64²: the
    /// down, middle and up blocks with their skip concatenations, transformers with 8 heads, the
    /// GEGLU feed-forward and 77-token cross-attention.
    static func sd15UNet() -> Set<LayerCall> {
        let n = 2, blocks = [320, 640, 1280, 1280], attentionLevels: Set = [0, 1, 2], heads = 8, context = 768
        var calls: Set<LayerCall> = [.conv(input: [n, 4, 64, 64], out: 320, kernel: 3, stride: 1, padding: 1),
                                     .linear(input: [n, 320], out: 1280), .linear(input: [n, 1280], out: 1280),
                                     .groupNorm(shape: [n, 320, 64, 64], silu: true, modulated: false),
                                     .conv(input: [n, 320, 64, 64], out: 4, kernel: 3, stride: 1, padding: 1)]
        func res(_ level: Int) -> Int { 64 >> level }
        func resnet(_ cin: Int, _ cout: Int, _ level: Int) {
            let r = res(level)
            calls.insert(.groupNorm(shape: [n, cin, r, r], silu: true, modulated: false))
            calls.insert(.conv(input: [n, cin, r, r], out: cout, kernel: 3, stride: 1, padding: 1))
            calls.insert(.linear(input: [n, 1280], out: cout))
            calls.insert(.groupNorm(shape: [n, cout, r, r], silu: true, modulated: false))
            calls.insert(.conv(input: [n, cout, r, r], out: cout, kernel: 3, stride: 1, padding: 1))
            if cin != cout { calls.insert(.conv(input: [n, cin, r, r], out: cout, kernel: 1, stride: 1, padding: 0)) }
        }
        func transformer(_ c: Int, _ level: Int) {
            let t = res(level) * res(level)
            calls.formUnion([
                .groupNorm(shape: [n, c, res(level), res(level)], silu: false, modulated: false),
                .linear(input: [n, t, c], out: c), .layerNorm(shape: [n, t, c]),
                .tiledAttention(batch: n, queries: t, keys: t, heads: heads, headDim: c / heads),
                .linear(input: [n, 77, context], out: c),
                .tiledAttention(batch: n, queries: t, keys: 77, heads: heads, headDim: c / heads),
                .linear(input: [n, t, c], out: 8 * c), .geglu(shape: [n, t, 8 * c]), .linear(input: [n, t, 4 * c], out: c),
            ])
        }
        var skips = [320], ch = 320
        for (level, c) in blocks.enumerated() {
            for _ in 0..<2 {
                resnet(ch, c, level)
                ch = c
                if attentionLevels.contains(level) { transformer(c, level) }
                skips.append(ch)
            }
            if level < 3 {
                calls.insert(.conv(input: [n, ch, res(level), res(level)], out: ch, kernel: 3, stride: 2, padding: 1))
                skips.append(ch)
            }
        }
        resnet(ch, ch, 3)
        transformer(ch, 3)
        for (level, c) in blocks.enumerated().reversed() {
            for _ in 0..<3 {
                resnet(ch + skips.removeLast(), c, level)
                ch = c
                if attentionLevels.contains(level) { transformer(c, level) }
            }
            if level > 0 { calls.insert(.conv(input: [n, ch, res(level - 1), res(level - 1)], out: ch, kernel: 3, stride: 1, padding: 1)) }
        }
        return calls
    }

    /// SD's VAE (`AutoencoderKLConfig.stableDiffusion`) encoding and decoding 512²: its ResNets,
    /// downsampling convs on the asymmetrically padded input (513²), nearest-upsampling convs and
    /// the single-head attention over 4,096 positions.
    static func sdVAE() -> Set<LayerCall> {
        let blocks = [128, 256, 512, 512], n = 1
        var calls: Set<LayerCall> = [
            .conv(input: [n, 3, 512, 512], out: 128, kernel: 3, stride: 1, padding: 1),
            .conv(input: [n, 512, 64, 64], out: 8, kernel: 3, stride: 1, padding: 1),
            .conv(input: [n, 8, 64, 64], out: 8, kernel: 1, stride: 1, padding: 0),
            .conv(input: [n, 4, 64, 64], out: 4, kernel: 1, stride: 1, padding: 0),
            .conv(input: [n, 4, 64, 64], out: 512, kernel: 3, stride: 1, padding: 1),
            .groupNorm(shape: [n, 128, 512, 512], silu: true, modulated: false),
            .conv(input: [n, 128, 512, 512], out: 3, kernel: 3, stride: 1, padding: 1),
            .groupNorm(shape: [n, 512, 64, 64], silu: false, modulated: false),
            .linear(input: [n, 4096, 512], out: 512),
            .tiledAttention(batch: n, queries: 4096, keys: 4096, heads: 1, headDim: 512),
        ]
        func resnet(_ cin: Int, _ cout: Int, _ r: Int) {
            calls.insert(.groupNorm(shape: [n, cin, r, r], silu: true, modulated: false))
            calls.insert(.conv(input: [n, cin, r, r], out: cout, kernel: 3, stride: 1, padding: 1))
            calls.insert(.groupNorm(shape: [n, cout, r, r], silu: true, modulated: false))
            calls.insert(.conv(input: [n, cout, r, r], out: cout, kernel: 3, stride: 1, padding: 1))
            if cin != cout { calls.insert(.conv(input: [n, cin, r, r], out: cout, kernel: 1, stride: 1, padding: 0)) }
        }
        // Encoder: 512² → 64².
        var ch = 128, r = 512
        for (level, c) in blocks.enumerated() {
            for _ in 0..<2 { resnet(ch, c, r); ch = c }
            if level < 3 {
                calls.insert(.conv(input: [n, ch, r + 1, r + 1], out: ch, kernel: 3, stride: 2, padding: 0))
                r /= 2
            }
        }
        resnet(ch, ch, r)
        // Decoder: 64² → 512², three ResNets per block, channels reversed.
        for (level, c) in blocks.reversed().enumerated() {
            for _ in 0..<3 { resnet(ch, c, r); ch = c }
            if level < 3 {
                r *= 2
                calls.insert(.conv(input: [n, ch, r, r], out: ch, kernel: 3, stride: 1, padding: 1))
            }
        }
        return calls
    }

    /// SD 1.x's text encoder (CLIP ViT-L/14 text tower, `SDTextEncoderConfig.sd1`) on the CFG pair.
    static func sd15TextEncoder() -> Set<LayerCall> {
        let c = SDTextEncoderConfig.sd1, n = 2, t = 77, d = c.hiddenSize
        return [.layerNorm(shape: [n, t, d]), .linear(input: [n, t, d], out: d),
                .attention(batch: n * c.numAttentionHeads, queries: t, keys: t, headDim: d / c.numAttentionHeads, causal: true),
                .linear(input: [n, t, d], out: c.intermediateSize), .linear(input: [n, t, c.intermediateSize], out: d)]
    }
}

/// Every distinct layer shape of the full-size ADM-256 UNet, CLIP ViT-B/16, the SD 1.5 UNet,
/// VAE and text encoder, one layer at a time with random weights, at 16 threads against 1:
/// output and input gradient bit for bit the same, so a shape-specific defect of a real model
/// (a tile, a band, a split) fails on a 2-core CI machine, in seconds (the largest images as
/// strips of their real width: ``LayerCall/cheapened``).
@Suite struct RealShapeTests {
    static let models: [(String, Set<LayerCall>)] = [
        ("ADM-256", RealModelShapes.adm256()), ("CLIP ViT-B/16", RealModelShapes.clipViTB16()),
        ("SD 1.5 UNet", RealModelShapes.sd15UNet()), ("SD VAE", RealModelShapes.sdVAE()),
        ("SD 1.5 text encoder", RealModelShapes.sd15TextEncoder()),
    ]

    @Test func theShapeListsHaveTheModelsLayers() {
        let adm = RealModelShapes.adm256()
        // The 512-channel skip concatenation at 256², the 2048 → 1024 one at 8², attention heads of 64.
        #expect(adm.contains(.conv(input: [1, 512, 256, 256], out: 256, kernel: 3, stride: 1, padding: 1)))
        #expect(adm.contains(.conv(input: [1, 2048, 8, 8], out: 1024, kernel: 3, stride: 1, padding: 1)))
        #expect(adm.contains(.attention(batch: 8, queries: 1024, keys: 1024, headDim: 64, causal: false)))
        let unet = RealModelShapes.sd15UNet()
        #expect(unet.contains(.conv(input: [2, 960, 64, 64], out: 320, kernel: 3, stride: 1, padding: 1)))
        #expect(unet.contains(.tiledAttention(batch: 2, queries: 4096, keys: 77, heads: 8, headDim: 40)))
        #expect(RealModelShapes.sdVAE().contains(.conv(input: [1, 256, 512, 512], out: 128, kernel: 3, stride: 1, padding: 1)))
        for (name, calls) in Self.models { #expect(calls.count >= 5, "\(name): \(calls.count) calls") }
    }

    @Test(arguments: 0..<models.count)
    func everyLayerShapeGivesTheSameBitsOn16ThreadsAsOn1(index: Int) throws {
        let (name, calls) = Self.models[index]
        // The pixel method backpropagates through the ADM UNet and CLIP's image tower, and the
        // latent method's background reconstruction through the VAE's decoder.
        let withGradient = name == "ADM-256" || name == "CLIP ViT-B/16" || name == "SD VAE"
        for (i, call) in calls.sorted(by: { $0.description < $1.description }).enumerated() {
            let cheap = call.cheapened
            let (tensors, differentiable) = cheap.inputs(seed: UInt64(1000 + 10 * i))
            var g: Tensor?
            func run(_ threads: Int) throws -> [[Float]] {
                try EngineThreads.withCount(threads) {
                    let leaves = tensors.enumerated().map { $0.offset < differentiable && withGradient ? $0.element.requiringGradient() : $0.element }
                    let y = try cheap.apply(leaves)
                    guard withGradient else { return [y.scalars] }
                    if g == nil { g = randn(y.shape, seed: UInt64(5000 + i)) }
                    return [y.scalars] + (try gradients(of: y, withRespectTo: Array(leaves.prefix(differentiable)), seed: g!)).map(\.scalars)
                }
            }
            let one = try run(1), sixteen = try run(16)
            #expect(allFinite(one[0]), "\(name) \(cheap): non-finite output")
            for (j, (a, b)) in zip(one, sixteen).enumerated() {
                #expect(sameBits(a, b), "\(name) \(cheap): \(j == 0 ? "the output" : "input gradient \(j)") differs on 16 threads")
            }
        }
    }
}
