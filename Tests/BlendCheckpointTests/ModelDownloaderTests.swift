import Foundation
import Testing
import BlendTensor
@testable import BlendCheckpoint

/// Downloads against a local HTTP server on 127.0.0.1: a tiny file, interrupted
/// transfers resumed with Range requests, wrong checksums, an unreachable host.
@Suite(.serialized) struct ModelDownloaderTests {
    private let payload: [UInt8] = {
        var generator = SplitMix64(seed: 3)
        return (0..<10_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }()

    private func model(_ url: URL, _ checksum: ModelChecksum, size: ExpectedSize = .unknown) -> ModelDescriptor {
        ModelDescriptor(name: "tiny", fileName: "tiny.pt", url: url, checksum: checksum, summary: "test file", size: size)
    }

    private func downloader(_ directory: URL, attempts: Int = 3) -> ModelDownloader {
        var downloader = ModelDownloader(cache: ModelCache(directory: directory))
        downloader.maximumAttempts = attempts
        downloader.retryDelay = 0
        downloader.requestTimeout = 10
        return downloader
    }

    @Test func tinyFileIsDownloadedVerifiedAndCached() throws {
        let payload = self.payload
        let server = try LocalHTTPServer { request, _ in .file(payload, for: request) }
        defer { server.stop() }
        let scratch = try Fixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let tiny = model(server.url("/tiny.pt"), .sha256(FileDigest.sha256(payload)))

        let seen = ProgressLog()
        let result = try downloader(scratch).download(tiny) { seen.append($0) }
        #expect(result.verification == .matched && result.sha256 == FileDigest.sha256(payload) && result.bytes == 10_000)
        #expect(try Data(contentsOf: result.path) == Data(payload))
        #expect(!FileManager.default.fileExists(atPath: scratch.appendingPathComponent("tiny.pt.part").path))
        #expect(seen.last == DownloadProgress(bytesReceived: 10_000, bytesExpected: 10_000, resumedFrom: 0))

        // A second run finds it in the cache and asks the server nothing.
        let again = try downloader(scratch).download(tiny)
        #expect(again.verification == .cached && server.requests.count == 1)
    }

    @Test func interruptedTransferResumesWithARangeRequest() throws {
        let payload = self.payload
        let server = try LocalHTTPServer { request, index in .file(payload, for: request, closeAfter: index == 0 ? 4_000 : nil) }
        defer { server.stop() }
        let scratch = try Fixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }

        let result = try downloader(scratch).download(model(server.url("/tiny.pt"), .sha256(FileDigest.sha256(payload))))
        #expect(result.verification == .matched)
        #expect(try Data(contentsOf: result.path) == Data(payload))
        let ranges = server.requests.map { $0.headers["range"] }
        #expect(ranges == [nil, "bytes=4000-"])
    }

    @Test func partialFileSurvivesForTheNextRun() throws {
        let payload = self.payload
        let server = try LocalHTTPServer { request, index in .file(payload, for: request, closeAfter: index == 0 ? 2_500 : nil) }
        defer { server.stop() }
        let scratch = try Fixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let tiny = model(server.url("/tiny.pt"), .sha256(FileDigest.sha256(payload)))

        do {
            try downloader(scratch, attempts: 1).download(tiny)
            Issue.record("expected an interruption")
        } catch let error as DownloadError {
            guard case let .interrupted(_, received, partial, _) = error else { Issue.record("wrong error \(error)"); return }
            #expect(received == 2_500)
            #expect(partial.hasSuffix("tiny.pt.part"))
            #expect(error.description.contains("run the same command again to resume"))
        }
        #expect(!FileManager.default.fileExists(atPath: scratch.appendingPathComponent("tiny.pt").path))

        let result = try downloader(scratch, attempts: 1).download(tiny)
        #expect(try Data(contentsOf: result.path) == Data(payload))
        #expect(server.requests.last?.headers["range"] == "bytes=2500-")
    }

    @Test func serverIgnoringRangeRestartsTheFile() throws {
        let payload = self.payload
        // Always a full 200 response: the resumed attempt must overwrite, not append.
        let server = try LocalHTTPServer { _, index in
            LocalHTTPServer.Response(status: 200, body: payload, closeAfterBodyBytes: index == 0 ? 3_000 : nil)
        }
        defer { server.stop() }
        let scratch = try Fixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let result = try downloader(scratch).download(model(server.url("/tiny.pt"), .sha256(FileDigest.sha256(payload))))
        #expect(try Data(contentsOf: result.path) == Data(payload))
    }

