import BlendImage
import BlendPipelineTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
@testable import BlendServer

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Many concurrent API clients on loopback while a job runs: every answer is a success or
/// the documented 429, the memory stays within a bound, and the running job finishes with
/// the results it would have had alone.
///
/// Bounded and self-stopping: `BLEND_LOAD_SECONDS` long (default 3, for CI; the issue's
/// full run is `BLEND_LOAD_SECONDS=60`), `BLEND_LOAD_CLIENTS` clients (default 50).
@Suite(.serialized) struct LoadTests {
    static let seconds = Double(ProcessInfo.processInfo.environment["BLEND_LOAD_SECONDS"] ?? "") ?? 3
    static let clients = Int(ProcessInfo.processInfo.environment["BLEND_LOAD_CLIENTS"] ?? "") ?? 50
    /// The most the process may grow during the load (the job's own buffers included).
    static let memoryBound = 256 * 1024 * 1024

    @Test func manyClientsWhileAJobRuns() async throws {
        try await withServer(.live, configure: { $0.queueLimit = 2 }) { fixture, server, client in
            let port = try #require(client.port)
            try await client.waitForModels()
            // The job under load: long enough to outlast it (a tiny-model sample takes about a
            // second here, more under load), and it must finish.
            let samples = 2 * Int(Self.seconds.rounded(.up)) + 6
            let settings = #"{"steps": "100", "skip": 25, "batch": 1, "augmentations": 2, "seed": 9, "samples": \#(samples)}"#
            let created = try await client.post(.job(photo: fixture.photo, mask: fixture.mask, settings: settings))
            let id = try #require((try JSONSerialization.jsonObject(with: Data(buffer: created.body)) as? [String: Any])?["id"] as? String)
            let started = try await client.waitForJob(id) { $0["state"] as? String != "queued" }
            #expect(started["state"] as? String == "running", "\(started)")
            let rssBefore = residentBytes()

            let base = "http://127.0.0.1:\(port)"
            let configuration = URLSessionConfiguration.ephemeral
            configuration.httpMaximumConnectionsPerHost = Self.clients
            configuration.timeoutIntervalForRequest = 30
            let session = URLSession(configuration: configuration)
            let form = Multipart.job(photo: fixture.photo, mask: fixture.mask)
            let deadline = Date().addingTimeInterval(Self.seconds)
            let counts = try await withThrowingTaskGroup(of: [Int: Int].self) { group in
                for worker in 0..<Self.clients {
                    group.addTask {
                        var counts: [Int: Int] = [:]
                        var round = 0
                        func send(_ request: URLRequest) async throws -> (Int, Data) {
                            let (data, response) = try await session.data(for: request)
                            let status = (response as? HTTPURLResponse)?.statusCode ?? 0
                            counts[status, default: 0] += 1
                            return (status, data)
                        }
                        while Date() < deadline {
                            round += 1
                            switch (worker + round) % 5 {
                            case 0:
                                _ = try await send(URLRequest(url: URL(string: "\(base)/api/status")!))
                            case 1:
                                _ = try await send(URLRequest(url: URL(string: "\(base)/api/jobs")!))
                            case 2:
                                _ = try await send(URLRequest(url: URL(string: "\(base)/api/jobs/\(id)")!))
                            case 3:
                                // New jobs: accepted while the queue has room, else 429. Accepted
                                // ones are cancelled and deleted again.
                                var request = URLRequest(url: URL(string: "\(base)/api/jobs")!)
                                request.httpMethod = "POST"
                                request.setValue(form.contentType, forHTTPHeaderField: "Content-Type")
                                request.httpBody = Data(form.finished())
                                let (status, data) = try await send(request)
                                if status == 201, let job = try JSONSerialization.jsonObject(with: data) as? [String: Any],
                                   let newID = job["id"] as? String {
                                    var cancel = URLRequest(url: URL(string: "\(base)/api/jobs/\(newID)/cancel")!)
                                    cancel.httpMethod = "POST"
                                    _ = try await send(cancel)
                                    // If it had started meanwhile, it stops at its next step; until
                                    // then deleting it is refused (409), as documented.
                                    var delete = URLRequest(url: URL(string: "\(base)/api/jobs/\(newID)")!)
                                    delete.httpMethod = "DELETE"
                                    for _ in 0..<600 {
                                        let (data, response) = try await session.data(for: delete)
                                        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
                                        if status != 409 { counts[status, default: 0] += 1; break }
                                        #expect(String(decoding: data, as: UTF8.self).contains("cancel it first"))
                                        try await Task.sleep(for: .milliseconds(50))
                                    }
                                }
                            case 4 where worker % 5 == 0:
                                // An event stream opened and dropped (the page does this on every reload).
                                let (status, _, _) = try await offPool {
                                    try rawExchange(port: port, "GET /api/events HTTP/1.1\nHost: 127.0.0.1:\(port)\nConnection: close\n",
                                                    stopAfter: "event: status")
                                }
                                counts[status, default: 0] += 1
                            default:
                                _ = try await send(URLRequest(url: URL(string: "\(base)/app.js")!))
                            }
                        }
                        return counts
                    }
                }
                var all: [Int: Int] = [:]
                for try await counts in group { all.merge(counts, uniquingKeysWith: +) }
                return all
            }
            session.invalidateAndCancel()
            #expect(server.runner.queueSnapshot.running == id, "the job under load ended before the load did")
            let rssAfter = residentBytes()
            let total = counts.values.reduce(0, +)
            print("load: \(Self.clients) clients, \(Self.seconds) s: \(total) requests, statuses \(counts.sorted { $0.key < $1.key }), "
                  + "RSS \(rssBefore / 1_048_576) -> \(rssAfter / 1_048_576) MiB")
            #expect(total > Self.clients)
            #expect(Set(counts.keys).isSubset(of: [200, 201, 204, 429]), "\(counts)")
            #expect(rssAfter - rssBefore < Self.memoryBound, "grew by \((rssAfter - rssBefore) / 1_048_576) MiB")

            // The job under load finishes, with the results it has without load: its first sample
            // is made again alone (sample i depends only on the seed and i).
            let done = try await client.waitForJob(id, seconds: 900)
            #expect(done["state"] as? String == "finished" && (done["results"] as? [Any])?.count == samples, "\(done)")
            let loaded = try await client.execute(uri: "/api/jobs/\(id)/samples/0", method: .get)
            let alone = #"{"steps": "100", "skip": 25, "batch": 1, "augmentations": 2, "seed": 9, "samples": 1}"#
            let again = try await client.post(.job(photo: fixture.photo, mask: fixture.mask, settings: alone))
            let againID = try #require((try JSONSerialization.jsonObject(with: Data(buffer: again.body)) as? [String: Any])?["id"] as? String)
            #expect(try await client.waitForJob(againID, seconds: 600)["state"] as? String == "finished")
            let quiet = try await client.execute(uri: "/api/jobs/\(againID)/samples/0", method: .get)
            #expect(loaded.body == quiet.body && loaded.body.readableBytes > 0)
            // No queued job is left over, and the dropped event streams are gone (each notices
            // its client left at its next keep-alive).
            #expect(server.runner.queueSnapshot.queued.isEmpty)
            let streamsDeadline = Date().addingTimeInterval(10)
            while server.hub.subscriberCount > 0 && Date() < streamsDeadline { try await Task.sleep(for: .milliseconds(50)) }
            #expect(server.hub.subscriberCount == 0)
        }
    }
}
