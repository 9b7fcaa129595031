import Foundation
import Testing
import BlendEditor
import BlendModels
import BlendPipeline
import BlendPipelineTestSupport
import BlendTensor

/// Sample i depends only on the seed and i: not on the batch it is made in, the thread count,
/// nor on whether a run was resumed — for both methods, on the engine's convolutions and on
/// oneDNN's, bit for bit in the float samples. `.ci/run` repeats this suite under each
/// `OPENBLAS_CORETYPE` the CPU can run, so that a kernel set that rounds an element by its
/// place in a product fails CI on any x86 machine.
@Suite(.serialized) struct DeterminismTests {
    enum Method: String, CaseIterable, Sendable { case pixel, latent }

    /// What a run made of each sample: its last denoising state (floats) and its PNG's bytes.
    struct Samples: Equatable {
        var states: [Int: [Float]] = [:]
        var files: [Int: [UInt8]] = [:]
        var distances: [Int: Float] = [:]

        /// Where `self` differs from `reference`: per sample, how many state values and whether
        /// the file or distance (empty when the same).
        func differences(from reference: Samples) -> [String] {
            Set(states.keys).union(reference.states.keys).sorted().compactMap { i in
                let a = states[i] ?? [], b = reference.states[i] ?? []
                let values = a.count == b.count ? zip(a, b).filter { $0.0.bitPattern != $0.1.bitPattern }.count : max(a.count, b.count)
                let file = files[i] != reference.files[i], distance = distances[i] != reference.distances[i]
                guard values > 0 || file || distance else { return nil }
                return "sample \(i): \(values) of \(b.count) state values" + (file ? ", its PNG" : "") + (distance ? ", its distance" : "")
            }
        }
    }

    func request(_ method: Method, _ models: TinyModelFiles, out: URL, batch: Int) throws -> EditRequest {
        let (photo, mask) = try writePhotoAndMask(in: models.directory)
        var settings = method == .pixel ? quickSettings() : EditSettings(prompt: "a red ball")
        settings.samples = 3
        settings.batchSize = batch
        settings.seed = 11
        if method == .latent { settings.method = .latent }
        var request = EditRequest(imagePath: photo, maskPath: mask, outputDirectory: out.path, settings: settings,
                                  models: method == .pixel ? models.paths : sharedTinySD.editPaths("sd1", .compVis, clip: models.paths))
        request.latent.steps = 4
        return request
    }

    /// Runs `request` on `threads` threads and `backend`'s convolutions, keeping every sample's
    /// state at its last step; `stopAfter` samples, it is cancelled (as Ctrl-C would).
    func run(_ request: EditRequest, threads: Int, backend: ConvolutionBackend, stopAfter: Int? = nil) throws -> Samples {
        var samples = Samples()
        var finished = 0
        let report: EditReport? = try EngineThreads.withCount(threads) {
            try ConvolutionBackend.$current.withValue(backend) {
                do {
                    return try EditPipeline.run(request) { event in
                        switch event {
                        case let .step(p) where p.step == p.steps:
                            for (b, index) in p.sampleIndices.enumerated() {
                                samples.states[index] = try p.sample.sliced(b..<b + 1, axis: 0).scalars
                            }
                        case let .sampleFinished(sample):
                            samples.files[sample.index] = Array(try Data(contentsOf: URL(fileURLWithPath: sample.file)))
                            samples.distances[sample.index] = sample.distance
                            finished += 1
                            if let stopAfter, finished == stopAfter { throw CancellationError() }
                        default: break
                        }
                    }
                } catch is CancellationError where stopAfter != nil {
                    return nil
                }
            }
        }
        if let report { #expect(report.compute?.threads == threads) }
        return samples
    }

    /// Both methods on the engine's convolutions and on oneDNN's (fp32).
    static let cases: [(Method, ConvolutionBackend)] = Method.allCases.flatMap { m in [(m, .engine), (m, .oneDNN)] }

    @Test(arguments: 0..<cases.count)
    func aSampleIsTheSameWhateverItsBatchTheThreadsOrAResume(index: Int) throws {
        let (method, backend) = Self.cases[index]
        let models = try TinyModelFiles.scratch()
        defer { models.remove() }
        func out(_ name: String) -> URL { models.directory.appendingPathComponent(name) }
        let reference = try run(request(method, models, out: out("reference"), batch: 3), threads: 1, backend: backend)
        #expect(reference.states.count == 3 && reference.files.count == 3)
        #expect(reference.states[0] != reference.states[1], "\(method): samples 0 and 1 are the same")
        for (batch, threads) in [(1, 2), (2, 3), (3, 8), (1, 16), (2, 1)] {
            let other = try run(request(method, models, out: out("b\(batch)t\(threads)"), batch: batch), threads: threads, backend: backend)
            let differences = other.differences(from: reference)
            #expect(differences.isEmpty, "\(method) on \(backend.rawValue): batch \(batch) at \(threads) threads differs from batch 3 at 1 thread in \(differences)")
        }
        // Cancelled after its first sample (batch 1, 3 threads), resumed with batch 2 on 16.
        var interrupted = try request(method, models, out: out("resumed"), batch: 1)
        let first = try run(interrupted, threads: 3, backend: backend, stopAfter: 1)
        interrupted.resume = true
        interrupted.settings.batchSize = 2
        let rest = try run(interrupted, threads: 16, backend: backend)
        #expect(Set(rest.files.keys) == [1, 2], "\(method): the resumed run made \(rest.files.keys.sorted())")
        var resumed = rest
        resumed.states[0] = first.states[0]
        resumed.files[0] = first.files[0]
        resumed.distances[0] = first.distances[0]
        #expect(resumed.differences(from: reference).isEmpty,
                "\(method) on \(backend.rawValue): the resumed run differs in \(resumed.differences(from: reference))")
    }
}

extension DeterminismTests {
    /// The same weights give the same edit whatever their layout: the tiny SD 2.x as one CompVis
    /// `.safetensors` with its diffusers folder's configs (`--sd-config`) and as that folder.
    @Test func aSingleFileWithTheFolderConfigsEditsExactlyAsTheFolder() throws {
        let models = try TinyModelFiles.scratch()
        defer { models.remove() }
        var results: [Samples] = []
        for layout in [StableDiffusionKeyLayout.compVis, .diffusers] {
            var request = try request(.latent, models, out: models.directory.appendingPathComponent("\(layout)"), batch: 2)
            request.models = sharedTinySD.editPaths("sd2", layout, clip: models.paths)
            request.latent.predictionType = .vPrediction
            results.append(try run(request, threads: 2, backend: .automatic))
        }
        #expect(results[0].states.count == 3)
        #expect(results[0].differences(from: results[1]).isEmpty, "single file against folder: \(results[0].differences(from: results[1]))")
    }
}
