import BlendCheckpoint
import BlendEditor
import Foundation

/// An edit's estimated peak resident memory: what it holds whatever the batch, plus what
/// each sample of a batch adds during a guided step.
public struct MemoryEstimate: Equatable, Sendable, CustomStringConvertible {
    /// Bytes held whatever the batch: the weights, the engine's kept transforms of them, its
    /// block cache (at most 1 GiB), and what a step needs for the one sample it guides at a time.
    public var fixedBytes: Int
    /// Bytes each further sample of a batch adds at the peak of a step (what the batch holds of
    /// each sample between its guided predictions; the pixel method's graphs are one sample's
    /// at a time, so this part is small there).
    public var perSampleBytes: Int
    /// Samples made together (`--batch`).
    public var batch: Int
    /// What the models are, for messages: "the 256x256 diffusion model and CLIP".
    public var what: String

    public init(fixedBytes: Int, perSampleBytes: Int, batch: Int, what: String) {
        self.fixedBytes = fixedBytes
        self.perSampleBytes = perSampleBytes
        self.batch = batch
        self.what = what
    }

    /// The estimated peak, in bytes.
    public var peakBytes: Int { fixedBytes + batch * perSampleBytes }

    /// The same workload at another batch size.
    public func with(batch: Int) -> MemoryEstimate {
        var copy = self
        copy.batch = batch
        return copy
    }

    /// The largest batch (up to `batch`) whose estimate is within `bytes`; 0 when not even one.
    public func largestBatch(within bytes: Int) -> Int {
        guard perSampleBytes > 0 else { return fixedBytes <= bytes ? batch : 0 }
        return max(0, min(batch, (bytes - fixedBytes) / perSampleBytes))
    }

    public var description: String {
        "about \(gibibytes(peakBytes)) for \(what) at batch \(batch) (\(gibibytes(fixedBytes)) + \(batch) x \(gibibytes(perSampleBytes)) per sample)"
    }
}

/// The edit needs clearly more memory than the machine has available.
public enum MemoryError: Error, Equatable, CustomStringConvertible {
    /// `available`: MemAvailable of /proc/meminfo (or the value a test gave), in bytes.
    case insufficient(estimate: MemoryEstimate, available: Int)

    public var description: String {
        switch self {
        case let .insufficient(estimate, available):
            var text = "not enough memory: this edit needs \(estimate), but only \(gibibytes(available)) is available"
                + " (MemAvailable in /proc/meminfo), so it would be killed part way. "
            let fitting = estimate.largestBatch(within: available)
            if fitting >= 1 {
                text += "Use --batch \(fitting) (\(gibibytes(estimate.with(batch: fitting).peakBytes)); the results are the same, only slower),"
                    + " close other programs,"
            } else {
                text += "Even --batch 1 needs \(gibibytes(estimate.with(batch: 1).peakBytes)): close other programs, use a machine with more memory,"
            }
            return text + " or pass --skip-memory-check to try anyway."
        }
    }
}

