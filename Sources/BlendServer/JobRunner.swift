import BlendEditor
import BlendImage
import BlendPipeline
import BlendTensor
import Foundation
import BlendConcurrency
import Synchronization

/// The job queue: one edit runs at a time (the CPU is the bottleneck) on a thread of its own,
/// later ones wait in a bounded queue. Every change of a job's state is saved to its
/// `job.json` and published as a `job` event; a running job also publishes `progress` and,
/// every few steps, `preview` events with its current x0 predictions.
///
/// Cancelling a running job takes effect at its next step: the pipeline's event callback
/// throws ``EditError/cancelled``.
final class JobRunner: Sendable {
    private struct State {
        var jobs: [String: JobRecord] = [:]
        var queue: [String] = []
        var running: String?
        var cancelRequested: Set<String> = []
        var stopping = false
        var workerStarted = false

        /// Stores `job` as the newest record of its id, one revision after the one it replaces.
        mutating func put(_ job: inout JobRecord) {
            job.revision = max(job.revision, jobs[job.id]?.revision ?? 0) + 1
            jobs[job.id] = job
        }
    }

    let store: JobStore
    let hub: EventHub
    let configuration: ServerConfiguration
    private let state = PThreadMutex(State())
    private let wake = DispatchSemaphore(value: 0)
    private let workerDone = DispatchSemaphore(value: 0)
    /// Whether the models are ready; set by the server from ``ModelWarmup``.
    private let modelsReady = Atomic<Bool>(false)
    /// The models' status, for the `status` events sent whenever the queue changes.
    private let modelsStatus = PThreadMutex(ModelsStatus(state: .loading, message: nil, missing: [], missingForLocalClip: []))

    /// Loads the jobs in `store`. A job that was queued or running when the server stopped
    /// is marked `interrupted` (it can be resumed).
    init(store: JobStore, hub: EventHub, configuration: ServerConfiguration) {
        self.store = store
        self.hub = hub
        self.configuration = configuration
        let (jobs, _) = store.loadAll()
        var loaded: [String: JobRecord] = [:]
        for var job in jobs {
            if !job.state.isTerminal {
                job.state = .interrupted
                job.error = "the server stopped before the job finished; resume it to continue (finished samples are kept)"
                job.revision += 1
                try? store.save(job)
            }
            loaded[job.id] = job
        }
        state.withLock { $0.jobs = loaded }
    }

    // MARK: Queries

    /// Every job, newest first.
    func list() -> [JobRecord] {
        state.withLock { Array($0.jobs.values) }.sorted { ($0.createdAt, $0.id) > ($1.createdAt, $1.id) }
    }

    func job(_ id: String) throws -> JobRecord {
        guard let job = state.withLock({ $0.jobs[id] }) else { throw ServerError.notFound("there is no job \(id)") }
        return job
    }

    /// The running job's id and the ids waiting, in order.
    var queueSnapshot: (running: String?, queued: [String]) { state.withLock { ($0.running, $0.queue) } }

    // MARK: Changes

    /// Queues a new job whose folder and inputs exist. Throws 429 when the queue is full.
    func submit(_ job: JobRecord) throws -> JobRecord {
        var job = job
        job.state = .queued
        try state.withLock { state in
            guard !state.stopping else { throw ServerError.unavailable("the server is shutting down") }
            guard state.queue.count < configuration.queueLimit else { throw ServerError.queueFull(limit: configuration.queueLimit) }
            state.put(&job)
            state.queue.append(job.id)
            try store.save(job)
        }
        publish(job)
        wake.signal()
        return job
    }

    /// Cancels a queued job at once, a running one at its next step. Cancelling a job that
    /// has already stopped changes nothing.
    func cancel(_ id: String) throws -> JobRecord {
        let job = try state.withLock { state -> JobRecord in
            guard var job = state.jobs[id] else { throw ServerError.notFound("there is no job \(id)") }
            switch job.state {
            case .queued:
                state.queue.removeAll { $0 == id }
                job.state = .cancelled
                job.finishedAt = Date()
                state.put(&job)
                try? store.save(job)
            case .running:
                state.cancelRequested.insert(id)
            default:
                break
            }
            return job
        }
        if job.state == .cancelled { publish(job) }
        return job
    }

