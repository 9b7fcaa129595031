import BlendEditor
import BlendImage
import BlendPipeline
import BlendTensor
import Foundation
import BlendConcurrency
import Logging
import ServiceLifecycle

/// The job queue, run as a service of the server's application: one edit runs at a time (the
/// CPU is the bottleneck), later ones wait in a bounded queue. Every change of a job's state
/// is saved to its `job.json` and published as a `job` event; a running job also publishes
/// `progress` and, every few steps, `preview` events with its current x0 predictions.
///
/// ``run()`` takes queued jobs while the models are ready, each on a thread of its own, until
/// the service group shuts down gracefully (SIGINT, SIGTERM, the end of a test) or its task is
/// cancelled: then the running job stops at its next step and is marked `interrupted` (its
/// finished samples are kept; it can be resumed), queued jobs stay queued on disk (they come
/// back as interrupted), and `run()` returns.
///
/// Cancelling a running job takes effect at its next step: the pipeline's event callback
/// throws. A record that cannot be saved is never passed over: a job that is running or about
/// to run is marked `failed` with a message naming `job.json` and what to do (and the failure
/// is logged and published), and a cancel, resume or submit throws ``ServerError/storage(_:)``
/// with that message and changes nothing.
final class JobRunner: Service, Sendable, CustomStringConvertible {
    private struct State {
        var jobs: [String: JobRecord] = [:]
        var queue: [String] = []
        var running: String?
        var cancelRequested: Set<String> = []
        /// Set by a graceful shutdown (or cancellation) of ``run()``, until the next run: the
        /// running job stops at its next step, nothing new starts and new jobs are refused.
        var stopping = false
        /// Wakes the run loop while ``run()`` runs (a job was queued, the models are ready);
        /// nil otherwise.
        var wakeUp: AsyncStream<Void>.Continuation?
        /// The models' status: jobs start only while it is `ready`, and `status` events carry it.
        var models = ModelsStatus(state: .loading, message: nil, missing: [], missingForLocalClip: [])

        /// Stores `job` as the newest record of its id, one revision after the one it replaces.
        mutating func put(_ job: inout JobRecord) {
            job.revision = max(job.revision, jobs[job.id]?.revision ?? 0) + 1
            jobs[job.id] = job
        }
    }

    /// ``run()`` was called while it already runs (one run loop per runner).
    struct AlreadyRunning: Error, CustomStringConvertible {
        var description: String { "the job runner is already running: run each server's application once at a time" }
    }

    let store: JobStore
    let hub: EventHub
    let configuration: ServerConfiguration
    let logger: Logger
    private let state = PThreadMutex(State())

    /// The reason an interrupted job gives: what resuming does with what it has.
    static func interruptedMessage(_ job: JobRecord) -> String {
        switch (job.startedAt, job.results.count) {
        case (nil, _): return "the server stopped before the job started; resume it to run it"
        case (_, 0): return "the server stopped before the job finished a sample; resume it to run it again"
        case let (_, kept):
            return "the server stopped before the job finished; resume it to continue (its \(kept) finished sample\(kept == 1 ? " is" : "s are") kept)"
        }
    }

    /// An interrupted job's progress: where it got to, with no time left to wait for.
    static func stopped(_ progress: JobProgress?) -> JobProgress? {
        guard var progress else { return nil }
        progress.etaSeconds = nil
        progress.etaExcludesReconstruction = nil
        return progress
    }

    var description: String { "JobRunner" }

