// blend-bench: release-mode timings of the tensor engine's heavy ops.
//
// Each op runs once to warm up, then `--repeats` times; the median is reported.
// With --json, one JSON object per line (the format bench/compare.py reads):
//   {"name": "conv3x3_256_fwd", "seconds": 0.5, "runs": 5, "gflops": 150.0}
// The op names and shapes match bench/engine_bench.py, the PyTorch side.
// --precision bf16 (or bf16-rounded) runs the convolutions in that precision and
// --conv-backend engine|onednn forces one convolution backend; either suffixes the op
// names (conv3x3_256_fwd_bf16, conv3x3_256_fwd_onednn) so that runs can be compared;
// --conv3x3 im2col|winograd-f2|winograd-f4 forces the stride-1 3×3 path (suffix _winograd-f4 ...);
// --weight-transforms kept|per-call forces what convolutions keep (suffix _transforms-kept ...);
// --cache-limit-mib N sets the engine's cache of freed blocks (TensorMemory.cacheLimitBytes).
import BlendDiffusion
import BlendEditor
import BlendModels
import BlendTensor
import Foundation

struct Options {
    var json = false
    var repeats = 5
    var warmup = 1
    var only: Set<String> = []
    var precision = ComputePrecision.fp32
    var convBackend = ConvolutionBackend.automatic
    var conv3x3 = Convolution3x3Algorithm.automatic
    var weightTransforms = WeightTransformPolicy.automatic
    /// `--cache-limit-mib`: the engine's block-cache limit, when given.
    var cacheLimitMiB: Int?
    /// `--threads`: the engine's process-wide thread count, when given.
    var threads: Int?
    /// The convolution micro-benchmarks of the UNet's shapes (`conv_*`).
    var convs = false
    /// Timesteps at which to measure the full-size UNet's accuracy in `precision` against fp32.
    var accuracyTimesteps: [Int] = []

    /// What the op names get appended: "_bf16", "_onednn", both or nothing.
    var nameSuffix: String {
        (precision == .fp32 ? "" : "_" + precision.rawValue) + (convBackend == .automatic ? "" : "_" + convBackend.rawValue)
            + (conv3x3 == .automatic ? "" : "_" + conv3x3.rawValue)
            + (weightTransforms == .automatic ? "" : "_transforms-" + weightTransforms.rawValue)
    }
}