    /// Queues an interrupted, cancelled or failed job again.
    func resume(_ id: String) throws -> JobRecord {
        let job = try state.withLock { state -> JobRecord in
            guard var job = state.jobs[id] else { throw ServerError.notFound("there is no job \(id)") }
            guard job.state.isResumable else {
                throw ServerError.conflict("job \(id) is \(job.state.rawValue); only interrupted, cancelled or failed jobs can be resumed")
            }
            guard !state.stopping else { throw ServerError.unavailable("the server is shutting down") }
            guard state.queue.count < configuration.queueLimit else { throw ServerError.queueFull(limit: configuration.queueLimit) }
            job.state = .queued
            job.error = nil
            job.finishedAt = nil
            state.put(&job)
            state.queue.append(id)
            try? store.save(job)
            return job
        }
        publish(job)
        wake.signal()
        return job
    }

    /// Deletes a job that is not running, with its folder.
    func delete(_ id: String) throws {
        try state.withLock { state in
            guard let job = state.jobs[id] else { throw ServerError.notFound("there is no job \(id)") }
            guard job.state != .running else { throw ServerError.conflict("job \(id) is running: cancel it first, then delete it") }
            state.queue.removeAll { $0 == id }
            state.jobs[id] = nil
            try store.delete(id)
        }
        hub.publish(ServerEvent("deleted", job: id, ["id": id]))
        hub.finish(job: id)
        publishStatus()
    }

    // MARK: The worker

    /// Takes the models' new status: jobs run only while they are ready.
    func modelsChanged(_ status: ModelsStatus) {
        modelsStatus.withLock { $0 = status }
        modelsReady.store(status.state == .ready, ordering: .sequentiallyConsistent)
        publishStatus()
        if status.state == .ready { wake.signal() }
    }

    /// What `GET /api/status` answers.
    func status() -> ServerStatus {
        let queue = queueSnapshot
        return ServerStatus(version: EditPipeline.version, models: modelsStatus.withLock { $0 },
                            queue: .init(running: queue.running, queued: queue.queued, limit: configuration.queueLimit),
                            defaults: JobSettings(),
                            limits: .init(maxUploadBytes: configuration.maxUploadBytes, maxUploadPixels: configuration.maxUploadPixels))
    }

    private func publishStatus() {
        hub.publish(ServerEvent("status", job: nil, status()))
    }