/// Memory estimates of edits, per method and model, and the check `blend edit` makes before
/// it loads anything.
///
/// The numbers are calibrated on measurements of the engine (BENCHMARKS.md, random weights at
/// full size, release build): a whole default one-sample `blend edit` of the 256x256 model on
/// full-size random-weight files peaked at 8.72 GiB (2026-12-01 03:30–04:05 UTC); one guided
/// Blended Diffusion step of it with CLIP ViT-B/16 and 8 views, alone, at 8.20 GiB at batch 1
/// and 8.04 GiB at batch 2 (2026-12-01 02:40–02:50 UTC, `edit_step_adm256` / `_b2`, with the
/// convolutions' F(4x4, 3x3) transforms computed per call: kept, they had added 0.69 GiB); the
/// UNet's forward alone at 3.82 GiB and its forward + backward at 6.05 GiB (so its recorded
/// graph is about 2.3 GiB per 256x256 image); CLIP ViT-B/16's forward + backward of 8 views at
/// 2.18 GiB.
///
/// The latent method (measured 2026-12-01 02:50–02:53 UTC, `blend-bench` rows
/// `sd15_edit_short_b1` / `_b2`: a default edit's last 2 steps with random-weight SD 1.5 at
/// 512², `/usr/bin/time -v`): 5.69 GiB at batch 1 and 5.81 GiB with 2 samples at batch 2 (the
/// UNet on batch 4). Its peak is the VAE decode at the end (run under a 256 MiB block-cache
/// ceiling), on top of every network's weights (SD 1.5: 1.066 billion floats, 3.97 GiB), the
/// UNet's kept Winograd F(2x2, 3x3) transforms (at 32², 16/9 of their kernels) and what the
/// block cache kept from the UNet steps.
public enum EditMemory {
    /// What an edit runs, as far as memory goes.
    public struct Workload: Equatable, Sendable {
        public var method: EditMethod
        /// The model's square resolution (256 for `256x256_diffusion_uncond`).
        public var modelSize: Int
        /// Samples made together.
        public var batch: Int
        /// Views of each sample CLIP embeds per step.
        public var augmentations: Int
        /// Sizes of the model files in bytes (float32 weights take about their file's size;
        /// a float16 file makes the estimate lower than the truth, never higher).
        public var diffusionFileBytes: Int
        public var clipFileBytes: Int
        /// The LPIPS (VGG-16) file, for `local-clip`; 0 when not used.
        public var lpipsFileBytes: Int
        /// The Stable Diffusion model of a `latent` edit, as its files were recognised (version
        /// and UNet width; nil fields count as SD 1.x's). Unused by the pixel methods.
        public var stableDiffusion: StableDiffusionInfo?

        public init(method: EditMethod, modelSize: Int, batch: Int, augmentations: Int, diffusionFileBytes: Int,
                    clipFileBytes: Int, lpipsFileBytes: Int = 0, stableDiffusion: StableDiffusionInfo? = nil) {
            self.method = method
            self.modelSize = modelSize
            self.batch = batch
            self.augmentations = augmentations
            self.diffusionFileBytes = diffusionFileBytes
            self.clipFileBytes = clipFileBytes
            self.lpipsFileBytes = lpipsFileBytes
            self.stableDiffusion = stableDiffusion
        }
    }

    /// The official files' sizes the constants below were measured with.
    static let referenceUNetFileBytes = 2_211_000_000.0
    static let referenceClipFileBytes = 351_000_000.0
    static let gib = 1024.0 * 1024 * 1024

    /// The estimated peak of one guided step of `workload` (the peak of the whole edit:
    /// loading and writing results need less).
    /// Nil for a method not estimated yet.
    public static func estimate(_ workload: Workload) -> MemoryEstimate? {
        let w = workload
        let pixels = Double(w.modelSize * w.modelSize) / (256.0 * 256.0)
        let unetWidth = (Double(w.diffusionFileBytes) / referenceUNetFileBytes).squareRoot()
        let clipWidth = (Double(w.clipFileBytes) / referenceClipFileBytes).squareRoot()
        switch w.method {
        case .blended, .localClip:
            // Weights: the UNet's (with the kept Winograd F(2x2, 3x3) transforms of its 3x3
            // kernels and the forward's transients: 1.31x its file, from the 3.82 GiB forward and
            // the 8.20 GiB step), CLIP's (float16 on disk, float32 in memory), the engine's
            // block cache. Then one sample's recorded
            // graphs: the UNet's and CLIP's for every view. The editor takes the guidance
            // gradient of one sample at a time (so that a sample does not depend on its batch),
            // so a batch holds one sample's graphs, not one per sample: a step at batch 2
            // peaked at 8.04 GiB against 8.20 at batch 1 (BENCHMARKS.md, `edit_step_adm256_b2`).
            // A whole `blend edit` process peaks higher than the step alone: 8.72 GiB for a
            // default one-sample edit on full-size files (BENCHMARKS.md, 2026-12-01: the files'
            // mapped pages, the photo and the run's outputs), so half a GiB more is counted.
            var fixed = 1.31 * Double(w.diffusionFileBytes) + 1.8 * Double(w.clipFileBytes) + 1.5 * gib
                + 2.3 * gib * pixels * unetWidth + 0.2 * gib * Double(w.augmentations) * clipWidth
            // Per sample: its x_t, x0 estimate, mean, variance and noise (a few [1, 3, H, W]
            // tensors), with room to spare.
            let perSample = 32.0 * 1024 * 1024 * pixels
            var what = "the \(w.modelSize)x\(w.modelSize) diffusion model and CLIP with \(w.augmentations) views"
            if w.method == .localClip && w.lpipsFileBytes > 0 {
                // VGG-16's weights, and its graph of the guided sample's background (not
                // measured: an allowance of half a GiB per 256x256 image).
                fixed += Double(w.lpipsFileBytes) + 0.5 * gib * pixels
                what += " and LPIPS"
            }
            return MemoryEstimate(fixedBytes: Int(fixed), perSampleBytes: Int(perSample), batch: w.batch, what: what)
        case .latent:
            return latentEstimate(w)
        }
    }

