import BlendEditor
import BlendPipeline
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ServiceLifecycle
import NIOCore
import BlendConcurrency

/// `blend serve`: the local web app. One page (served from the binary) and a JSON API over
/// the pipeline: jobs with their inputs and results in the data directory, one edit at a time
/// from a bounded queue, progress as server-sent events. The API is documented in README.md.
///
/// Use: `let server = try BlendServer(configuration:)`, `server.start()` (loads the models and
/// starts the worker in the background), then run ``application()``; ``shutdown()`` at the end.
public final class BlendServer: Sendable {
    public let configuration: ServerConfiguration
    let store: JobStore
    let hub: EventHub
    let runner: JobRunner
    let warmup: ModelWarmup
    let allowed: AllowedHosts
    let decodeQueue = DispatchQueue(label: "blend.serve.decode")
    /// Told of every change of the models' status (``start(onModelsChange:)``).
    private let modelsObserver: ModelsObserver

    /// Opens (and locks) the data directory and reads its jobs; starts nothing.
    /// - Throws: ``ServerError/dataDirectory(path:reason:)`` when the directory cannot be
    ///   created or another server uses it.
    public init(configuration: ServerConfiguration) throws {
        self.configuration = configuration
        store = try JobStore(root: configuration.dataDirectory)
        let hub = EventHub()
        self.hub = hub
        let runner = JobRunner(store: store, hub: hub, configuration: configuration)
        self.runner = runner
        allowed = AllowedHosts(configuration: configuration)
        let observer = ModelsObserver()
        modelsObserver = observer
        warmup = ModelWarmup(paths: configuration.models) { models in
            runner.modelsChanged(models)
            observer.notify(models)
        }
    }

    /// Starts loading the models and the job worker, in the background.
    /// - Parameter onModelsChange: told (on the loading thread) of every change of the models'
    ///   status: `blend serve` prints what is missing or failed on the console.
    public func start(onModelsChange: (@Sendable (ModelsStatus) -> Void)? = nil) {
        modelsObserver.set(onModelsChange)
        KeptModels.shared.enable()
        warmup.reload()
        runner.start()
    }

    /// Stops the worker (a running job is marked interrupted), ends the event streams and
    /// releases the data directory.
    public func shutdown() {
        runner.shutdown()
        hub.finishAll()
        store.close()
    }

    /// The port the server listens on, once it runs (the configured one before).
    public var port: Int { allowed.port.load(ordering: .relaxed) }

    // MARK: Status

    func status() -> ServerStatus { runner.status() }

    // MARK: The application