    /// Starts the worker thread (once).
    func start() {
        let first = state.withLock { state -> Bool in
            defer { state.workerStarted = true }
            return !state.workerStarted
        }
        guard first else { return }
        let thread = Thread { [self] in
            workLoop()
            workerDone.signal()
        }
        thread.name = "blend job worker"
        // The edit's own threads do the heavy lifting; this one mostly waits.
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// Stops the worker: queued jobs stay queued on disk (and come back as interrupted), the
    /// running one is stopped at its next step and marked interrupted. Waits up to `timeout`
    /// seconds for the worker thread to end.
    func shutdown(timeout: Double = 30) {
        let started = state.withLock { state -> Bool in
            state.stopping = true
            return state.workerStarted
        }
        wake.signal()
        if started { _ = workerDone.wait(timeout: .now() + timeout) }
    }

    private func workLoop() {
        while true {
            wake.wait()
            while let job = nextJob() {
                run(job)
            }
            if state.withLock({ $0.stopping }) { return }
        }
    }

    /// Takes the next queued job and marks it running, when the models are ready.
    private func nextJob() -> JobRecord? {
        guard modelsReady.load(ordering: .sequentiallyConsistent) else { return nil }
        let job = state.withLock { state -> JobRecord? in
            guard !state.stopping, state.running == nil, !state.queue.isEmpty else { return nil }
            let id = state.queue.removeFirst()
            guard var job = state.jobs[id] else { return nil }
            job.state = .running
            job.startedAt = Date()
            job.runs += 1
            job.error = nil
            job.progress = nil
            state.running = id
            state.put(&job)
            try? store.save(job)
            return job
        }
        if let job {
            store.removeZip(job.id)
            publish(job)
        }
        return job
    }

    /// Why a run stopped early.
    private enum Stop: Error { case cancelled, shutdown }

    /// The pipeline request of a job whose inputs are in its folder.
    func editRequest(id: String, prompt: String, settings: JobSettings, photoFile: String, maskFile: String?) -> EditRequest {
        var request = settings.editRequest(prompt: prompt, imagePath: store.file(id, photoFile).path,
                                           maskPath: maskFile.map { store.file(id, $0).path },
                                           outputDirectory: store.outputDirectory(id).path, models: configuration.models)
        request.maximumPixels = configuration.maxUploadPixels
        request.precision = configuration.precision
        return request
    }

    /// Runs a job: a resumed one continues its unfinished run (keeping its finished samples).
    private func run(_ job: JobRecord) {
        let id = job.id
        var request = editRequest(id: id, prompt: job.prompt, settings: job.settings, photoFile: job.photo.file, maskFile: job.mask)
        request.resume = job.runs > 1
        var editStart = Date()
        var estimate = EditTimeEstimate()
        var lastPreviewStep = -1
        var outcome: (state: JobState, error: String?)
        let jobFolder = store.directory(id).path + "/"
        func relative(_ path: String) -> String { path.hasPrefix(jobFolder) ? String(path.dropFirst(jobFolder.count)) : path }
        func events(_ event: EditEvent) throws {
            let (cancelled, stopping) = state.withLock { ($0.cancelRequested.contains(id), $0.stopping) }
            if cancelled { throw Stop.cancelled }
            if stopping { throw Stop.shutdown }
            estimate.observe(event)
            switch event {
            case let .notice(notice):
                let text = JobIntake.inPageWords(notice, photoPath: request.imagePath, photoName: job.photo.name, maskPath: request.maskPath)
                update(id) { job in if !job.notices.contains(text) { job.notices.append(text) } }
            case let .planned(plan):
                update(id, save: true) { job in
                    job.runDirectory = relative(plan.runDirectory)
                    job.region = plan.region.description
                    job.modelSize = plan.modelSize
                    if plan.resumedSamples.isEmpty { job.results = [] }
                }
            case .loadedModels:
                editStart = Date()
            case let .step(p):
                let progress = makeProgress(id, p, since: editStart, estimate: estimate, hasLosses: job.settings.method != .latent)
                state.withLock { state in
                    guard var job = state.jobs[id] else { return }
                    job.progress = progress
                    state.put(&job)
                }
                hub.publish(ServerEvent("progress", job: id, progress))
                let every = max(1, configuration.previewEvery)
                if p.completedSteps - lastPreviewStep >= every || p.step == p.steps || lastPreviewStep < 0 {
                    lastPreviewStep = p.completedSteps
                    if let preview = try? Self.previewDataURI(p.predictedImage()) {
                        hub.publish(ServerEvent("preview", job: id, Preview(job: id, completedSteps: p.completedSteps,
                                                                            iteration: p.iteration, step: p.step, image: preview)))
                    }
                }
            case let .reconstructionStep(r):
                // The solver's steps are done for this sample: the progress says what runs now.
                let progress = state.withLock { state -> JobProgress? in
                    guard var job = state.jobs[id], var progress = job.progress else { return nil }
                    progress.reconstructionSample = r.sample
                    progress.reconstructionStep = r.step
                    progress.reconstructionSteps = r.steps
                    progress.elapsedSeconds = Date().timeIntervalSince(editStart)
                    progress.etaSeconds = estimate.secondsLeft
                    progress.etaExcludesReconstruction = estimate.reconstructionUntimed
                    job.progress = progress
                    state.put(&job)
                    return progress
                }
                if let progress { hub.publish(ServerEvent("progress", job: id, progress)) }
            case let .sampleFinished(sample):
                // On disk now: listed at once (ranks are provisional until the job finishes).
                store.removeZip(id)
                update(id, save: true, publish: true) { job in
                    job.results.removeAll { $0.index == sample.index }
                    job.results.append(JobResult(index: sample.index, rank: 0, distance: finite(sample.distance),
                                                 file: relative(sample.file), url: "/api/jobs/\(id)/samples/\(sample.index)"))
                    job.results = JobResult.ranked(job.results)
                }
            default:
                break
            }
        }
        var finalResults: [JobResult]?
        do {
            let report: EditReport
            do {
                report = try EditPipeline.run(request, events: events)
            } catch OutputError.nothingToResume where request.resume {
                // Nothing was kept to continue (e.g. stopped before its first sample): start afresh.
                request.resume = false
                report = try EditPipeline.run(request, events: events)
            }
            let run = relative(report.directory)
            finalResults = report.samples.map { sample in
                JobResult(index: sample.index, rank: sample.rank, distance: finite(sample.distance), file: run + "/" + sample.file,
                          url: "/api/jobs/\(id)/samples/\(sample.index)")
            }
            outcome = (.finished, nil)
        } catch Stop.cancelled {
            outcome = (.cancelled, nil)
        } catch Stop.shutdown {
            outcome = (.interrupted, "the server stopped before the job finished; resume it to continue (finished samples are kept)")
        } catch {
            outcome = (.failed, String(describing: error))
        }
        store.removeZip(id)
        let finished = state.withLock { state -> JobRecord? in
            state.running = nil
            state.cancelRequested.remove(id)
            guard var job = state.jobs[id] else { return nil }
            job.state = outcome.state
            job.error = outcome.error
            if let finalResults { job.results = finalResults }
            job.finishedAt = Date()
            state.put(&job)
            try? store.save(job)
            return job
        }
        if let finished { publish(finished) }
    }

    /// Changes a job's record (saving it and publishing a `job` event if asked).
    private func update(_ id: String, save: Bool = false, publish: Bool = false, _ change: (inout JobRecord) -> Void) {
        let job = state.withLock { state -> JobRecord? in
            guard var job = state.jobs[id] else { return nil }
            change(&job)
            state.put(&job)
            if save { try? store.save(job) }
            return job
        }
        if publish, let job { hub.publish(ServerEvent("job", job: id, job)) }
    }

    /// `hasLosses`: the guidance losses mean something (not for the latent method, which has none).
    private func makeProgress(_ id: String, _ p: EditProgress, since start: Date, estimate: EditTimeEstimate,
                              hasLosses: Bool) -> JobProgress {
        JobProgress(job: id, iteration: p.iteration, iterations: p.iterations, step: p.step, steps: p.steps,
                    completedSteps: p.completedSteps, totalSteps: p.totalSteps, elapsedSeconds: Date().timeIntervalSince(start),
                    etaSeconds: estimate.secondsLeft, etaExcludesReconstruction: estimate.reconstructionUntimed,
                    secondsPerStep: estimate.secondsPerStep,
                    clipLoss: hasLosses ? p.guidance.flatMap { finite($0.clip) } : nil,
                    rangeLoss: hasLosses ? p.guidance.flatMap { finite($0.range) } : nil)
    }

    struct Preview: Encodable {
        var job: String
        var completedSteps: Int
        var iteration: Int
        var step: Int
        /// A PNG data URI: the batch's x0 predictions side by side, at the model's resolution.
        var image: String
    }

    /// The x0 predictions `[B, 3, H, W]` in [-1, 1] as one PNG strip, as a data URI.
    static func previewDataURI(_ predictions: Tensor) throws -> String {
        let count = predictions.dim(0)
        let tiles = try (0..<count).map { try RGBImage(tensor: predictions.sliced($0..<$0 + 1, axis: 0)) }
        guard let first = tiles.first else { throw ServerError.badRequest("no predictions") }
        let gap = 2, width = count * first.width + (count - 1) * gap, height = first.height
        var pixels = [UInt8](repeating: 255, count: 3 * width * height)
        for (t, tile) in tiles.enumerated() {
            let x0 = t * (first.width + gap)
            for y in 0..<height {
                let source = 3 * y * tile.width, target = 3 * (y * width + x0)
                pixels.replaceSubrange(target..<target + 3 * tile.width, with: tile.pixels[source..<source + 3 * tile.width])
            }
        }
        let strip = try RGBImage(width: width, height: height, pixels: pixels)
        return "data:image/png;base64," + Data(try strip.encoded(as: .png)).base64EncodedString()
    }

    /// A `job` event, and a `status` event with the queue as it now is.
    private func publish(_ job: JobRecord) {
        hub.publish(ServerEvent("job", job: job.id, job))
        publishStatus()
    }
}

/// What `GET /api/status` answers: the models, the queue, the CLI's default settings and the
/// upload limits.
struct ServerStatus: Encodable {
    struct Queue: Encodable {
        var running: String?
        var queued: [String]
        var limit: Int
    }
    struct Limits: Encodable {
        var maxUploadBytes: Int
        var maxUploadPixels: Int
    }
    var version: String
    var models: ModelsStatus
    var queue: Queue
    var defaults: JobSettings
    var limits: Limits
}
