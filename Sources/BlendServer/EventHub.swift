import Foundation
import BlendConcurrency

/// One server-sent event: `event: <name>` and one line of JSON data.
struct ServerEvent: Sendable {
    var name: String
    /// The job it concerns, for streams that follow one job; nil for server-wide events.
    var job: String?
    var json: String

    init(name: String, job: String?, json: String) {
        self.name = name
        self.job = job
        self.json = json
    }

    init<Value: Encodable>(_ name: String, job: String?, _ value: Value) {
        self.init(name: name, job: job, json: String(decoding: (try? APIJSON.encoder.encode(value)) ?? Data("{}".utf8), as: UTF8.self))
    }

    /// The wire form (text/event-stream). The JSON has no newlines (the encoder writes none).
    var wire: String { "event: \(name)\ndata: \(json)\n\n" }
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
        let targets = subscribers.withLock { state in
            state.all.values.filter { $0.job == nil || $0.job == event.job }.map(\.continuation)
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
