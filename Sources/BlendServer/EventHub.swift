import Foundation
import BlendConcurrency

/// What the server tells the page as it happens. Each case becomes one server-sent event
/// (`event: <name>` and one line of JSON data) only where it is written to a stream
/// (``wireFormat()``); inside the server an event is this value, so a stream can ask whether
/// a job stopped without parsing JSON back.
enum ServerEvent: Sendable {
    /// A job's record changed (created, queued, running, a sample finished, stopped).
    case job(JobRecord)
    /// A running job's progress (one per denoising or background-reconstruction step).
    case progress(JobProgress)
    /// A running job's current x0 predictions, every few steps.
    case preview(JobPreview)
    /// The server-wide status changed: the models' state or the queue.
    case status(ServerStatus)
    /// A job and its folder were deleted.
    case deleted(job: String)

    /// The SSE event name the page listens for.
    var name: String {
        switch self {
        case .job: return "job"
        case .progress: return "progress"
        case .preview: return "preview"
        case .status: return "status"
        case .deleted: return "deleted"
        }
    }

    /// The job it concerns, for streams that follow one job; nil for server-wide events.
    var job: String? {
        switch self {
        case let .job(record): return record.id
        case let .progress(progress): return progress.job
        case let .preview(preview): return preview.job
        case .status: return nil
        case let .deleted(id): return id
        }
    }

    /// A `job` event for a job that has stopped: a stream that follows the job ends with it.
    var isTerminalJob: Bool {
        if case let .job(record) = self { return record.state.isTerminal }
        return false
    }

    /// The wire form (text/event-stream): `event: <name>\ndata: <JSON>\n\n`. The JSON has no
    /// newlines (``APIJSON/encoder`` writes none).
    /// - Throws: `EncodingError` for a value JSON cannot hold (a non-finite number).
    func wireFormat() throws -> String {
        let encoder = APIJSON.encoder
        let data: Data
        switch self {
        case let .job(record): data = try encoder.encode(record)
        case let .progress(progress): data = try encoder.encode(progress)
        case let .preview(preview): data = try encoder.encode(preview)
        case let .status(status): data = try encoder.encode(status)
        case let .deleted(id): data = try encoder.encode(DeletedJob(id: id))
        }
        return "event: \(name)\ndata: \(String(decoding: data, as: UTF8.self))\n\n"
    }

    /// The data of a `deleted` event: `{"id": ...}`.
    private struct DeletedJob: Encodable {
        var id: String
    }
}

/// A running job's x0 predictions, as a `preview` event carries them.
struct JobPreview: Encodable, Sendable, Equatable {
    var job: String
    var completedSteps: Int
    var iteration: Int
    var step: Int
    /// A PNG data URI: the batch's x0 predictions side by side, at the model's resolution.
    var image: String
}

/// Fans events out to the open event streams. Each subscriber has a bounded buffer that keeps
/// the newest events, so a slow client can lose old progress but never grows the server's
/// memory.
final class EventHub: Sendable {
    private struct Subscriber {
        var job: String?
        var continuation: AsyncStream<ServerEvent>.Continuation
    }

    private let subscribers = PThreadMutex<(next: Int, all: [Int: Subscriber])>((0, [:]))

    /// A stream of the events for `job` (all events when nil). It ends when the consumer stops.
    func subscribe(job: String?, buffer: Int = 64) -> AsyncStream<ServerEvent> {
        let (stream, continuation) = AsyncStream<ServerEvent>.makeStream(bufferingPolicy: .bufferingNewest(buffer))
        let id = subscribers.withLock { state in
            state.next += 1
            state.all[state.next] = Subscriber(job: job, continuation: continuation)
            return state.next
        }
        continuation.onTermination = { [weak self] _ in
            self?.subscribers.withLock { _ = $0.all.removeValue(forKey: id) }
        }
        return stream
    }

    func publish(_ event: ServerEvent) {
        let job = event.job
        let targets = subscribers.withLock { state in
            state.all.values.filter { $0.job == nil || $0.job == job }.map(\.continuation)
        }
        for continuation in targets { continuation.yield(event) }
    }

    /// Ends every stream for `job` (the job is gone).
    func finish(job: String) {
        let targets = subscribers.withLock { state in state.all.values.filter { $0.job == job }.map(\.continuation) }
        for continuation in targets { continuation.finish() }
    }

    /// Ends every stream (shutdown).
    func finishAll() {
        let targets = subscribers.withLock { state in state.all.values.map(\.continuation) }
        for continuation in targets { continuation.finish() }
    }

    var subscriberCount: Int { subscribers.withLock { $0.all.count } }
}

/// The JSON coding of the API: ISO 8601 dates, no escaped slashes, compact.
enum APIJSON {
    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