    /// The Hummingbird application: routes, the host/origin guard and error messages.
    /// - Parameter onRunning: called with the port once the server listens.
    public func application(logger: Logger? = nil, onRunning: @escaping @Sendable (Int) -> Void = { _ in }) -> some ApplicationProtocol {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: ErrorMiddleware())
        router.add(middleware: RequestGuard(allowed: allowed))
        addRoutes(to: router)
        let allowed = self.allowed
        return Application(
            router: router,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "blend"),
            onServerRunning: { [store] channel in
                if let bound = channel.localAddress?.port {
                    allowed.port.store(bound, ordering: .relaxed)
                    store.recordOwner(port: bound)
                    onRunning(bound)
                }
            },
            logger: logger ?? Logger(label: "blend.serve"))
    }

    /// Runs the application until SIGINT or SIGTERM.
    /// - Throws: ``ServerError/portInUse(host:port:)`` when another program listens on the
    ///   address and port; the errors of Hummingbird's server otherwise.
    public func run(onRunning: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        do {
            try await application(onRunning: onRunning).runService()
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            throw ServerError.portInUse(host: configuration.host, port: configuration.port)
        }
    }

    func addRoutes(to router: Router<BasicRequestContext>) {
        PageAssets.addRoutes(to: router)
        router.get("/api/status") { _, _ in try Self.json(self.status()) }
        router.post("/api/models/reload") { _, _ in
            self.warmup.reload()
            return try Self.json(self.status())
        }
        router.get("/api/jobs") { _, _ in try Self.json(["jobs": self.runner.list()]) }
        router.post("/api/jobs") { request, context in try await self.createJob(request, context: context) }
        router.get("/api/jobs/:id") { _, context in try Self.json(try self.runner.job(try Self.jobID(context))) }
        router.delete("/api/jobs/:id") { _, context in
            try self.runner.delete(try Self.jobID(context))
            return Response(status: .noContent)
        }
        router.post("/api/jobs/:id/cancel") { _, context in try Self.json(try self.runner.cancel(try Self.jobID(context))) }
        router.post("/api/jobs/:id/resume") { _, context in
            let id = try Self.jobID(context)
            guard self.warmup.status.state != .missing && self.warmup.status.state != .failed else {
                throw ServerError.unavailable(self.warmup.status.message ?? "the models are not available")
            }
            return try Self.json(try self.runner.resume(id), status: .accepted)
        }
        router.get("/api/jobs/:id/events") { _, context in
            let id = try Self.jobID(context)
            _ = try self.runner.job(id)
            return self.eventStream(job: id)
        }
        router.get("/api/events") { _, _ in self.eventStream(job: nil) }
        router.get("/api/jobs/:id/photo") { request, context in
            let job = try self.runner.job(try Self.jobID(context))
            return try await self.file(self.store.file(job.id, job.photo.file), request: request, context: context,
                                       type: job.photo.file.hasSuffix(".png") ? "image/png" : "image/jpeg", download: nil)
        }
        router.get("/api/jobs/:id/mask") { request, context in
            let job = try self.runner.job(try Self.jobID(context))
            guard let mask = job.mask else { throw ServerError.notFound("job \(job.id) has no mask: the photo's transparent area is edited") }
            return try await self.file(self.store.file(job.id, mask), request: request, context: context,
                                       type: mask.hasSuffix(".png") ? "image/png" : "image/jpeg", download: nil)
        }
        // A result by its rank (1 = best so far), or by its sample number (a stable address).
        router.get("/api/jobs/:id/results/:rank") { request, context in
            try await self.result(request, context, key: "rank") { job, rank in job.results.first { $0.rank == rank } }
        }
        router.get("/api/jobs/:id/samples/:index") { request, context in
            try await self.result(request, context, key: "index") { job, index in job.results.first { $0.index == index } }
        }
        router.get("/api/jobs/:id/results.zip") { request, context in
            let job = try self.runner.job(try Self.jobID(context))
            guard !job.results.isEmpty else { throw ServerError.notFound("job \(job.id) has no results yet") }
            let zip = try self.store.resultsZip(for: job)
            return try await self.file(zip, request: request, context: context, type: "application/zip", download: "blend-\(job.id).zip",
                                       forceDownload: true)
        }
        router.get("/api/jobs/:id/report") { request, context in
            let job = try self.runner.job(try Self.jobID(context))
            let report = self.store.directory(job.id).appendingPathComponent((job.runDirectory ?? "-") + "/report.json")
            guard job.state == .finished, FileManager.default.fileExists(atPath: report.path) else {
                throw ServerError.notFound("job \(job.id) has no report yet (it is \(job.state.rawValue))")
            }
            return try await self.file(report, request: request, context: context, type: "application/json", download: nil)
        }
    }

    func result(_ request: Request, _ context: BasicRequestContext, key: String,
                _ find: (JobRecord, Int) -> JobResult?) async throws -> Response {
        let job = try runner.job(try Self.jobID(context))
        let text = try context.parameters.require(key)
        guard let number = Int(text.hasSuffix(".png") ? String(text.dropLast(4)) : text), let result = find(job, number) else {
            throw ServerError.notFound("job \(job.id) has no result \(key) \(text) (it has \(job.results.count) results)")
        }
        return try await file(store.directory(job.id).appendingPathComponent(result.file), request: request, context: context,
                              type: "image/png", download: String(format: "blend-%@-%02d.png", job.id, result.rank))
    }

    static func jobID(_ context: BasicRequestContext) throws -> String {
        let id = try context.parameters.require("id")
        guard JobStore.isValidID(id) else { throw ServerError.notFound("there is no job \(id)") }
        return id
    }

    // MARK: Creating a job

    func createJob(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let limit = configuration.maxUploadBytes
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            throw ServerError.tooLarge("the upload is \(JobIntake.byteCount(length)); the limit is \(JobIntake.byteCount(limit)): send a smaller photo")
        }
        // The upload and its settings are checked before the model files (400 before 503), so
        // that a bad setting is reported as such also while models are missing.
        if runner.queueSnapshot.queued.count >= configuration.queueLimit {
            throw ServerError.queueFull(limit: configuration.queueLimit)
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw ServerError.tooLarge("the upload is over the limit of \(JobIntake.byteCount(limit)): send a smaller photo")
        }
        let parts = try MultipartForm.parse(body, contentType: request.headers[.contentType])
        let form = try JobIntake.checkForm(parts, maxPixels: configuration.maxUploadPixels)
        let id = JobStore.newID()
        let photoFile = "photo." + (form.photoFormat == .png ? "png" : "jpg")
        let maskFile = form.maskFormat.map { "mask." + ($0 == .png ? "png" : "jpg") }
        try store.createJob(id: id, photo: form.photo, photoFile: photoFile, mask: form.mask, maskFile: maskFile)
        do {
            // The pipeline reads and checks the saved inputs as the edit will (mask rules,
            // region, prompt length, settings), without side effects. That decodes the photo:
            // one at a time, off the request threads, so that many uploads at once cannot hold
            // many decoded photos in memory.
            let editRequest = runner.editRequest(id: id, prompt: form.prompt, settings: form.settings, photoFile: photoFile, maskFile: maskFile)
            let checked = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<CheckedEdit, any Error>) in
                decodeQueue.async { continuation.resume(with: Result { try EditPipeline.check(editRequest) }) }
            }
            // The files this job's method needs are there (the check found them); the models may
            // still have failed to load.
            let models = warmup.status
            if models.state == .failed || models.state == .missing {
                throw ServerError.unavailable(models.message ?? "the models are not available")
            }
            let record = JobRecord(
                id: id, state: .queued, prompt: form.prompt, settings: form.settings,
                photo: JobPhoto(file: photoFile, name: form.photoName, width: checked.photo.size.width, height: checked.photo.size.height),
                mask: maskFile, maskFraction: checked.editedFraction, region: checked.region.description, modelSize: checked.modelSize,
                notices: checked.notices.map {
                    JobIntake.inPageWords($0, photoPath: editRequest.imagePath, photoName: form.photoName, maskPath: editRequest.maskPath)
                } + JobIntake.unusedSettings(form.settings), createdAt: Date(), results: [])
            let queued = try runner.submit(record)
            var response = try Self.json(queued, status: .created)
            response.headers[.location] = "/api/jobs/\(id)"
            return response
        } catch let error as ServerError {
            try? store.delete(id)
            throw error
        } catch let error as ModelLoadingError {
            try? store.delete(id)
            throw ServerError.unavailable(Self.unavailableMessage(error, method: form.settings.method, models: warmup.status))
        } catch {
            try? store.delete(id)
            throw ServerError.badRequest(JobIntake.message(
                for: error, photoPath: store.file(id, photoFile).path, photoName: form.photoName,
                maskPath: maskFile.map { store.file(id, $0).path }))
        }
    }

    /// The 503 for a job whose method lacks model files: only the files that method needs,
    /// each with its download command or the option that gives its path, and the other
    /// method when it can run.
    static func unavailableMessage(_ error: ModelLoadingError, method: EditMethod, models: ModelsStatus) -> String {
        guard case let .missingFiles(files) = error else { return String(describing: error) }
        let name = method == .blended ? "pixel" : method.rawValue
        var text = "the \(name) method needs model files that are missing: "
            + files.map { MissingModelFile($0).line }.joined(separator: "; ")
        if models.missing.isEmpty {
            if method == .latent, models.missingForPixel.isEmpty {
                text += "; or choose the pixel method, whose files are there"
            } else if method != .latent, models.missingForLatent.isEmpty {
                text += "; or choose the latent method, whose files are there"
            }
        }
        return text
    }

    // MARK: Responses

    static func json<Value: Encodable>(_ value: Value, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try APIJSON.encoder.encode(value)
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    func file(_ url: URL, request: Request, context: BasicRequestContext, type: String, download: String?,
              forceDownload: Bool = false) async throws -> Response {
        guard FileManager.default.fileExists(atPath: url.path) else { throw ServerError.notFound("\(url.lastPathComponent) is missing") }
        let body = try await FileIO().loadFile(path: url.path, context: context)
        var headers: HTTPFields = [.contentType: type, .cacheControl: "no-cache"]
        if let download, forceDownload || request.uri.queryParameters.get("download") != nil {
            headers[.contentDisposition] = "attachment; filename=\"\(download)\""
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    /// A `text/event-stream` of the events for `job` (all events when nil), beginning with the
    /// current state: `status` (server-wide) or `job`. A job's stream ends once the job stops.
    func eventStream(job id: String?) -> Response {
        let stream = hub.subscribe(job: id)
        let first: ServerEvent
        if let id, let job = try? runner.job(id) {
            first = ServerEvent("job", job: id, job)
        } else {
            first = ServerEvent("status", job: nil, status())
        }
        let keepAlive = configuration.keepAliveSeconds
        let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-store",
                                   HTTPField.Name("X-Accel-Buffering")!: "no"]
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            try await writer.write(ByteBuffer(string: "retry: 2000\n\n" + first.wire))
            if id != nil, first.isTerminalJob {
                try await writer.finish(nil)
                return
            }
            // Keep-alive comments also find out, within `keepAlive` seconds, that a client left.
            let (pings, pingContinuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
            let ticker = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(keepAlive))
                    pingContinuation.yield()
                }
            }
            defer { ticker.cancel() }
            // A stream never ends by itself: on shutdown (Ctrl+C) it is ended, so that the
            // server's graceful shutdown, which waits for every response, can finish.
            try await withGracefulShutdownHandler {
                events: for await item in EventOrPing.merge(stream, pings) {
                    switch item {
                    case let .event(event):
                        try await writer.write(ByteBuffer(string: event.wire))
                        if id != nil && event.isTerminalJob { break events }
                    case .ping:
                        try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                    }
                }
            } onGracefulShutdown: {
                pingContinuation.finish()
            }
            try await writer.finish(nil)
        })
    }
}

