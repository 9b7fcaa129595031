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
/// Use: `let server = try BlendServer(configuration:)`, ``loadModels(onModelsChange:)`` (in the
/// background), then ``run(onRunning:)`` (or run ``application(onRunning:)`` in a service group
/// of your own) until SIGINT or SIGTERM, and ``close()`` once it has returned. The application
/// is built from route collections (the page, ``StatusController``, ``JobsController``) and runs
/// the ``JobRunner`` as a service: its graceful shutdown stops the running job (marked
/// interrupted, resumable) before the application returns.
public final class BlendServer: Sendable {
    public let configuration: ServerConfiguration
    let store: JobStore
    let hub: EventHub
    let runner: JobRunner
    let warmup: ModelWarmup
    let allowed: AllowedHosts
    let logger: Logger
    let decodeQueue = DispatchQueue(label: "blend.serve.decode")
    /// Told of every change of the models' status (``loadModels(onModelsChange:)``).
    private let modelsObserver: ModelsObserver

    /// Opens (and locks) the data directory and reads its jobs; starts nothing.
    /// - Parameter logger: where the server logs (failed writes in the data directory, failed
    ///   requests); `blend.serve` on the console by default.
    /// - Throws: ``ServerError/dataDirectory(path:reason:)`` when the directory cannot be
    ///   created or another server uses it.
    public convenience init(configuration: ServerConfiguration, logger: Logger = Logger(label: "blend.serve")) throws {
        try self.init(configuration: configuration, logger: logger, disk: .system)
    }

    /// - Parameter disk: how job folders are written and removed (tests make it fail).
    init(configuration: ServerConfiguration, logger: Logger, disk: JobStoreDisk) throws {
        self.configuration = configuration
        self.logger = logger
        store = try JobStore(root: configuration.dataDirectory, disk: disk)
        let hub = EventHub()
        self.hub = hub
        let runner = JobRunner(store: store, hub: hub, configuration: configuration, logger: logger)
        self.runner = runner
        allowed = AllowedHosts(configuration: configuration)
        let observer = ModelsObserver()
        modelsObserver = observer
        warmup = ModelWarmup(paths: configuration.models) { models in
            runner.modelsChanged(models)
            observer.notify(models)
        }
    }

    /// Starts loading the models, in the background; jobs start once they are ready. Until
    /// then (or without this call) jobs wait in the queue.
    /// - Parameter onModelsChange: told (on the loading thread) of every change of the models'
    ///   status: `blend serve` prints what is missing or failed on the console.
    public func loadModels(onModelsChange: (@Sendable (ModelsStatus) -> Void)? = nil) {
        modelsObserver.set(onModelsChange)
        KeptModels.shared.enable()
        warmup.reload()
    }

    /// Ends the event streams still open and releases the data directory. Call it once the
    /// application has returned (its job runner has saved the running job's state by then).
    public func close() {
        hub.finishAll()
        store.close()
    }

    /// The port the server listens on, once it runs (the configured one before).
    public var port: Int { allowed.port.load(ordering: .relaxed) }

    /// What `GET /api/status` answers.
    func status() -> ServerStatus { runner.status() }

    // MARK: The application

    /// The Hummingbird application: the host/origin guard and error messages, the page's and
    /// the API's route collections, and the job runner as a service.
    /// - Parameter onRunning: called with the port once the server listens.
    public func application(onRunning: @escaping @Sendable (Int) -> Void = { _ in }) -> some ApplicationProtocol {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: ErrorMiddleware())
        router.add(middleware: RequestGuard(allowed: allowed))
        let events = EventStreams(hub: hub, keepAliveSeconds: configuration.keepAliveSeconds)
        router.addRoutes(PageAssets.endpoints)
        router.addRoutes(StatusController(runner: runner, warmup: warmup, events: events).endpoints, atPath: "/api")
        router.addRoutes(JobsController(configuration: configuration, store: store, runner: runner, warmup: warmup, events: events,
                                        decodeQueue: decodeQueue).endpoints, atPath: "/api/jobs")
        let allowed = self.allowed
        return Application(
            router: router,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "blend"),
            services: [runner],
            onServerRunning: { [store] channel in
                if let bound = channel.localAddress?.port {
                    allowed.port.store(bound, ordering: .relaxed)
                    store.recordOwner(port: bound)
                    onRunning(bound)
                }
            },
            logger: logger)
    }

    /// Runs the application until SIGINT or SIGTERM; returns once the running job (if any) is
    /// stopped and saved.
    /// - Throws: ``ServerError/portInUse(host:port:)`` when another program listens on the
    ///   address and port; the errors of Hummingbird's server otherwise.
    public func run(onRunning: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        do {
            try await application(onRunning: onRunning).runService()
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            throw ServerError.portInUse(host: configuration.host, port: configuration.port)
        }
    }
}

/// The callback ``BlendServer/loadModels(onModelsChange:)`` sets, called from the model loader's thread.
final class ModelsObserver: Sendable {
    private let handler = PThreadMutex<(@Sendable (ModelsStatus) -> Void)?>(nil)

    func set(_ handler: (@Sendable (ModelsStatus) -> Void)?) { self.handler.withLock { $0 = handler } }

    func notify(_ status: ModelsStatus) { handler.withLock { $0 }?(status) }
}