    /// Parameters of the networks a latent edit holds (UNet, VAE, text encoder), from the
    /// published models: SD 1.x 859.5 M + 83.7 M + 123.1 M (CLIP ViT-L/14's text tower),
    /// SD 2.x 865.9 M + 83.7 M + 340.4 M (OpenCLIP ViT-H/14's, 23 layers).
    static func stableDiffusionParameters(_ version: StableDiffusionInfo.Version?) -> Double {
        version == .v2 ? 1.290e9 : 1.066e9
    }

    /// The latent method: every network's float32 weights (scaled by the square of the UNet's
    /// width against SD's 320 base channels, so a small model counts little), the block cache
    /// (1 GiB), the VAE decode's working set and the UNet's kept Winograd transforms (the
    /// rest of the measured 5.69 GiB: 0.47 GiB per 512² image), the ranking CLIP as in the
    /// pixel method; each sample of a batch adds its UNet activations (0.25 GiB per 512² image:
    /// 2 samples at batch 2 peaked 0.12 GiB higher than 1, so this errs high there).
    static func latentEstimate(_ w: Workload) -> MemoryEstimate {
        let pixels = Double(w.modelSize * w.modelSize) / (512.0 * 512.0)
        let width = Double(w.stableDiffusion?.unetBaseChannels ?? 320) / 320
        let weights = 4 * stableDiffusionParameters(w.stableDiffusion?.version) * width * width
        let fixed = weights + 1.0 * gib + 0.47 * gib * pixels * width + 1.8 * Double(w.clipFileBytes)
        let perSample = 0.25 * gib * pixels * width
        let version = w.stableDiffusion?.version.map { " \($0.rawValue)" } ?? ""
        return MemoryEstimate(fixedBytes: Int(fixed), perSampleBytes: Int(perSample), batch: w.batch,
                              what: "Stable Diffusion\(version) at \(w.modelSize)x\(w.modelSize) and CLIP")
    }

    /// An edit is refused when the memory available is below this share of its estimate: the
    /// estimate's per-sample part is derived from separate measurements, so only a clear
    /// shortfall is refused.
    public static let refusalShare = 0.8

    /// Refuses `estimate` when `available` bytes are clearly too few.
    /// - Throws: ``MemoryError/insufficient(estimate:available:)``, saying what to do.
    public static func check(_ estimate: MemoryEstimate, available: Int) throws {
        if Double(available) < refusalShare * Double(estimate.peakBytes) {
            throw MemoryError.insufficient(estimate: estimate, available: available)
        }
    }

    /// `MemAvailable` of a `/proc/meminfo` text, in bytes; nil when it has none.
    public static func availableBytes(meminfo: String) -> Int? {
        for line in meminfo.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, let value = Int(fields[1]), value >= 0 else { return nil }
            let unit = fields.count >= 3 ? fields[2].lowercased() : "b"
            switch unit {
            case "kb": return value.multipliedReportingOverflow(by: 1024).overflow ? nil : value * 1024
            case "b": return value
            default: return nil
            }
        }
        return nil
    }

    /// The memory available to a new process now (Linux: MemAvailable of /proc/meminfo); nil
    /// where that cannot be read (then nothing is refused).
    public static func availableBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        return availableBytes(meminfo: text)
    }
}

/// "8.4 GiB", "512 MiB".
func gibibytes(_ bytes: Int) -> String {
    let value = Double(bytes) / (1024 * 1024 * 1024)
    return value >= 1 ? String(format: "%.1f GiB", value) : String(format: "%.0f MiB", Double(bytes) / (1024 * 1024))
}
