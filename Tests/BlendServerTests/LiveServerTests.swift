import BlendImage
import BlendPipelineTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
@testable import BlendServer

/// Tests against the server listening on a loopback port: headers as browsers and attackers
/// send them, event streams, restarts.
@Suite(.serialized) struct LiveServerTests {
    @Test func foreignHostsAndOriginsAreRefused() async throws {
        try await withServer(.live, loadModels: false) { fixture, server, client in
            let port = try #require(client.port)
            func get(host: String, extra: String = "") async throws -> (status: Int, text: String) {
                try await rawHTTP(port: port, "GET /api/status HTTP/1.1\nHost: \(host)\n\(extra)Connection: close\n")
            }
            #expect(try await get(host: "127.0.0.1:\(port)").status == 200)
            #expect(try await get(host: "localhost:\(port)").status == 200)
            #expect(try await get(host: "[::1]:\(port)").status == 200)
            // DNS rebinding: a hostile name pointed at 127.0.0.1.
            let rebound = try await get(host: "attacker.example:\(port)")
            #expect(rebound.status == 403 && rebound.text.contains("DNS rebinding"))
            // A page of another site (or another local port) may not use the API.
            let crossSite = try await rawHTTP(port: port, """
                POST /api/jobs/20261130-000000-abcdef/cancel HTTP/1.1
                Host: 127.0.0.1:\(port)
                Origin: http://attacker.example
                Content-Length: 0
                Connection: close

                """)
            #expect(crossSite.status == 403 && crossSite.text.contains("only blend serve's own page"))
            let otherPort = try await get(host: "127.0.0.1:\(port)", extra: "Origin: http://127.0.0.1:\(port + 1)\n")
            #expect(otherPort.status == 403)
            let fetchSite = try await rawHTTP(port: port, """
                POST /api/models/reload HTTP/1.1
                Host: 127.0.0.1:\(port)
                Sec-Fetch-Site: cross-site
                Content-Length: 0
                Connection: close

                """)
            #expect(fetchSite.status == 403)
            // The page's own origin is fine.
            let own = try await rawHTTP(port: port, """
                POST /api/jobs/20261130-000000-abcdef/cancel HTTP/1.1
                Host: 127.0.0.1:\(port)
                Origin: http://127.0.0.1:\(port)
                Sec-Fetch-Site: same-origin
                Content-Length: 0
                Connection: close

                """)
            #expect(own.status == 404 && own.text.contains("there is no job"))
        }
    }

    @Test func eventsStreamProgressPreviewsAndTheEnd() async throws {
        try await withServer(.live, configure: { $0.previewEvery = 2 }) { fixture, server, client in
            let port = try #require(client.port)
            try await client.waitForModels()
            // A long job holds the worker, so the second one is still queued when its stream opens.
            let long = #"{"steps": "100", "skip": 0, "samples": 50, "batch": 1, "augmentations": 1}"#
            let blocker = try await client.post(.job(photo: fixture.photo, mask: fixture.mask, settings: long))
            let blockerID = try #require((try JSONSerialization.jsonObject(with: Data(buffer: blocker.body)) as? [String: Any])?["id"] as? String)
            let created = try await client.post(.job(photo: fixture.photo, mask: fixture.mask))
            let id = try #require((try JSONSerialization.jsonObject(with: Data(buffer: created.body)) as? [String: Any])?["id"] as? String)
            let reader = Task.detached {
                try await rawHTTP(port: port, "GET /api/jobs/\(id)/events HTTP/1.1\nHost: 127.0.0.1:\(port)\nConnection: close\n")
            }
            while server.hub.subscriberCount == 0 { try await Task.sleep(for: .milliseconds(5)) }
            _ = try await client.json("/api/jobs/\(blockerID)/cancel", method: .post)
            let stream = try await reader.value
            #expect(stream.status == 200)
            #expect(stream.text.lowercased().contains("content-type: text/event-stream"))
            let events = stream.text.components(separatedBy: "event: ").dropFirst().map { String($0.prefix(while: { $0 != "\n" })) }
            #expect(events.first == "job" && events.last == "job")
            #expect(events.filter { $0 == "progress" }.count == 6)
            #expect(events.contains("preview"))
            #expect(stream.text.contains(#""state":"queued""#) && stream.text.contains(#""state":"running""#))
            #expect(stream.text.contains(#""state":"finished""#))
            // A job that finished before the stream opened: its stream is one event and the end.
            let again = try await rawHTTP(port: port, "GET /api/jobs/\(id)/events HTTP/1.1\nHost: 127.0.0.1:\(port)\nConnection: close\n")
            #expect(again.text.components(separatedBy: "event: ").count == 2)
        }
    }