    @Test func wrongChecksumIsRefusedAndNothingIsKept() throws {
        let payload = self.payload
        let server = try LocalHTTPServer { request, _ in .file(payload, for: request) }
        defer { server.stop() }
        let scratch = try Fixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let wrong = String(repeating: "0", count: 64)

        do {
            try downloader(scratch).download(model(server.url("/tiny.pt"), .sha256(wrong)))
            Issue.record("expected a checksum error")
        } catch let error as DownloadError {
            #expect(error == .checksumMismatch(file: scratch.appendingPathComponent("tiny.pt.part").path, expected: wrong, actual: FileDigest.sha256(payload)))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path).isEmpty)
    }

    @Test func unpublishedHashIsReportedAndCanBePinned() throws {
        let payload = self.payload
        let server = try LocalHTTPServer { request, _ in .file(payload, for: request) }
        defer { server.stop() }
        let scratch = try Fixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let unhashed = model(server.url("/tiny.pt"), .unpublished)

        #expect(throws: DownloadError.self) { try downloader(scratch).download(unhashed, expectedSHA256: String(repeating: "a", count: 64)) }
        let result = try downloader(scratch).download(unhashed)
        #expect(result.verification == .unverified && result.sha256 == FileDigest.sha256(payload))
        let prefixed = model(server.url("/tiny.pt"), .sha256Prefix(String(FileDigest.sha256(payload).prefix(8))))
        #expect(try downloader(scratch).download(prefixed, force: true).verification == .matchedPrefix)
    }

    @Test func wrongFileInTheCacheIsFoundBySizeAndHashAndForceReplacesIt() throws {
        let payload = self.payload
        let server = try LocalHTTPServer { request, _ in .file(payload, for: request) }
        defer { server.stop() }
        let scratch = try Fixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let tiny = model(server.url("/tiny.pt"), .sha256(FileDigest.sha256(payload)), size: .exactly(10_000))
        let cached = scratch.appendingPathComponent("tiny.pt")
        let cache = ModelCache(directory: scratch)

        // A stranger of another size: `models list` and `download` both see it, without asking the server.
        try Data(repeating: 7, count: 3_000).write(to: cached)
        #expect(cache.entry(for: tiny) == .wrongSize(bytes: 3_000, expected: .exactly(10_000)) && !cache.isCached(tiny))
        do {
            try downloader(scratch).download(tiny)
            Issue.record("accepted a wrong cached file")
        } catch let error as DownloadError {
            guard case let .wrongCachedFile(name, file, reason) = error else { Issue.record("wrong error \(error)"); return }
            #expect(name == "tiny" && file == cached.path && reason.contains("3000 bytes"))
            #expect(error.description.contains("blend models download tiny --force"))
        }
        // The right size but the wrong bytes: the published hash tells.
        try Data(repeating: 7, count: 10_000).write(to: cached)
        #expect(cache.entry(for: tiny) == .present(bytes: 10_000))
        #expect(throws: DownloadError.self) { try downloader(scratch).download(tiny) }
        #expect(server.requests.isEmpty)
        // The stranger is left alone until --force replaces it.
        #expect(try Data(contentsOf: cached) == Data(repeating: 7, count: 10_000))
        let replaced = try downloader(scratch).download(tiny, force: true)
        #expect(replaced.verification == .matched)
        #expect(try Data(contentsOf: cached) == Data(payload))
        let verified = try downloader(scratch).download(tiny)
        #expect(verified.verification == .cached && verified.sha256 == FileDigest.sha256(payload) && server.requests.count == 1)
    }

    @Test func downloadOfTheWrongSizeIsDeleted() throws {
        // An error page served with 200: no hash is published, but it is far too small.
        let server = try LocalHTTPServer { _, _ in LocalHTTPServer.Response(status: 200, body: Array("<html>moved</html>".utf8)) }
        defer { server.stop() }
        let scratch = try Fixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        #expect(throws: DownloadError.wrongSize(url: server.url("/tiny.pt").absoluteString, bytes: 18, expected: "at least 10000 bytes")) {
            try downloader(scratch).download(model(server.url("/tiny.pt"), .unpublished, size: .atLeast(10_000)))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path).isEmpty)
    }

    @Test func missingFileReportsTheHTTPStatus() throws {
        let server = try LocalHTTPServer { _, _ in LocalHTTPServer.Response(status: 404, body: Array("not here".utf8)) }
        defer { server.stop() }
        let scratch = try Fixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        #expect(throws: DownloadError.httpStatus(url: server.url("/tiny.pt").absoluteString, status: 404)) {
            try downloader(scratch).download(model(server.url("/tiny.pt"), .unpublished))
        }
    }

    @Test func unreachableHostSaysOffline() throws {
        // A port that was just free: nothing listens there.
        let port: UInt16
        do {
            let server = try LocalHTTPServer(maximumConnections: 0) { _, _ in .init(status: 500) }
            port = server.port
            server.stop()
        }
        let scratch = try Fixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let url = URL(string: "http://127.0.0.1:\(port)/tiny.pt")!
        do {
            try downloader(scratch).download(model(url, .unpublished))
            Issue.record("expected an error")
        } catch let error as DownloadError {
            guard case .offline = error else { Issue.record("wrong error \(error)"); return }
            #expect(error.description.contains("offline") && error.description.contains(scratch.appendingPathComponent("tiny.pt").path))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path).isEmpty)
    }

    @Test func unknownNamesListTheKnownOnes() {
        #expect(throws: DownloadError.self) { try ModelDownloader(cache: ModelCache(directory: URL(fileURLWithPath: "/nonexistent"))).download(named: "ViT-H-99") }
    }
}

