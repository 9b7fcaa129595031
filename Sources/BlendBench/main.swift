// blend-bench: release-mode timings of the tensor engine's heavy ops.
//
// Each op runs once to warm up, then `--repeats` times; the median is reported.
// With --json, one JSON object per line (the format bench/compare.py reads):
//   {"name": "conv3x3_256_fwd", "seconds": 0.5, "runs": 5, "gflops": 150.0}
// The op names and shapes match bench/engine_bench.py, the PyTorch side.
import BlendEditor
import BlendModels
import BlendTensor
import Foundation

struct Options {
    var json = false
    var repeats = 5
    var only: Set<String> = []
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
        case "--only":
            guard let v = args.next() else { fail("--only needs a comma-separated list of op names") }
            options.only = Set(v.split(separator: ",").map(String.init))
        case "-h", "--help":
            print("""
            usage: blend-bench [--json] [--repeats N] [--only NAME[,NAME...]]
            Times the tensor engine's heavy ops (median of N runs after one warm-up).
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

let unetBenchmarks: [Benchmark] = [
    // One guided step of Blended Diffusion at full size, batch 1, 8 CLIP views: the editor
    // with 99 of 100 steps skipped runs exactly one (plus the final ranking embedding).
    Benchmark(name: "edit_step_adm256", flops: nil) {
        let models = EditorModels(unet: try randomADM256(),
                                  clip: try ClipModel(weights: randomWeights("CLIP"), config: ClipConfig.presets["ViT-B/16"]!))
        var settings = EditSettings(prompt: "a red ball")
        settings.samples = 1
        settings.batchSize = 1
        settings.skipTimesteps = 99
        let editor = try BlendedDiffusionEditor(models: models, settings: settings)
        let image = try randn([1, 3, 256, 256]).clamped(min: -1, max: 1)
        let mask = try Tensor(shape: [1, 1, 256, 256]) { m in
            for i in m.indices { m[i] = (64..<192).contains(i / 256) && (64..<192).contains(i % 256) ? 1 : 0 }
        }
        let text = try randn([1, 512])
        return { _ = try editor.edit(image: image, mask: mask, promptEmbedding: text) }
    },
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

let options = parseOptions(names: (benchmarks + unetBenchmarks).map(\.name))
if !options.json {
    print("blend-bench: engine threads \(engineThreadCount), BLAS threads \(blasThreadCount), \(options.repeats) runs each")
}
// The full-model benchmarks are long (seconds to tens of seconds a run): only when named with --only.
let selected = benchmarks.filter { options.only.isEmpty || options.only.contains($0.name) }
    + unetBenchmarks.filter { options.only.contains($0.name) }
for bench in selected {
    do {
        let body = try bench.setUp()
        try body()   // warm-up
        var times: [Double] = []
        for _ in 0..<options.repeats {
            let t0 = now()
            try body()
            times.append(now() - t0)
        }
        times.sort()
        let median = times[times.count / 2]
        if options.json {
            let peak = peakRSSGiB()
            var line = "{\"name\": \"\(bench.name)\", \"seconds\": \(median), \"runs\": \(times.count), \"peak_rss_gib\": \(peak.isNaN ? "null" : String(peak))"
            if let flops = bench.flops { line += ", \"gflops\": \(flops / median / 1e9)" }
            print(line + "}")
        } else {
            let rate = bench.flops.map { String(format: "  %.1f GFLOP/s", $0 / median / 1e9) } ?? ""
            print(bench.name.padding(toLength: 28, withPad: " ", startingAt: 0) + String(format: " %8.4f s", median) + rate
                  + String(format: "  (peak RSS so far %.2f GiB)", peakRSSGiB()))
        }
    } catch {
        fail("\(bench.name): \(error)")
    }
}
