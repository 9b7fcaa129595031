import BlendEditor
import BlendPipeline
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The jobs API, mounted at `/api/jobs`: the list, creating a job from an upload, each job's
/// record, cancel, resume and delete, its event stream, its inputs, results, zip and report.
struct JobsController: Sendable {
    let configuration: ServerConfiguration
    let store: JobStore
    let runner: JobRunner
    let warmup: ModelWarmup
    let events: EventStreams
    /// Decodes uploaded photos one at a time, off the request threads (``create(_:context:)``).
    let decodeQueue: DispatchQueue

    var endpoints: RouteCollection<BasicRequestContext> {
        let routes = RouteCollection(context: BasicRequestContext.self)
        routes.get { _, _ in try APIResponse.json(["jobs": runner.list()]) }
        routes.post { request, context in try await create(request, context: context) }
        routes.get(":id") { _, context in try APIResponse.json(try runner.job(try Self.jobID(context))) }
        routes.delete(":id") { _, context in
            try runner.delete(try Self.jobID(context))
            return Response(status: .noContent)
        }
        routes.post(":id/cancel") { _, context in try APIResponse.json(try runner.cancel(try Self.jobID(context))) }
        routes.post(":id/resume") { _, context in
            let id = try Self.jobID(context)
            let models = warmup.status
            guard models.state != .missing && models.state != .failed else {
                throw ServerError.unavailable(models.message ?? "the models are not available")
            }
            return try APIResponse.json(try runner.resume(id), status: .accepted)
        }
        routes.get(":id/events") { _, context in
            let id = try Self.jobID(context)
            _ = try runner.job(id)
            return events.response(job: id, logger: context.logger) {
                // Deleted since: the stream says how the server stands.
                (try? runner.job(id)).map(ServerEvent.job) ?? .status(runner.status())
            }
        }
        routes.get(":id/photo") { request, context in
            let job = try runner.job(try Self.jobID(context))
            return try await APIResponse.file(store.file(job.id, job.photo.file), request: request, context: context,
                                              type: job.photo.file.hasSuffix(".png") ? "image/png" : "image/jpeg", download: nil)
        }
        routes.get(":id/mask") { request, context in
            let job = try runner.job(try Self.jobID(context))
            guard let mask = job.mask else { throw ServerError.notFound("job \(job.id) has no mask: the photo's transparent area is edited") }
            return try await APIResponse.file(store.file(job.id, mask), request: request, context: context,
                                              type: mask.hasSuffix(".png") ? "image/png" : "image/jpeg", download: nil)
        }
        // A result by its rank (1 = best so far), or by its sample number (a stable address).
        routes.get(":id/results/:rank") { request, context in
            try await result(request, context, key: "rank") { job, rank in job.results.first { $0.rank == rank } }
        }
        routes.get(":id/samples/:index") { request, context in
            try await result(request, context, key: "index") { job, index in job.results.first { $0.index == index } }
        }
        routes.get(":id/results.zip") { request, context in
            let job = try runner.job(try Self.jobID(context))
            guard !job.results.isEmpty else { throw ServerError.notFound("job \(job.id) has no results yet") }
            let zip = try store.resultsZip(for: job)
            return try await APIResponse.file(zip, request: request, context: context, type: "application/zip",
                                              download: "blend-\(job.id).zip", forceDownload: true)
        }
        routes.get(":id/report") { request, context in
            let job = try runner.job(try Self.jobID(context))
            let report = store.directory(job.id).appendingPathComponent((job.runDirectory ?? "-") + "/report.json")
            guard job.state == .finished, FileManager.default.fileExists(atPath: report.path) else {
                throw ServerError.notFound("job \(job.id) has no report yet (it is \(job.state.rawValue))")
            }
            return try await APIResponse.file(report, request: request, context: context, type: "application/json", download: nil)
        }
        return routes
    }

    /// The job's id from the path; an id ``JobStore/newID(now:)`` cannot have made is a 404
    /// (nothing else ever becomes a path).
    static func jobID(_ context: BasicRequestContext) throws -> String {
        let id = try context.parameters.require("id")
        guard JobStore.isValidID(id) else { throw ServerError.notFound("there is no job \(id)") }
        return id
    }

    func result(_ request: Request, _ context: BasicRequestContext, key: String,
                _ find: (JobRecord, Int) -> JobResult?) async throws -> Response {
        let job = try runner.job(try Self.jobID(context))
        let text = try context.parameters.require(key)
        guard let number = Int(text.hasSuffix(".png") ? String(text.dropLast(4)) : text), let result = find(job, number) else {
            throw ServerError.notFound("job \(job.id) has no result \(key) \(text) (it has \(job.results.count) results)")
        }
        return try await APIResponse.file(store.directory(job.id).appendingPathComponent(result.file), request: request,
                                          context: context, type: "image/png",
                                          download: String(format: "blend-%@-%02d.png", job.id, result.rank))
    }

    // MARK: Creating a job

    /// `POST /api/jobs`: checks the upload (limits, form, settings, the photo and mask as the
    /// edit will read them), saves its inputs in a new job folder and queues the job; 201 with
    /// the record. A refused upload leaves no folder behind.
    func create(_ request: Request, context: BasicRequestContext) async throws -> Response {
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
        do {
            try store.createJob(id: id, photo: form.photo, photoFile: photoFile, mask: form.mask, maskFile: maskFile)
        } catch {
            removeRefused(id, logger: context.logger)
            throw ServerError.storage("the upload could not be saved: \(error); then send it again")
        }
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
            var response = try APIResponse.json(queued, status: .created)
            response.headers[.location] = "/api/jobs/\(id)"
            return response
        } catch let error as ServerError {
            removeRefused(id, logger: context.logger)
            throw error
        } catch let error as ModelLoadingError {
            removeRefused(id, logger: context.logger)
            throw ServerError.unavailable(Self.unavailableMessage(error, method: form.settings.method, models: warmup.status))
        } catch {
            removeRefused(id, logger: context.logger)
            throw ServerError.badRequest(JobIntake.message(
                for: error, photoPath: store.file(id, photoFile).path, photoName: form.photoName,
                maskPath: maskFile.map { store.file(id, $0).path }))
        }
    }

    /// Removes the folder of an upload that was refused. The refusal is what the client is
    /// told; a folder left behind is logged (it holds no record, so it is never listed).
    private func removeRefused(_ id: String, logger: Logger) {
        guard FileManager.default.fileExists(atPath: store.directory(id).path) else { return }
        do {
            try store.delete(id)
        } catch {
            logger.warning("the folder of refused upload \(id) was left behind: \(error)")
        }
    }

    /// The 503 for a job whose method lacks model files: only the files that method needs,
    /// each with its download command or the option that gives its path, and the other
    /// method when it can run.
    static func unavailableMessage(_ error: ModelLoadingError, method: EditMethod, models: ModelsStatus) -> String {
        guard case let .missingFiles(files) = error else { return String(describing: error) }
        let name = method.name(in: .api)
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
}
