import Crypto
import Foundation
import Testing
import BlendEditor
import BlendImage
import BlendPipeline
import BlendPipelineTestSupport
import BlendTensor

/// The edits every method makes on the tiny models, pinned bit for bit: a refactor of the
/// sample loop, the editors or the pipeline must leave every sample's PNG, its last denoising
/// state and its distance exactly as they were.
///
/// Bits depend on the kernels that summed them (the C kernels' lane count, OpenBLAS's kernel
/// family), not on the CPU otherwise, so the digests are recorded per kernel pair in
/// `Fixtures/sample-digests.json`. `scripts/record-sample-digests.sh` records every pair this
/// CPU can run (each x86-64 CPU can run the pairs of the CPUs below it), after a change that
/// is meant to change the numbers. On a pair with no record the test is skipped, and says so.
@Suite(.serialized) struct SampleDigestTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/sample-digests.json")
    /// This process's kernels: `<C kernel level>/<OpenBLAS family>`.
    static let kernels = "\(ElementwiseKernels.level)/\(BLASKernels.current.family)"
    static let recorded: [String: [String: String]] = {
        guard let data = try? Data(contentsOf: fixture) else { return [:] }
        return (try? JSONDecoder().decode([String: [String: String]].self, from: data)) ?? [:]
    }()

    enum Edit: String, CaseIterable, Sendable {
        /// Blended Diffusion, DDPM, 3 samples in batches of 2.
        case blended
        /// Blended Diffusion with DDIM steps and a fixed region.
        case blendedDDIM = "blended-ddim"
        /// The local-CLIP baseline with its MSE term.
        case localClip = "local-clip"
        /// Blended Latent Diffusion: DPM-Solver++, negative prompt, mask dilations, the
        /// next-level blend, background reconstruction.
        case latent
        /// Blended Latent Diffusion from noise, DDIM.
        case latentDDIM = "latent-ddim"
    }

    func request(_ edit: Edit, _ models: TinyModelFiles) throws -> EditRequest {
        let directory = models.directory.appendingPathComponent("digest-\(edit.rawValue)")
        let (photo, mask) = try writePhotoAndMask(in: directory)
        var settings = quickSettings()
        settings.seed = 5
        var paths = models.paths
        switch edit {
        case .blended: break
        case .blendedDDIM:
            settings.pixel.ddim = true
            settings.pixel.timestepRespacing = "ddim10"
            settings.pixel.skipTimesteps = 6
        case .localClip:
            settings.method = .localClip
            settings.pixel.lpipsSimLambda = 0
            settings.pixel.l2SimLambda = 1000
        case .latent, .latentDDIM:
            settings.method = .latent
            paths = sharedTinySD.editPaths("sd1", .compVis, clip: models.paths)
        }
        var request = EditRequest(imagePath: photo, maskPath: mask, outputDirectory: directory.appendingPathComponent("out").path,
                                  settings: settings, models: paths)
        if edit == .blendedDDIM { request.maskOptions.region = .box(PixelBox(x: 4, y: 2, width: 30, height: 26)) }
        request.latent.steps = 5
        if edit == .latent {
            request.latent.negativePrompt = "blurry"
            request.latent.maskDilations = 2
            request.latent.blendLevel = .next
            request.latent.backgroundReconstructionSteps = 2
        }
        if edit == .latentDDIM {
            request.latent.scheduler = .ddim
            request.latent.initialLatent = .noise
            request.latent.strength = 1
        }
        return request
    }

    /// SHA-256 over, per sample in index order: its index, the bits of its last state, its
    /// PNG's bytes and its distance's bits.
    func digest(_ request: EditRequest) throws -> String {
        var states: [Int: [Float]] = [:]
        var files: [Int: (bytes: Data, distance: Float)] = [:]
        _ = try EditPipeline.run(request) { event in
            switch event {
            case let .step(p) where p.step == p.steps:
                for (b, index) in p.sampleIndices.enumerated() { states[index] = try p.sample.sliced(b..<b + 1, axis: 0).scalars }
            case let .sampleFinished(sample):
                files[sample.index] = (try Data(contentsOf: URL(fileURLWithPath: sample.file)), sample.distance)
            default: break
            }
        }
        var hash = SHA256()
        for index in files.keys.sorted() {
            var header = [UInt32(index), UInt32(states[index]?.count ?? 0)]
            hash.update(data: Data(bytes: &header, count: 8))
            var bits = (states[index] ?? []).map(\.bitPattern)
            hash.update(data: Data(bytes: &bits, count: 4 * bits.count))
            hash.update(data: files[index]!.bytes)
            var distance = files[index]!.distance.bitPattern
            hash.update(data: Data(bytes: &distance, count: 4))
        }
        return hash.finalize().map { String(format: "%02x", $0) }.joined()
    }

    @Test(.enabled(if: SampleDigestTests.recorded[SampleDigestTests.kernels] != nil
                   || ProcessInfo.processInfo.environment["BLEND_RECORD_DIGESTS"] != nil,
                   "no digests recorded for the kernels \(SampleDigestTests.kernels): scripts/record-sample-digests.sh"),
          arguments: Edit.allCases)
    func everyMethodMakesTheSameBitsAsRecorded(_ edit: Edit) throws {
        let models = try TinyModelFiles.scratch()
        let value = try EngineThreads.withCount(3) { try digest(request(edit, models)) }
        if ProcessInfo.processInfo.environment["BLEND_RECORD_DIGESTS"] == "1" {
            // Recording (scripts/record-sample-digests.sh): this pair's entry rewritten in place;
            // the suite is serialized and the script runs one process at a time.
            var all = (try? JSONDecoder().decode([String: [String: String]].self, from: Data(contentsOf: Self.fixture))) ?? [:]
            all[Self.kernels, default: [:]][edit.rawValue] = value
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            try (encoder.encode(all) + Data("\n".utf8)).write(to: Self.fixture, options: .atomic)
            return
        }
        let expected = try #require(Self.recorded[Self.kernels]?[edit.rawValue], "no digest for \(edit.rawValue) on \(Self.kernels)")
        #expect(value == expected, "\(edit.rawValue) on the kernels \(Self.kernels) no longer makes the recorded bits")
    }
}