    @Test func progressAndPreviewEventsReachTheServerWideStream() async throws {
        try await withServer(configure: { $0.previewEvery = 1 }) { fixture, server, client in
            try await client.waitForModels()
            let events = server.hub.subscribe(job: nil, buffer: 10_000)
            let created = try await client.post(.job(photo: fixture.photo, mask: fixture.mask))
            let id = try #require((try JSONSerialization.jsonObject(with: Data(buffer: created.body)) as? [String: Any])?["id"] as? String)
            var names: [String] = []
            var previews: [JobPreview] = []
            for await event in events {
                names.append(event.name)
                if case let .preview(preview) = event { previews.append(preview) }
                if event.job == id && event.isTerminalJob { break }
            }
            #expect(names.filter { $0 == "progress" }.count == 6)   // 2 batches x 3 steps
            #expect(previews.count == 6)
            // On the wire: the preview's fields as the page reads them.
            let wire = try ServerEvent.preview(try #require(previews.first)).wireFormat()
            #expect(wire.hasPrefix("event: preview\ndata: {\"completedSteps\":") && wire.hasSuffix("}\n\n"), "\(wire.prefix(80))")
            let data = try #require(wire.split(separator: "\n").dropFirst().first?.dropFirst("data: ".count))
            let preview = try #require(try JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any])
            #expect(preview["job"] as? String == id && preview["step"] as? Int != nil && preview["iteration"] as? Int != nil)
            let uri = try #require(preview["image"] as? String)
            #expect(uri.hasPrefix("data:image/png;base64,"))
            let png = try #require(Data(base64Encoded: String(uri.dropFirst("data:image/png;base64,".count))))
            let strip = try RGBImage(encoded: Array(png))
            #expect(strip.width == 2 * 16 + 2 && strip.height == 16)   // two 16x16 x0 predictions side by side
            #expect(names.contains("status"))
        }
    }

    @Test func aRestartShowsInterruptedJobsWhichCanBeResumed() async throws {
        let fixture = try ServerFixture()
        defer { fixture.remove() }
        // First life: one job runs (and is stopped by the shutdown after its first sample), one
        // waits behind it.
        let ids: [String]
        do {
            let server = try fixture.server()
            ids = try await server.application().test(.router) { client in
                var ids: [String] = []
                try await client.waitForModels()
                let long = #"{"steps": "20", "skip": 0, "samples": 8, "batch": 1, "augmentations": 1}"#
                for settings in [long, quickSettings] {
                    let created = try await client.post(.job(photo: fixture.photo, mask: fixture.mask, settings: settings))
                    ids.append(try #require((try JSONSerialization.jsonObject(with: Data(buffer: created.body)) as? [String: Any])?["id"] as? String))
                }
                _ = try await client.waitForJob(ids[0]) { ($0["results"] as? [Any])?.isEmpty == false }
                return ids
            }
            server.close()
        }
        // Second life: both are listed as interrupted, with their inputs; resuming runs them,
        // the first one from where it stopped.
        let server = try fixture.server()
        defer { server.close() }
        try await server.application().test(.router) { client in
            let list = try #require(try await client.json("/api/jobs").object["jobs"] as? [[String: Any]])
            #expect(Set(list.compactMap { $0["id"] as? String }) == Set(ids))
            #expect(list.allSatisfy { $0["state"] as? String == "interrupted" })
            #expect(list.allSatisfy { ($0["error"] as? String)?.contains("resume it") == true })
            try await client.waitForModels()
            let before = try #require(list.first { $0["id"] as? String == ids[0] })
            let kept = try #require(before["results"] as? [[String: Any]])
            #expect(!kept.isEmpty && kept.count < 8)
            var keptBytes: [Int: ByteBuffer] = [:]
            for result in kept {
                keptBytes[result["index"] as! Int] = try await client.execute(uri: result["url"] as! String, method: .get).body
            }
            #expect(try await client.json("/api/jobs/\(ids[0])/resume", method: .post).status == .accepted)
            let continued = try await client.waitForJob(ids[0])
            #expect(continued["state"] as? String == "finished" && (continued["results"] as? [Any])?.count == 8)
            #expect((continued["notices"] as? [String])?.contains { $0.contains("resuming") } == true, "\(continued["notices"] ?? "")")
            for (index, bytes) in keptBytes {
                #expect(try await client.execute(uri: "/api/jobs/\(ids[0])/samples/\(index)", method: .get).body == bytes)
            }
            let resumed = try await client.json("/api/jobs/\(ids[1])/resume", method: .post)
            #expect(resumed.status == .accepted)
            let done = try await client.waitForJob(ids[1])
            #expect(done["state"] as? String == "finished" && (done["results"] as? [Any])?.count == 3)
            #expect(done["runs"] as? Int == 1)
        }
    }

    @Test func aSecondServerCannotUseTheSameDataDirectory() throws {
        let fixture = try ServerFixture()
        defer { fixture.remove() }
        let first = try fixture.server(loadModels: false)
        // The error names the server that holds it (this process) and, once it listens, its port.
        first.store.recordOwner(port: 43210)
        do {
            _ = try fixture.server(loadModels: false)
            Issue.record("a second server opened the same data directory")
        } catch let error as ServerError {
            guard case let .dataDirectory(path, reason) = error else { Issue.record("\(error)"); return }
            #expect(path == fixture.data.path)
            #expect(reason.contains("another blend serve") && reason.contains("process \(getpid())") && reason.contains("port 43210"),
                    "\(reason)")
            #expect(error.description.contains("--data-dir"), "\(error)")
        }
        #expect(JobStore.owner(from: "pid=12\nport=8188\n") == (12, 8188))
        #expect(JobStore.owner(from: "garbage") == (nil, nil))
        first.close()
        let second = try fixture.server(loadModels: false)
        second.close()
    }

    /// A port another program listens on is a one-line error naming --port, not NIO's errno.
    @Test func aPortInUseIsNamedWithWhatToDo() async throws {
        try await withServer(.live, loadModels: false) { _, _, client in
            let port = try #require(client.port)
            let fixture = try ServerFixture()
            defer { fixture.remove() }
            let second = try fixture.server(loadModels: false) { $0.port = port }
            defer { second.close() }
            do {
                try await second.run()
                Issue.record("a second server ran on port \(port)")
            } catch let error as ServerError {
                #expect(error == .portInUse(host: "127.0.0.1", port: port))
                #expect(error.description.contains("--port") && error.description.contains("\(port)"))
            }
        }
    }
}

extension LiveServerTests {
    @Test func anOversizedChunkedUploadIsRefusedWhileItStreams() async throws {
        try await withServer(.live, loadModels: false, configure: { $0.maxUploadBytes = 4096 }) { fixture, server, client in
            let port = try #require(client.port)
            let form = Multipart.job(photo: [UInt8](repeating: 7, count: 10_000), mask: fixture.mask).finished()
            // No Content-Length: the limit must hold while the body arrives.
            let chunk = Array(String(form.count, radix: 16).utf8) + [13, 10] + form + Array("\r\n0\r\n\r\n".utf8)
            let response = try await rawHTTP(port: port, """
                POST /api/jobs HTTP/1.1
                Host: 127.0.0.1:\(port)
                Content-Type: \(Multipart().contentType)
                Transfer-Encoding: chunked
                Connection: close

                """, body: chunk)
            #expect(response.status == 413 && response.text.contains("over the limit of 4096 bytes"), "\(response.text)")
            #expect(try await rawHTTP(port: port, "GET /api/status HTTP/1.1\nHost: localhost\nConnection: close\n").status == 200)
        }
    }
}
