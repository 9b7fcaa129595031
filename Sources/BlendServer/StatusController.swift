import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The server-wide API, mounted at `/api`: `GET status` (the models, the queue, the defaults
/// and limits), `POST models/reload` (look for the model files again) and `GET events` (every
/// event, beginning with the status).
struct StatusController: Sendable {
    let runner: JobRunner
    let warmup: ModelWarmup
    let events: EventStreams

    var endpoints: RouteCollection<BasicRequestContext> {
        let routes = RouteCollection(context: BasicRequestContext.self)
        routes.get("status") { _, _ in try APIResponse.json(runner.status()) }
        routes.post("models/reload") { _, _ in
            warmup.reload()
            return try APIResponse.json(runner.status())
        }
        routes.get("events") { _, context in
            events.response(job: nil, logger: context.logger) { .status(runner.status()) }
        }
        return routes
    }
}

/// The API's responses: JSON values and files of a job's folder.
enum APIResponse {
    static func json<Value: Encodable>(_ value: Value, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try APIJSON.encoder.encode(value)
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The file at `url` as `type`; with `download`, a `Content-Disposition: attachment` under
    /// that name when the request asks (`?download`) or `forceDownload`.
    static func file(_ url: URL, request: Request, context: BasicRequestContext, type: String, download: String?,
                     forceDownload: Bool = false) async throws -> Response {
        guard FileManager.default.fileExists(atPath: url.path) else { throw ServerError.notFound("\(url.lastPathComponent) is missing") }
        let body = try await FileIO().loadFile(path: url.path, context: context)
        var headers: HTTPFields = [.contentType: type, .cacheControl: "no-cache"]
        if let download, forceDownload || request.uri.queryParameters.get("download") != nil {
            headers[.contentDisposition] = "attachment; filename=\"\(download)\""
        }
        return Response(status: .ok, headers: headers, body: body)
    }
}
