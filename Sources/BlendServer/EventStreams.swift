import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// The server-sent event streams (`text/event-stream`) of `GET /api/events` and
/// `GET /api/jobs/:id/events`: the current state first, then every ``ServerEvent`` the hub
/// publishes for the stream, with keep-alive comments while it is quiet. Events become their
/// wire form here, and only here.
struct EventStreams: Sendable {
    let hub: EventHub
    /// Seconds between keep-alive comments on an idle stream.
    let keepAliveSeconds: Double

    /// A stream of the events for `job` (every event when nil), beginning with `current()`,
    /// which is read after subscribing so that no change in between is lost. A job's stream
    /// ends once the job stops (at once when `current()` says it has).
    func response(job id: String?, logger: Logger, current: () -> ServerEvent) -> Response {
        let stream = hub.subscribe(job: id)
        let first = current()
        let keepAlive = keepAliveSeconds
        let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-store",
                                   HTTPField.Name("X-Accel-Buffering")!: "no"]
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            try await writer.write(ByteBuffer(string: "retry: 2000\n\n" + Self.wireFormat(first, logger: logger)))
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
                        try await writer.write(ByteBuffer(string: Self.wireFormat(event, logger: logger)))
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

    /// The event's wire form; an event JSON cannot hold (a non-finite number, which the
    /// records never carry) is logged and left out of the stream, which goes on.
    static func wireFormat(_ event: ServerEvent, logger: Logger) -> String {
        do {
            return try event.wireFormat()
        } catch {
            logger.error("a \(event.name) event\(event.job.map { " of job \($0)" } ?? "") could not be encoded and was not sent: \(error)")
            return ""
        }
    }
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