    /// Loads the jobs in `store`. A job that was queued or running when the server stopped
    /// is marked `interrupted` (it can be resumed); where that record cannot be saved, the job
    /// is interrupted all the same (it is, on disk too, at every start) and its error and the
    /// log say why the record was not written.
    init(store: JobStore, hub: EventHub, configuration: ServerConfiguration, logger: Logger) {
        self.store = store
        self.hub = hub
        self.configuration = configuration
        self.logger = logger
        let (jobs, _) = store.loadAll()
        var loaded: [String: JobRecord] = [:]
        for var job in jobs {
            if !job.state.isTerminal {
                job.state = .interrupted
                job.error = Self.interruptedMessage(job)
                job.progress = Self.stopped(job.progress)
                job.revision += 1
                do {
                    try store.save(job)
                } catch {
                    job.error = Self.interruptedMessage(job) + "; its record could not be saved: \(error)"
                    logger.error("job \(job.id) is interrupted, but its record could not be saved: \(error)")
                }
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

    /// What `GET /api/status` answers.
    func status() -> ServerStatus {
        let (running, queued, models) = state.withLock { ($0.running, $0.queue, $0.models) }
        return ServerStatus(version: EditPipeline.version, models: models,
                            queue: .init(running: running, queued: queued, limit: configuration.queueLimit),
                            defaults: JobSettings(),
                            limits: .init(maxUploadBytes: configuration.maxUploadBytes, maxUploadPixels: configuration.maxUploadPixels))
    }

    // MARK: Changes

    /// Queues a new job whose folder and inputs exist.
    /// - Throws: ``ServerError/queueFull(limit:)`` (429) when the queue is full,
    ///   ``ServerError/unavailable(_:)`` while the server shuts down, ``ServerError/storage(_:)``
    ///   when its record cannot be saved (then nothing is queued).
    func submit(_ job: JobRecord) throws -> JobRecord {
        var job = job
        job.state = .queued
        try state.withLock { state throws(ServerError) in
            guard !state.stopping else { throw ServerError.unavailable("the server is shutting down") }
            guard state.queue.count < configuration.queueLimit else { throw ServerError.queueFull(limit: configuration.queueLimit) }
            job.revision = max(job.revision, state.jobs[job.id]?.revision ?? 0) + 1
            do {
                try store.save(job)
            } catch {
                throw ServerError.storage("job \(job.id) was not queued because its record could not be saved: \(error); then send it again")
            }
            state.jobs[job.id] = job
            state.queue.append(job.id)
        }
        publish(job)
        wakeRunLoop()
        return job
    }

    /// Cancels a queued job at once, a running one at its next step. Cancelling a job that
    /// has already stopped changes nothing.
    /// - Throws: ``ServerError/notFound(_:)``; ``ServerError/storage(_:)`` when a queued job's
    ///   record cannot be saved (it stays queued).
    func cancel(_ id: String) throws -> JobRecord {
        let job = try state.withLock { state throws(ServerError) -> JobRecord in
            guard var job = state.jobs[id] else { throw ServerError.notFound("there is no job \(id)") }
            switch job.state {
            case .queued:
                var cancelled = job
                cancelled.state = .cancelled
                cancelled.finishedAt = Date()
                cancelled.revision = job.revision + 1
                do {
                    try store.save(cancelled)
                } catch {
                    throw ServerError.storage("job \(id) was not cancelled because its record could not be saved: \(error); then cancel it again")
                }
                state.queue.removeAll { $0 == id }
                state.jobs[id] = cancelled
                job = cancelled
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
    /// - Throws: ``ServerError/notFound(_:)``, ``ServerError/conflict(_:)`` for a job in another
    ///   state, ``ServerError/queueFull(limit:)``, ``ServerError/unavailable(_:)`` while the
    ///   server shuts down, ``ServerError/storage(_:)`` when its record cannot be saved (it
    ///   stays as it was).
    func resume(_ id: String) throws -> JobRecord {
        let job = try state.withLock { state throws(ServerError) -> JobRecord in
            guard var job = state.jobs[id] else { throw ServerError.notFound("there is no job \(id)") }
            guard job.state.isResumable else {
                throw ServerError.conflict("job \(id) is \(job.state.rawValue); only interrupted, cancelled or failed jobs can be resumed")
            }
            guard !state.stopping else { throw ServerError.unavailable("the server is shutting down") }
            guard state.queue.count < configuration.queueLimit else { throw ServerError.queueFull(limit: configuration.queueLimit) }
            job.state = .queued
            job.error = nil
            job.finishedAt = nil
            job.revision += 1
            do {
                try store.save(job)
            } catch {
                throw ServerError.storage("job \(id) was not resumed because its record could not be saved: \(error); then resume it again")
            }
            state.jobs[id] = job
            state.queue.append(id)
            return job
        }
        publish(job)
        wakeRunLoop()
        return job
    }

    /// Deletes a job that is not running, with its folder.
    /// - Throws: ``ServerError/notFound(_:)``, ``ServerError/conflict(_:)`` for a running job,
    ///   ``ServerError/storage(_:)`` when its folder cannot be removed (the job stays listed).
    func delete(_ id: String) throws {
        try state.withLock { state throws(ServerError) in
            guard let job = state.jobs[id] else { throw ServerError.notFound("there is no job \(id)") }
            guard job.state != .running else { throw ServerError.conflict("job \(id) is running: cancel it first, then delete it") }
            do {
                try store.delete(id)
            } catch {
                throw ServerError.storage("job \(id) was not deleted: \(error); then delete it again")
            }
            state.queue.removeAll { $0 == id }
            state.jobs[id] = nil
        }
        hub.publish(.deleted(job: id))
        hub.finish(job: id)
        publishStatus()
    }

    /// Takes the models' new status: jobs run only while they are ready.
    func modelsChanged(_ status: ModelsStatus) {
        state.withLock { $0.models = status }
        publishStatus()
        if status.state == .ready { wakeRunLoop() }
    }

    // MARK: The service

    /// Runs queued jobs, one at a time, until the service group shuts down gracefully or this
    /// task is cancelled; then stops the running job at its next step (it is marked
    /// `interrupted`), waits for it, and returns. It may run again after it returned.
    /// - Throws: ``AlreadyRunning`` when another `run()` of this runner has not returned.
    func run() async throws {
        let (wakeUps, wakeUp) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        try state.withLock { state throws(AlreadyRunning) in
            guard state.wakeUp == nil else { throw AlreadyRunning() }
            state.wakeUp = wakeUp
            state.stopping = false
        }
        defer { state.withLock { $0.wakeUp = nil } }
        // Jobs queued before the run began (the models may be ready already).
        wakeUp.yield()
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                for await _ in wakeUps {
                    while let job = startNextJob() {
                        await runOnEditThread(job)
                    }
                }
            } onCancel: {
                self.stop()
            }
        } onGracefulShutdown: {
            self.stop()
        }
    }

    /// Stops taking jobs and ends the run loop's wake-ups; the running job stops at its next
    /// step (its event callback sees `stopping`).
    private func stop() {
        let wakeUp = state.withLock { state in
            state.stopping = true
            return state.wakeUp
        }
        wakeUp?.finish()
    }

    private func wakeRunLoop() {
        state.withLock { $0.wakeUp }?.yield()
    }

    /// Runs `job` on a thread of its own and waits for it without holding one of Swift
    /// concurrency's threads: `EditPipeline.run` is synchronous and keeps its thread for
    /// seconds to hours, which on a cooperative pool as small as the machine's cores would
    /// starve the HTTP server's tasks.
    private func runOnEditThread(_ job: JobRecord) async {
        await withCheckedContinuation { (finished: CheckedContinuation<Void, Never>) in
            let thread = Thread { [self] in
                execute(job)
                finished.resume()
            }
            thread.name = "blend job \(job.id)"
            // A main thread's stack: the edit runs the same code as `blend edit` does on its
            // main thread (the engine's parallel loops run on threads of their own).
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    /// Takes the next queued job and marks it running, when the models are ready and the
    /// runner is not stopping. A job whose running record cannot be saved does not start: it
    /// is marked failed (logged and published) and the next one is taken.
    private func startNextJob() -> JobRecord? {
        enum Next { case started(JobRecord), notSaved(JobRecord, JobStoreError) }
        while true {
            let next = state.withLock { state -> Next? in
                guard !state.stopping, state.models.state == .ready, state.running == nil else { return nil }
                while !state.queue.isEmpty {
                    let id = state.queue.removeFirst()
                    guard var job = state.jobs[id] else { continue }
                    job.state = .running
                    job.startedAt = Date()
                    job.runs += 1
                    job.error = nil
                    job.progress = nil
                    state.put(&job)
                    do throws(JobStoreError) {
                        try store.save(job)
                    } catch {
                        job.state = .failed
                        job.finishedAt = Date()
                        job.error = "the job could not start because its record could not be saved: \(error); then resume it"
                        state.put(&job)
                        return .notSaved(job, error)
                    }
                    state.running = id
                    return .started(job)
                }
                return nil
            }
            switch next {
            case nil:
                return nil
            case let .notSaved(job, failure):
                logger.error("job \(job.id) failed to start: its record could not be saved: \(failure)")
                publish(job)
            case let .started(job):
                store.removeZip(job.id)
                publish(job)
                return job
            }
        }
    }

    /// Why a run stopped early.
    private enum Stop: Error {
        case cancelled, shutdown
        /// The job's record could not be saved as the run went on (its plan, a finished sample).
        case recordNotSaved(JobStoreError)
    }

    /// The pipeline request of a job whose inputs are in its folder.
    func editRequest(id: String, prompt: String, settings: JobSettings, photoFile: String, maskFile: String?) -> EditRequest {
        var request = settings.editRequest(prompt: prompt, imagePath: store.file(id, photoFile).path,
                                           maskPath: maskFile.map { store.file(id, $0).path },
                                           outputDirectory: store.outputDirectory(id).path, models: configuration.models)
        request.maximumPixels = configuration.maxUploadPixels
        request.precision = configuration.precision
        return request
    }

    /// Runs a job (on the edit thread): a resumed one continues its unfinished run (keeping
    /// its finished samples).
    private func execute(_ job: JobRecord) {
        let id = job.id
        var request = editRequest(id: id, prompt: job.prompt, settings: job.settings, photoFile: job.photo.file, maskFile: job.mask)
        request.resume = job.runs > 1
        var editStart = Date()
        var estimate = EditTimeEstimate()
        var lastPreviewStep = -1
        var outcome: (state: JobState, error: String?)
        /// Set when a record that could not be saved stopped the run.
        var notSaved: JobStoreError?
        let jobFolder = store.directory(id).path + "/"
        func relative(_ path: String) -> String { path.hasPrefix(jobFolder) ? String(path.dropFirst(jobFolder.count)) : path }
        func saving(_ change: (inout JobRecord) -> Void, publish: Bool = false) throws {
            do {
                try updateAndSave(id, publish: publish, change)
            } catch {
                throw Stop.recordNotSaved(error)
            }
        }
        func events(_ event: EditEvent) throws {
            let (cancelled, stopping) = state.withLock { ($0.cancelRequested.contains(id), $0.stopping) }
            if cancelled { throw Stop.cancelled }
            if stopping { throw Stop.shutdown }
            estimate.observe(event)
            switch event {
            case let .notice(notice):
                let text = JobIntake.inPageWords(notice, photoPath: request.imagePath, photoName: job.photo.name, maskPath: request.maskPath)
                updateInMemory(id) { job in if !job.notices.contains(text) { job.notices.append(text) } }
            case let .planned(plan):
                try saving { job in
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
                hub.publish(.progress(progress))
                let every = max(1, configuration.previewEvery)
                if p.completedSteps - lastPreviewStep >= every || p.step == p.steps || lastPreviewStep < 0 {
                    lastPreviewStep = p.completedSteps
                    if let preview = try? Self.previewDataURI(p.predictedImage()) {
                        hub.publish(.preview(JobPreview(job: id, completedSteps: p.completedSteps, iteration: p.iteration,
                                                        step: p.step, image: preview)))
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
                if let progress { hub.publish(.progress(progress)) }
            case let .sampleFinished(sample):
                // On disk now: listed at once (ranks are provisional until the job finishes).
                store.removeZip(id)
                try saving({ job in
                    job.results.removeAll { $0.index == sample.index }
                    job.results.append(JobResult(index: sample.index, rank: 0, distance: finite(sample.distance),
                                                 file: relative(sample.file), url: "/api/jobs/\(id)/samples/\(sample.index)"))
                    job.results = JobResult.ranked(job.results)
                }, publish: true)
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
            outcome = (.interrupted, nil)
        } catch let Stop.recordNotSaved(failure) {
            notSaved = failure
            outcome = (.failed, Self.stoppedMessage(failure))
            logger.error("job \(id) stopped: its record could not be saved: \(failure)")
        } catch {
            outcome = (.failed, String(describing: error))
        }
        store.removeZip(id)
        let (finished, finalFailure) = state.withLock { state -> (JobRecord?, JobStoreError?) in
            state.running = nil
            state.cancelRequested.remove(id)
            guard var job = state.jobs[id] else { return (nil, nil) }
            job.state = outcome.state
            job.error = outcome.error
            if let finalResults { job.results = finalResults }
            if outcome.state == .interrupted {
                job.error = Self.interruptedMessage(job)
                job.progress = Self.stopped(job.progress)
            }
            job.finishedAt = Date()
            state.put(&job)
            do throws(JobStoreError) {
                try store.save(job)
                return (job, nil)
            } catch {
                // In memory the job says so; on disk it stays `running`, which the next start
                // reads as interrupted.
                job.state = .failed
                if notSaved == nil {
                    job.error = (outcome.state == .finished ? "the edit finished, but" : "the job stopped, but")
                        + " its record could not be saved: \(error); then resume it (finished samples are kept)"
                }
                state.put(&job)
                return (job, error)
            }
        }
        if let finalFailure, notSaved == nil {
            logger.error("job \(id) \(outcome.state == .finished ? "finished" : "stopped (\(outcome.state.rawValue))"), but its record could not be saved: \(finalFailure)")
        }
        if let finished { publish(finished) }
    }

    /// The error of a job whose record could not be saved while it ran.
    static func stoppedMessage(_ failure: JobStoreError) -> String {
        "the job stopped because its record could not be saved: \(failure); then resume it (finished samples are kept)"
    }

    /// Changes a job's record and saves it (then publishes a `job` event if asked). The change
    /// is kept in memory even when the save fails: it says what is on disk besides the record
    /// (a plan made, a sample written).
    /// - Throws: ``JobStoreError`` when the record cannot be saved.
    private func updateAndSave(_ id: String, publish: Bool, _ change: (inout JobRecord) -> Void) throws(JobStoreError) {
        let job = try state.withLock { state throws(JobStoreError) -> JobRecord? in
            guard var job = state.jobs[id] else { return nil }
            change(&job)
            state.put(&job)
            try store.save(job)
            return job
        }
        if publish, let job { hub.publish(.job(job)) }
    }

    /// Changes a job's record in memory only (a notice: saved with the next change).
    private func updateInMemory(_ id: String, _ change: (inout JobRecord) -> Void) {
        state.withLock { state in
            guard var job = state.jobs[id] else { return }
            change(&job)
            state.put(&job)
        }
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
        hub.publish(.job(job))
        publishStatus()
    }

    private func publishStatus() {
        hub.publish(.status(status()))
    }
}

/// What `GET /api/status` answers: the models, the queue, the CLI's default settings and the
/// upload limits.
struct ServerStatus: Encodable, Sendable {
    struct Queue: Encodable, Sendable {
        var running: String?
        var queued: [String]
        var limit: Int
    }
    struct Limits: Encodable, Sendable {
        var maxUploadBytes: Int
        var maxUploadPixels: Int
    }
    var version: String
    var models: ModelsStatus
    var queue: Queue
    var defaults: JobSettings
    var limits: Limits
}