/// A callback set once the server starts, called from the model loader's thread.
final class ModelsObserver: Sendable {
    private let handler = PThreadMutex<(@Sendable (ModelsStatus) -> Void)?>(nil)

    func set(_ handler: (@Sendable (ModelsStatus) -> Void)?) { self.handler.withLock { $0 = handler } }

    func notify(_ status: ModelsStatus) { handler.withLock { $0 }?(status) }
}

/// An event or a keep-alive tick, merged from two streams.
enum EventOrPing: Sendable {
    case event(ServerEvent)
    case ping

    static func merge(_ events: AsyncStream<ServerEvent>, _ pings: AsyncStream<Void>) -> AsyncStream<EventOrPing> {
        let (merged, continuation) = AsyncStream<EventOrPing>.makeStream(bufferingPolicy: .bufferingNewest(64))
        // Ends when either input ends.
        let forward = Task {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { for await event in events { continuation.yield(.event(event)) } }
                group.addTask { for await _ in pings { continuation.yield(.ping) } }
                await group.next()
                continuation.finish()
                group.cancelAll()
            }
        }
        continuation.onTermination = { _ in forward.cancel() }
        return merged
    }
}

extension ServerEvent {
    /// A `job` event for a job that has stopped.
    var isTerminalJob: Bool {
        guard name == "job", let data = json.data(using: .utf8),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let state = (object["state"] as? String).flatMap(JobState.init(rawValue:)) else { return false }
        return state.isTerminal
    }
}