/// Progress reports, collected from URLSession's delegate queue.
final class ProgressLog: @unchecked Sendable {
    private let lock = NSLock()
    private var reports: [DownloadProgress] = []
    func append(_ report: DownloadProgress) {
        lock.lock()
        reports.append(report)
        lock.unlock()
    }
    var last: DownloadProgress? {
        lock.lock()
        defer { lock.unlock() }
        return reports.last
    }
}

@Suite struct ModelRegistryAndCacheTests {
    @Test func cacheDirectoryFollowsTheEnvironment() {
        #expect(ModelCache.standard(environment: ["BLEND_MODELS_DIR": "/models", "XDG_CACHE_HOME": "/xdg", "HOME": "/home/u"]).directory.path == "/models")
        #expect(ModelCache.standard(environment: ["XDG_CACHE_HOME": "/xdg", "HOME": "/home/u"]).directory.path == "/xdg/blend/models")
        #expect(ModelCache.standard(environment: ["XDG_CACHE_HOME": "relative", "HOME": "/home/u"]).directory.path == "/home/u/.cache/blend/models")
        #expect(ModelCache.standard(environment: ["HOME": "/home/u"]).directory.path == "/home/u/.cache/blend/models")
    }

    @Test func registryNamesTheOfficialLocations() throws {
        let uncond = try #require(ModelRegistry.model(named: "256x256_diffusion_uncond"))
        #expect(uncond.url.absoluteString == "https://openaipublic.blob.core.windows.net/diffusion/jul-2021/256x256_diffusion_uncond.pt")
        #expect(uncond.checksum == .unpublished)
        // CLIP's folder is the file's SHA-256, and CLIP's own slashed names work.
        let clip = try #require(ModelRegistry.model(named: "ViT-B/16"))
        #expect(clip.fileName == "ViT-B-16.pt")
        guard case let .sha256(hash) = clip.checksum else { Issue.record("no hash"); return }
        #expect(clip.url.pathComponents.dropLast().last == hash)
        #expect(ModelRegistry.model(named: "vit-l-14.pt")?.name == "ViT-L-14")
        // Every CLIP hash is the one its address carries; every model has a size to check.
        for model in ModelRegistry.models where model.url.host == "openaipublic.azureedge.net" {
            #expect(model.checksum == .sha256(model.url.deletingLastPathComponent().lastPathComponent), "\(model.name)")
        }
        #expect(ModelRegistry.models.allSatisfy { $0.size != .unknown })
        #expect(ModelChecksum.publishedInPath(of: URL(string: "https://h/m/\(String(repeating: "AB", count: 32))/x.pt")!)
            == .sha256(String(repeating: "ab", count: 32)))
        #expect(ModelChecksum.publishedInPath(of: URL(string: "https://h/models/x.pt")!) == nil)
        #expect(ExpectedSize.atLeast(10).admits(10) && !ExpectedSize.atLeast(10).admits(9) && !ExpectedSize.exactly(10).admits(11))
        #expect(ModelRegistry.model(named: "ViT-L/14@336px")?.name == "ViT-L-14-336px")
        #expect(ModelRegistry.model(named: "nothing") == nil)
    }
}

@Suite struct FileDigestTests {
    @Test func knownVectors() {
        #expect(FileDigest.sha256([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(FileDigest.sha256(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(FileDigest.sha256(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
            == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test func hashesFilesAcrossChunkBoundaries() throws {
        let scratch = try Fixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let file = scratch.appendingPathComponent("f")
        try Data("abc".utf8).write(to: file)
        #expect(try FileDigest.sha256(fileAtPath: file.path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        // 5 MiB of 'a' spans two 4 MiB reads; the one-shot digest of the same bytes must agree.
        let big = [UInt8](repeating: UInt8(ascii: "a"), count: 5 << 20)
        try Data(big).write(to: file)
        #expect(try FileDigest.sha256(fileAtPath: file.path) == FileDigest.sha256(big))
        #expect(throws: CheckpointError.self) { try FileDigest.sha256(fileAtPath: scratch.appendingPathComponent("absent").path) }
    }

    @Test func recognisesHexDigests() {
        #expect(FileDigest.isSHA256(String(repeating: "a", count: 64)))
        #expect(!FileDigest.isSHA256(String(repeating: "g", count: 64)) && !FileDigest.isSHA256("abc"))
    }
}
