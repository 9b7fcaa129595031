import Foundation
import HummingbirdTesting
import Testing
@testable import BlendServer

/// The job runner as a service of the application: a graceful shutdown, or cancelling its
/// task, stops the running job at its next step (interrupted, finished samples kept, saved)
/// before the run returns; queued jobs stay queued.
@Suite(.serialized) struct JobRunnerServiceTests {
    /// A job far longer than any stall of the test's own task: the edit runs on a thread of its
    /// own, while the polling below runs on the cooperative pool, which the suite's synchronous
    /// tests can hold for a minute and more on two cores. With 50 samples the job once finished
    /// before the test saw its first result; stopped at its next step, its length costs nothing.
    static let samples = 1000
    static let long = #"{"steps": "20", "skip": 0, "samples": \#(samples), "batch": 1, "augmentations": 1}"#

    /// The record of `id` as `job.json` has it.
    func saved(_ server: BlendServer, _ id: String) throws -> JobRecord {
        try #require(server.store.loadAll().jobs.first { $0.id == id })
    }

    @Test func aGracefulShutdownInterruptsTheRunningJobAndKeepsTheQueue() async throws {
        let fixture = try ServerFixture()
        defer { fixture.remove() }
        let server = try fixture.server()
        defer { server.close() }
        let (running, queued) = try await server.application().test(.router) { client in
            try await client.waitForModels()
            let running = try await client.post(.job(photo: fixture.photo, mask: fixture.mask, settings: Self.long)).jobID
            let queued = try await client.post(.job(photo: fixture.photo, mask: fixture.mask)).jobID
            _ = try await client.waitForJob(running) { ($0["results"] as? [Any])?.isEmpty == false }
            return (running, queued)
        }
        // The application has returned: its runner stopped the job and saved it on the way out.
        #expect(server.runner.queueSnapshot.running == nil)
        let stopped = try server.runner.job(running)
        #expect(!stopped.results.isEmpty && stopped.results.count < Self.samples)
        // Its error says what resuming keeps; its progress promises no time left.
        let kept = stopped.results.count
        #expect(stopped.state == .interrupted && stopped.error?.hasSuffix("resume it to continue (its \(kept) finished sample\(kept == 1 ? " is" : "s are") kept)") == true,
                "\(stopped.error ?? "")")
        #expect(stopped.progress != nil && stopped.progress?.etaSeconds == nil)
        #expect(try saved(server, running).state == .interrupted && saved(server, running).results == stopped.results)
        #expect(try server.runner.job(queued).state == .queued && saved(server, queued).state == .queued)
        #expect(server.runner.queueSnapshot.queued == [queued])
        // No new work is taken once it stopped.
        #expect(throws: ServerError.unavailable("the server is shutting down")) { try server.runner.resume(running) }
    }

    @Test func cancellingTheRunnersTaskStopsTheJobAndARunnerRunsAgain() async throws {
        let fixture = try ServerFixture()
        defer { fixture.remove() }
        // First the job is queued while no model loads, by an application that then stops.
        let server = try fixture.server(loadModels: false)
        defer { server.close() }
        let id = try await server.application().test(.router) { client in
            try await client.post(.job(photo: fixture.photo, mask: fixture.mask, settings: Self.long)).jobID
        }
        #expect(try server.runner.job(id).state == .queued)
        // Then the runner alone, in a task of its own, runs it once the models are ready.
        server.loadModels()
        let runner = Task { try await server.runner.run() }
        let deadline = Date().addingTimeInterval(120)
        while (try? server.runner.job(id).results.isEmpty) != false && Date() < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(try server.runner.job(id).state == .running)
        runner.cancel()
        try await runner.value
        let stopped = try server.runner.job(id)
        #expect(stopped.state == .interrupted && !stopped.results.isEmpty && stopped.results.count < Self.samples)
        #expect(try saved(server, id).state == .interrupted)
    }
}