func parseOptions(names: [String]) -> Options {
    var options = Options()
    var args = CommandLine.arguments.dropFirst().makeIterator()
    while let arg = args.next() {
        switch arg {
        case "--json": options.json = true
        case "--repeats":
            guard let v = args.next(), let n = Int(v), n > 0 else { fail("--repeats needs a positive integer") }
            options.repeats = n
        case "--warmup":
            guard let v = args.next(), let n = Int(v), n >= 0 else { fail("--warmup needs a non-negative integer") }
            options.warmup = n
        case "--only":
            guard let v = args.next() else { fail("--only needs a comma-separated list of op names") }
            options.only = Set(v.split(separator: ",").map(String.init))
        case "--precision":
            guard let v = args.next(), let p = ComputePrecision(rawValue: v) else {
                fail("--precision needs one of \(ComputePrecision.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            options.precision = p
        case "--conv-backend":
            guard let v = args.next(), let b = ConvolutionBackend(rawValue: v) else {
                fail("--conv-backend needs one of \(ConvolutionBackend.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            options.convBackend = b
        case "--conv3x3":
            guard let v = args.next(), let a = Convolution3x3Algorithm(rawValue: v) else {
                fail("--conv3x3 needs one of \(Convolution3x3Algorithm.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            options.conv3x3 = a
        case "--weight-transforms":
            guard let v = args.next(), let p = WeightTransformPolicy(rawValue: v) else {
                fail("--weight-transforms needs one of \(WeightTransformPolicy.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            options.weightTransforms = p
        case "--cache-limit-mib":
            guard let v = args.next(), let n = Int(v), n >= 0 else { fail("--cache-limit-mib needs a non-negative integer") }
            options.cacheLimitMiB = n
        case "--threads":
            guard let v = args.next(), let n = Int(v), (1...EngineThreads.maximum).contains(n) else {
                fail("--threads needs a whole number from 1 to \(EngineThreads.maximum)")
            }
            options.threads = n
        case "--convs": options.convs = true
        case "--accuracy":
            guard let v = args.next() else { fail("--accuracy needs a comma-separated list of timesteps") }
            let steps = v.split(separator: ",").compactMap { Int($0) }
            guard !steps.isEmpty, steps.allSatisfy({ (0..<1000).contains($0) }) else { fail("--accuracy needs timesteps 0...999") }
            options.accuracyTimesteps = steps
        case "-h", "--help":
            print("""
            usage: blend-bench [--json] [--repeats N] [--warmup N] [--only NAME[,NAME...]] [--precision fp32|bf16|bf16-rounded]
                               [--conv-backend automatic|engine|onednn] [--conv3x3 automatic|im2col|winograd-f2|winograd-f4]
                               [--weight-transforms automatic|kept|per-call] [--cache-limit-mib N]
                               [--threads N] [--convs] [--accuracy T[,T...]]
            Times the tensor engine's heavy ops (median of N runs after --warmup runs, 1 by default).
            --convs runs the convolution micro-benchmarks (conv_*) of the UNet's shapes instead of the default ops.
            --accuracy T,...: instead of timing, the full-size UNet's output and input gradient in --precision
            against fp32 at those timesteps (relative L2 errors).
            --weight-transforms: which rearranged kernels convolutions keep (WeightTransformPolicy).
            --cache-limit-mib N: the engine's cache of freed tensor blocks (default 1024 MiB).
            --threads N: the engine's threads (default: $BLEND_NUM_THREADS, else the CPUs this process may use).
            Ops: \(names.joined(separator: ", "))
            """)
            exit(0)
        default: fail("unknown argument '\(arg)' (try --help)")
        }
    }
    return options
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("blend-bench: \(message)\n".utf8))
    exit(2)
}

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

struct Benchmark {
    let name: String
    let flops: Double?
    /// Builds inputs once, returns the closure to time.
    let setUp: () throws -> () throws -> Void
}



/// Inputs are seeded by their shape so every run (and every op) sees the same data.
func randn(_ shape: [Int], std: Float = 1) throws -> Tensor {
    var rng = SplitMix64(seed: UInt64(shape.reduce(7, { $0 &* 31 &+ $1 })))
    return try Tensor.randomNormal(shape, std: std, using: &rng)
}

let benchmarks: [Benchmark] = [
    Benchmark(name: "sgemm_2048", flops: 2 * pow(2048, 3)) {
        let a = try randn([2048, 2048]), b = try randn([2048, 2048])
        return { _ = try a.matmul(b) }
    },
    Benchmark(name: "conv3x3_256_fwd", flops: 2 * 256 * 256 * 9 * 256 * 256) {
        let x = try randn([1, 256, 256, 256]), w = try randn([256, 256, 3, 3], std: 0.02), b = try randn([256])
        return { _ = try conv2d(x, weight: w, bias: b, padding: 1) }
    },
    Benchmark(name: "conv3x3_256_bwd_input", flops: 2 * 256 * 256 * 9 * 256 * 256) {
        let x = try randn([1, 256, 256, 256]).requiringGradient()
        let w = try randn([256, 256, 3, 3], std: 0.02), b = try randn([256])
        let y = try conv2d(x, weight: w, bias: b, padding: 1)
        let g = try randn(y.shape)
        return { _ = try gradients(of: y, withRespectTo: [x], seed: g, retainGraph: true) }
    },
    Benchmark(name: "groupnorm_256_fwd", flops: nil) {
        let x = try randn([1, 256, 256, 256]), w = try randn([256]), b = try randn([256])
        return { _ = try groupNorm(x, groups: 32, weight: w, bias: b) }
    },
    Benchmark(name: "groupnorm_256_bwd_input", flops: nil) {
        let x = try randn([1, 256, 256, 256]).requiringGradient(), w = try randn([256]), b = try randn([256])
        let y = try groupNorm(x, groups: 32, weight: w, bias: b)
        let g = try randn(y.shape)
        return { _ = try gradients(of: y, withRespectTo: [x], seed: g, retainGraph: true) }
    },
    Benchmark(name: "attention_1024x512_fwd", flops: nil) {
        let q = try randn([8, 1024, 64]), k = try randn([8, 1024, 64]), v = try randn([8, 1024, 64])
        return { _ = try scaledDotProductAttention(q: q, k: k, v: v) }
    },
    Benchmark(name: "attention_1024x512_fwd_bwd", flops: nil) {
        let q = try randn([8, 1024, 64]), k = try randn([8, 1024, 64]), v = try randn([8, 1024, 64])
        let g = try randn([8, 1024, 64])
        return {
            let (ql, kl, vl) = (q.requiringGradient(), k.requiringGradient(), v.requiringGradient())
            let y = try scaledDotProductAttention(q: ql, k: kl, v: vl)
            _ = try gradients(of: y, withRespectTo: [ql, kl, vl], seed: g)
        }
    },
]

/// A convolution of the ADM-256 UNet's kind, forward and input gradient: `[1, c, size, size]`
/// to `o` channels, k×k kernel.
func convBenchmarks(_ c: Int, _ size: Int, _ o: Int, k: Int, stride: Int = 1) -> [Benchmark] {
    let pad = k / 2, out = (size + 2 * pad - k) / stride + 1
    let name = "conv\(k)x\(k)\(stride == 1 ? "" : "s\(stride)")_\(c)_\(size)px_to\(o)"
    let flops = 2 * Double(o * c * k * k * out * out)
    func inputs() throws -> (Tensor, Tensor, Tensor) {
        (try randn([1, c, size, size]), try randn([o, c, k, k], std: 1 / Float(c * k * k).squareRoot()), try randn([o]))
    }
    return [
        Benchmark(name: name + "_fwd", flops: flops) {
            let (x, w, b) = try inputs()
            return { _ = try conv2d(x, weight: w, bias: b, stride: stride, padding: pad) }
        },
        Benchmark(name: name + "_bwd_input", flops: flops) {
            let (x0, w, b) = try inputs()
            let x = x0.requiringGradient()
            let y = try conv2d(x, weight: w, bias: b, stride: stride, padding: pad)
            let g = try randn(y.shape)
            return { _ = try gradients(of: y, withRespectTo: [x], seed: g, retainGraph: true) }
        },
    ]
}

/// The UNet's convolutions where the engine's paths were slowest against PyTorch: small
/// images with many channels (im2col below 1024 pixels), stride 2, and 1×1 (skip projections;
/// the attention blocks' qkv and output projections are 1×1 conv1d over the tokens).
let convMicroBenchmarks: [Benchmark] =
    convBenchmarks(1024, 8, 1024, k: 3) + convBenchmarks(1024, 16, 1024, k: 3) + convBenchmarks(512, 32, 512, k: 3)
    + convBenchmarks(256, 64, 256, k: 3) + convBenchmarks(256, 128, 256, k: 3, stride: 2)
    + convBenchmarks(512, 32, 512, k: 3, stride: 2) + convBenchmarks(1024, 16, 3072, k: 1)
    + convBenchmarks(2048, 16, 1024, k: 1) + convBenchmarks(512, 64, 1536, k: 1) + convBenchmarks(512, 64, 256, k: 1)

/// Full-size random weights: uniform values with variance 1/fan_in from an inline
/// xorshift (drawing 552M Gaussian samples would take longer than the benchmark itself).
func randomWeights(_ name: String) -> ModelWeights {
    var seed: UInt64 = 1
    return ModelWeights(synthesizing: { _, shape in
        seed &+= 0x9E37_79B9_7F4A_7C15
        var state = seed | 1
        let fanIn = shape.count > 1 ? shape.dropFirst().reduce(1, *) : 1
        let bound = (3 / Float(fanIn)).squareRoot()
        return try Tensor(shape: shape) { buffer in
            for i in buffer.indices {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17
                buffer[i] = (Float(state >> 40) / Float(1 << 24) * 2 - 1) * bound
            }
        }
    }, modelName: name)
}

/// The full-size ADM-256 UNet (`256x256_diffusion_uncond`) with random weights.
func randomADM256() throws -> UNetModel {
    try UNetModel(config: UNetConfig.presets["256x256_diffusion_uncond"]!, weights: randomWeights("UNet"))
}

/// Peak resident set size of this process so far (VmHWM), in GiB.
func peakRSSGiB() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kb = Double(line.split(whereSeparator: { $0 == " " || $0 == "\t" })[1]) else { return .nan }
    return kb / 1024 / 1024
}

/// One guided step of Blended Diffusion at full size with `batch` samples made together.
func editStepBenchmark(name: String, batch: Int) -> Benchmark {
    Benchmark(name: name, flops: nil) {
        let models = EditorModels(unet: try randomADM256(),
                                  clip: try ClipModel(weights: randomWeights("CLIP"), config: ClipConfig.presets["ViT-B/16"]!))
        var settings = EditSettings(prompt: "a red ball")
        settings.samples = batch
        settings.batchSize = batch
        settings.pixel.skipTimesteps = 99
        let editor = try BlendedDiffusionEditor(models: models, settings: settings)
        let image = try randn([1, 3, 256, 256]).clamped(min: -1, max: 1)
        let mask = try Tensor(shape: [1, 1, 256, 256]) { m in
            for i in m.indices { m[i] = (64..<192).contains(i / 256) && (64..<192).contains(i % 256) ? 1 : 0 }
        }
        let text = try randn([1, 512])
        return { _ = try editor.edit(image: image, mask: mask, promptEmbedding: text) }
    }
}

let unetBenchmarks: [Benchmark] = [
    // One guided step of Blended Diffusion at full size, batch 1, 8 CLIP views: the editor
    // with 99 of 100 steps skipped runs exactly one (plus the final ranking embedding).
    editStepBenchmark(name: "edit_step_adm256", batch: 1),
    // The same at batch 2 (two samples made together): its peak RSS checks the per-sample
    // term of the memory estimate `blend edit` refuses by (BlendPipeline/MemoryEstimate.swift).
    editStepBenchmark(name: "edit_step_adm256_b2", batch: 2),
    // Blended Diffusion's guidance embeds 8 views of each sample per step.
    Benchmark(name: "clip_vitb16_b8_fwd_bwd", flops: nil) {
        let clip = try ClipModel(weights: randomWeights("CLIP"), config: ClipConfig.presets["ViT-B/16"]!)
        let images = try randn([8, 3, 224, 224])
        return {
            let leaf = images.requiringGradient()
            _ = try gradients(of: clip.image(leaf), withRespectTo: [leaf])
        }
    },
    // 2.23 TFLOP per forward at 256x256 (measured by the reference's FLOP counter).
    Benchmark(name: "unet_adm256_fwd", flops: nil) {
        let model = try randomADM256()
        let x = try randn([1, 3, 256, 256])
        return { _ = try model(x, timesteps: [500]) }
    },
    Benchmark(name: "unet_adm256_fwd_bwd", flops: nil) {
        let model = try randomADM256()
        let x = try randn([1, 3, 256, 256])
        return {
            let xl = x.requiringGradient()
            let y = try model(xl, timesteps: [500])
            _ = try gradients(of: y, withRespectTo: [xl])
        }
    },
]

/// A whole Blended Latent Diffusion edit at 512² as `blend edit --method latent` runs it, less
/// file reading, tokenizing, ranking and paste-back: both prompts through the text encoder, VAE
/// encode, DPM-Solver++(2M) with 25 steps of which `strength` runs the last `int(25 · strength)`
/// (CFG 7.5, blending after each), VAE decode of each sample; `samples` made together.
func latentEditBenchmark(name: String, strength: Double = 0.75, samples: Int = 1) -> Benchmark {
    Benchmark(name: name, flops: nil) {
        let unet = try UNet2DConditionModel(config: .stableDiffusion1, weights: randomWeights("UNet"), layout: .diffusers)
        let vae = try AutoencoderKL(config: .stableDiffusion, weights: randomWeights("VAE"), layout: .diffusers)
        let encoder = try SDTextEncoder(weights: randomWeights("TextEncoder"), config: .sd1, layout: .diffusers)
        let solver = try DPMSolverMultistep(schedule: NoiseSchedule.scaledLinear(), steps: 25)
        var settings = LatentEditSettings()
        settings.start = .strength(strength)
        settings.samples = samples
        settings.batchSize = samples
        let editor = try BlendedLatentDiffusionEditor(denoiser: StableDiffusionDenoiser(unet: unet),
                                                      autoencoder: StableDiffusionAutoencoder(vae: vae),
                                                      solver: solver, settings: settings)
        let image = try randn([1, 3, 512, 512]).clamped(min: -1, max: 1)
        let mask = try Tensor(shape: [1, 1, 512, 512]) { m in
            for i in m.indices { m[i] = (128..<384).contains(i / 512) && (128..<384).contains(i % 512) ? 1 : 0 }
        }
        var rng = SplitMix64(seed: 78)
        let prompt = [49406] + (0..<5).map { _ in Int(rng.next() % 49000) } + Array(repeating: 49407, count: 71)
        let empty = [49406] + Array(repeating: 49407, count: 76)
        return {
            _ = try editor.edit(image: image, mask: mask, context: encoder([prompt]), unconditionalContext: encoder([empty]))
        }
    }
}

/// Stable Diffusion 1.5 at full size with random weights (issue #11): the configs of
/// runwayml/stable-diffusion-v1-5's `unet/`, `vae/` and `text_encoder/` folders.
let sdBenchmarks: [Benchmark] = [
    // One classifier-free-guidance step: the UNet on the unconditional and the prompt's
    // context at once (batch 2, 4×64×64 latents, 77×768 context), then ε_u + 7.5·(ε_c − ε_u).
    Benchmark(name: "sd15_unet_cfg_step", flops: nil) {
        let unet = try UNet2DConditionModel(config: .stableDiffusion1, weights: randomWeights("UNet"), layout: .diffusers)
        let latent = try randn([1, 4, 64, 64])
        let context = try randn([2, 77, 768])
        return {
            let eps = try unet(Tensor.concatenate([latent, latent], axis: 0), timesteps: [500, 500], context: context)
            let parts = try eps.chunked(2, axis: 0)
            _ = try parts[0] + (parts[1] - parts[0]) * 7.5
        }
    },
    Benchmark(name: "sd15_vae_encode_512", flops: nil) {
        let vae = try AutoencoderKL(config: .stableDiffusion, weights: randomWeights("VAE"), layout: .diffusers)
        let image = try randn([1, 3, 512, 512]).clamped(min: -1, max: 1)
        return { _ = try vae.encode(image).mean }
    },
    Benchmark(name: "sd15_vae_decode_512", flops: nil) {
        let vae = try AutoencoderKL(config: .stableDiffusion, weights: randomWeights("VAE"), layout: .diffusers)
        let z = try randn([1, 4, 64, 64])
        return { _ = try vae.decode(z) }
    },
    // A whole default one-sample edit at 512² as `blend edit --method latent` runs it, less file
    // reading, tokenizing and paste-back: both prompts through the text encoder, VAE encode,
    // DPM-Solver++(2M) with 25 steps of which strength 0.75 runs 18 (CFG 7.5, blending after
    // each), VAE decode. Minutes a run: time it with --warmup 0 --repeats 1.
    latentEditBenchmark(name: "sd15_edit_default"),
    // The same with only the last 2 of the 25 steps (strength 0.08), at batch 1 and at batch 2
    // (2 samples made together: the UNet on batch 4): their peak RSS calibrates the latent
    // method's memory estimate (BlendPipeline/MemoryEstimate.swift); every step peaks alike.
    latentEditBenchmark(name: "sd15_edit_short_b1", strength: 0.08, samples: 1),
    latentEditBenchmark(name: "sd15_edit_short_b2", strength: 0.08, samples: 2),
    // CLIP ViT-L/14's text tower on the prompt and the empty prompt (batch 2, 77 tokens).
    Benchmark(name: "sd15_text_encoder", flops: nil) {
        let encoder = try SDTextEncoder(weights: randomWeights("TextEncoder"), config: .sd1, layout: .diffusers)
        var rng = SplitMix64(seed: 77)
        let tokens = (0..<2).map { _ in (0..<77).map { _ in Int(rng.next() % 49408) } }
        return { _ = try encoder(tokens) }
    },
]

/// The stride-1 3×3 convolutions of the SD UNet (64² and 32² latents), the VAE (512²…128²) and
/// ADM-256 (256²…32²), for choosing between im2col and the Winograd sizes (`--conv3x3`); only
/// when named with --only.
let winogradShapeBenchmarks: [Benchmark] =
    [(320, 64), (640, 32), (128, 512), (256, 256), (512, 128), (512, 64), (256, 128), (512, 32), (256, 64)]
    .flatMap { convBenchmarks($0.0, $0.1, $0.0, k: 3) }

let options = parseOptions(names: (benchmarks + unetBenchmarks + sdBenchmarks + convMicroBenchmarks + winogradShapeBenchmarks).map(\.name))
do {
    try EngineThreads.validate(threads: options.threads, environment: ProcessInfo.processInfo.environment)
    if let n = options.threads { try EngineThreads.configure(n) }
} catch {
    fail("\(error)")
}
if let mib = options.cacheLimitMiB { TensorMemory.cacheLimitBytes = mib << 20 }
if options.precision == .bf16, let note = ComputePrecision.bf16Unavailable {
    FileHandle.standardError.write(Data("blend-bench: \(note)\n".utf8))
}

/// ‖a − b‖ / ‖b‖.
func relativeL2(_ a: Tensor, _ b: Tensor) -> Double {
    let x = a.scalars, y = b.scalars
    var diff = 0.0, norm = 0.0
    for i in x.indices {
        diff += Double(x[i] - y[i]) * Double(x[i] - y[i])
        norm += Double(y[i]) * Double(y[i])
    }
    return (diff / max(norm, .leastNormalMagnitude)).squareRoot()
}

if !options.accuracyTimesteps.isEmpty {
    do {
        let model = try randomADM256()
        let x = try randn([1, 3, 256, 256])
        for t in options.accuracyTimesteps {
            func run() throws -> (Tensor, Tensor) {
                let leaf = x.requiringGradient()
                let y = try model(leaf, timesteps: [Float(t)])
                return (y.detached(), try gradients(of: y, withRespectTo: [leaf], seed: randn(y.shape))[0])
            }
            let (y0, g0) = try run()
            let (y1, g1) = try ComputePrecision.$current.withValue(options.precision.effective) { try run() }
            print("{\"name\": \"unet_adm256_accuracy_t\(t)\(options.nameSuffix)\", \"output_relative_l2\": \(relativeL2(y1, y0)), "
                  + "\"input_gradient_relative_l2\": \(relativeL2(g1, g0)), \"peak_rss_gib\": \(peakRSSGiB())}")
        }
    } catch {
        fail("accuracy: \(error)")
    }
    exit(0)
}
if !options.json {
    print("blend-bench: engine threads \(EngineThreads.processCount) (\(EngineThreads.source)), BLAS threads \(blasThreadCount),"
          + " BLAS kernels \(blasCoreName), \(options.repeats) runs each")
}
// The full-model benchmarks are long (seconds to tens of seconds a run): only when named with --only.
let selected = benchmarks.filter { (options.only.isEmpty && !options.convs) || options.only.contains($0.name) }
    + (unetBenchmarks + sdBenchmarks).filter { options.only.contains($0.name) }
    + convMicroBenchmarks.filter { options.convs || options.only.contains($0.name) }
    + winogradShapeBenchmarks.filter { options.only.contains($0.name) && !convMicroBenchmarks.map(\.name).contains($0.name) }
for bench in selected {
    do {
        let body = try ComputePrecision.$current.withValue(options.precision.effective) {
            try ConvolutionBackend.$current.withValue(options.convBackend) {
                try Convolution3x3Algorithm.$current.withValue(options.conv3x3) {
                    let run = try WeightTransformPolicy.$current.withValue(options.weightTransforms) { try bench.setUp() }
                    return {
                        try ComputePrecision.$current.withValue(options.precision.effective) {
                            try ConvolutionBackend.$current.withValue(options.convBackend) {
                                try Convolution3x3Algorithm.$current.withValue(options.conv3x3) {
                                    try WeightTransformPolicy.$current.withValue(options.weightTransforms) { try run() }
                                }
                            }
                        }
                    }
                }
            }
        }
        for _ in 0..<options.warmup { try body() }
        var times: [Double] = []
        for _ in 0..<options.repeats {
            let t0 = now()
            try body()
            times.append(now() - t0)
        }
        times.sort()
        // The middle run, or the mean of the middle two (as Python's statistics.median, the
        // PyTorch side's, takes it).
        let median = times.count % 2 == 1 ? times[times.count / 2] : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
        if options.json {
            let peak = peakRSSGiB()
            var line = "{\"name\": \"\(bench.name + options.nameSuffix)\", \"seconds\": \(median), \"runs\": \(times.count), \"peak_rss_gib\": \(peak.isNaN ? "null" : String(peak))"
            if let flops = bench.flops { line += ", \"gflops\": \(flops / median / 1e9)" }
            print(line + "}")
        } else {
            let rate = bench.flops.map { String(format: "  %.1f GFLOP/s", $0 / median / 1e9) } ?? ""
            print((bench.name + options.nameSuffix).padding(toLength: 36, withPad: " ", startingAt: 0) + String(format: " %8.4f s", median) + rate
                  + String(format: "  (peak RSS so far %.2f GiB)", peakRSSGiB()))
        }
    } catch {
        fail("\(bench.name): \(error)")
    }
}
