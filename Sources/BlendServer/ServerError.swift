import Foundation

/// Errors of the server, each with the HTTP status it is answered with and a message the
/// page shows as it is.
public enum ServerError: Error, Equatable, CustomStringConvertible {
    /// 400: the request is malformed or its inputs cannot be used.
    case badRequest(String)
    /// 403: the request came through a host name or from a page that is not this server's.
    case forbidden(String)
    /// 404
    case notFound(String)
    /// 409: the job is not in a state that allows the operation.
    case conflict(String)
    /// 413: an upload over the byte or pixel limit.
    case tooLarge(String)
    /// 429: the queue is full.
    case queueFull(limit: Int)
    /// 503: the models are missing or failed to load.
    case unavailable(String)
    /// 500: the data directory refused a write or a removal (a full disk, a folder made
    /// read-only); the message names the path and what to do.
    case storage(String)
    /// The data directory cannot be used (start-up).
    case dataDirectory(path: String, reason: String)
    /// The address and port to listen on are taken by another program (start-up).
    case portInUse(host: String, port: Int)

    public var statusCode: Int {
        switch self {
        case .badRequest: return 400
        case .forbidden: return 403
        case .notFound: return 404
        case .conflict: return 409
        case .tooLarge: return 413
        case .queueFull: return 429
        case .unavailable: return 503
        case .storage, .dataDirectory, .portInUse: return 500
        }
    }

    public var description: String {
        switch self {
        case let .badRequest(message), let .forbidden(message), let .notFound(message), let .conflict(message),
             let .tooLarge(message), let .unavailable(message), let .storage(message):
            return message
        case let .queueFull(limit):
            return "the queue is full (\(limit) jobs waiting): wait for one to finish, or cancel one"
        case let .dataDirectory(path, reason):
            return "cannot use the data directory \(path): \(reason); choose another with --data-dir"
        case let .portInUse(host, port):
            return "port \(port) on \(host) is already in use by another program (another blend serve, or an app with"
                + " the same default such as ComfyUI): stop it, or choose another port with --port N (--port 0 picks a free one)"
        }
    }
}
