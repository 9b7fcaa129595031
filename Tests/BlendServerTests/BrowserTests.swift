import BlendImage
import BlendPipelineTestSupport
import Foundation
import HummingbirdTesting
import NIOCore
import Testing
@testable import BlendServer

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The page in a real browser: headless Chromium driven through chromedriver (Debian's
/// `chromium` and `chromium-driver`, which scripts/install-deps.sh installs). A newcomer's
/// whole edit: load the page, pick a photo, paint a stroke, type a prompt, run, wait for the
/// results, compare; then a latent job on the tiny SD model (method chosen on the page, live
/// previews, results); with screenshots of each state in `BLEND_SCREENSHOT_DIR` (default
/// `.build/browser-screenshots/`).
///
/// Without Chromium the test fails and says how to install it, unless `BLEND_SKIP_BROWSER_TEST=1`.
@Suite(.serialized) struct BrowserTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var screenshotDirectory: URL {
        if let dir = ProcessInfo.processInfo.environment["BLEND_SCREENSHOT_DIR"] { return URL(fileURLWithPath: dir, isDirectory: true) }
        return packageRoot.appendingPathComponent(".build/browser-screenshots", isDirectory: true)
    }

    /// The demo photo's middle rows: a 256x192 landscape photo.
    static func photo(in directory: URL) throws -> (path: String, image: RGBImage) {
        let demo = try RGBImage(contentsOf: packageRoot.appendingPathComponent("examples/photo.png").path)
        let rows = 32..<224
        let pixels = Array(demo.pixels[3 * demo.width * rows.lowerBound..<3 * demo.width * rows.upperBound])
        let photo = try RGBImage(width: demo.width, height: rows.count, pixels: pixels)
        let path = directory.appendingPathComponent("leopard.png").path
        try photo.write(to: path)
        return (path, photo)
    }

    @Test(.timeLimit(.minutes(5))) func aNewcomerEditsAPhotoInTheBrowser() async throws {
        guard let (browser, driverPath) = WebDriver.executables() else {
            if ProcessInfo.processInfo.environment["BLEND_SKIP_BROWSER_TEST"] == "1" { return }
            Issue.record("Chromium and chromedriver are needed: run scripts/install-deps.sh (Debian: apt-get install chromium chromium-driver), or set BLEND_SKIP_BROWSER_TEST=1")
            return
        }
        let fixture = try ServerFixture()
        defer { fixture.remove() }
        let shots = Self.screenshotDirectory
        try FileManager.default.createDirectory(at: shots, withIntermediateDirectories: true)
        let (photoPath, photo) = try Self.photo(in: fixture.directory)
        // The tiny SD model too (and its vocabulary, which the tiny CLIP reads as well), for the
        // latent job; a preview at every step, so that some arrive while the page shows the job.
        let server = try fixture.server {
            $0.models = sharedTinySD.editPaths("sd1", .diffusers, clip: $0.models)
            $0.previewEvery = 1
        }
        defer { server.close() }
        try await server.application().test(.live) { client in
            let port = try #require(client.port)
            let driverPort = try freeLoopbackPort()
            let driverProcess = Process()
            driverProcess.executableURL = URL(fileURLWithPath: driverPath)
            driverProcess.arguments = ["--port=\(driverPort)", "--allowed-ips=127.0.0.1"]
            driverProcess.standardOutput = FileHandle.nullDevice
            driverProcess.standardError = FileHandle.nullDevice
            try driverProcess.run()
            // SIGKILL, not waited for: Foundation reaps it (waitUntilExit can hang here).
            defer { kill(driverProcess.processIdentifier, SIGKILL) }
            try await waitForDriver(port: driverPort)
            let driver = try await WebDriver.start(driverPort: driverPort, browser: browser,
                                                   profile: fixture.directory.appendingPathComponent("chromium-profile"),
                                                   width: 1280, height: 800)
            do {
                try await run(driver, port: port, photoPath: photoPath, photo: photo, shots: shots, client: client)
            } catch {
                try? await driver.screenshot(to: shots.appendingPathComponent("failure.png"))
                // The server's view and the page's event stream, to tell a slow job from a page
                // that stopped hearing about it.
                let jobs = (try? await client.json("/api/jobs").object["jobs"] as? [[String: Any]])?
                    .map { "\($0["id"] ?? "?"): \($0["state"] ?? "?") \($0["error"] ?? "")" } ?? []
                let stream = try? await driver.execute("return events ? events.readyState : -1")
                Issue.record("at the failure: jobs on the server \(jobs); the page's EventSource readyState \(stream ?? "unknown")")
                await driver.quit()
                throw error
            }
            await driver.quit()
        }
    }

    func run(_ driver: WebDriver, port: Int, photoPath: String, photo: RGBImage, shots: URL, client: some TestClientProtocol) async throws {
        try await driver.setWindow(width: 1280, height: 800)
        try await driver.navigate("http://127.0.0.1:\(port)/")
        try await driver.wait("the models", #"return document.getElementById("model-status").dataset.state === "ready""#)

        // Pick the photo, paint one horizontal stroke across the leopard.
        _ = try await driver.call("POST", "/element/\(try await driver.element("#photo-input-empty"))/value", ["text": photoPath])
        try await driver.wait("the photo", #"return document.getElementById("stage").dataset.ready === "true""#)
        try await Task.sleep(for: .milliseconds(100))
        let view = try #require(try await driver.execute(
            "const r = document.getElementById('stage-canvas').getBoundingClientRect(); return [stage.zoom, stage.panX, stage.panY, r.width, r.height, state.brush];") as? [Double])
        let (zoom, panX, panY, width, height, brush) = (view[0], view[1], view[2], view[3], view[4], view[5])
        // From -60 to +60 CSS px around the centre: in photo pixels, from a to b at row y.
        func photoX(_ dx: Double) -> Double { (width / 2 + dx - panX) / zoom }
        let y = (height / 2 - panY) / zoom
        let (a, b) = (photoX(-60), photoX(60))
        try await driver.stroke(on: "#stage-canvas", through: [(-60, 0), (-20, 0), (20, 0), (60, 0)])
        try await driver.wait("the undo step", "return !document.getElementById('undo').disabled")
        // Undo and redo from the keyboard: the stroke goes and comes back.
        let painted = "return maskCoverage()"
        let coverage = try #require(try await driver.execute(painted) as? NSNumber).doubleValue
        #expect(coverage > 0.01)
        try await driver.chord("z")
        #expect(try #require(try await driver.execute(painted) as? NSNumber).doubleValue == 0)
        try await driver.chord("z", shift: true)
        #expect(try #require(try await driver.execute(painted) as? NSNumber).doubleValue == coverage)
        try await driver.type("#prompt", "a red ball")
        try await driver.screenshot(to: shots.appendingPathComponent("1-painted.png"))

        // A setting the server refuses: its message is shown.
        try await driver.fill(["#set-samples": "0"])
        try await driver.click("#run")
        try await driver.wait("the error message", #"const t = document.getElementById("toast"); return !t.hidden && t.textContent.includes("samples must be 1 to")"#)
        try await driver.screenshot(to: shots.appendingPathComponent("2-error.png"))
        // Dismissed by a click (unless it already went by itself: it stays 9 s, which a slow
        // screenshot on a loaded machine can outlast).
        if try await driver.execute("return document.getElementById('toast').hidden") as? Bool == false {
            _ = try? await driver.click("#toast")
        }
        try await driver.wait("the error message to go", "return document.getElementById('toast').hidden")

        // Quick settings (tiny models), then run.
        try await driver.fill(["#set-samples": "2", "#set-batch": "2", "#set-steps": "10", "#set-skip": "7"])
        try await driver.click("#advanced summary")
        try await driver.fill(["#set-augmentations": "2"])
        try await driver.click("#run")
        // Samples are listed as they finish; then the job finishes.
        try await driver.wait("the results", seconds: 120, "return document.getElementById('job-view').dataset.state === 'finished' && document.querySelectorAll('#results .result-card img').length === 2 && [...document.querySelectorAll('#results .result-card img')].every(i => i.complete && i.naturalWidth > 0)")
        try await driver.screenshot(to: shots.appendingPathComponent("3-results.png"))

        // The comparison, at the photo's resolution.
        try await driver.click("#results .result-card button.thumb")
        try await driver.wait("the comparison", "const a = document.getElementById('compare-after'), b = document.getElementById('compare-before'); return !document.getElementById('compare').hidden && a.complete && a.naturalWidth > 0 && b.complete && b.naturalWidth > 0")
        let natural = try #require(try await driver.execute(
            "const a = document.getElementById('compare-after'); return [a.naturalWidth, a.naturalHeight];") as? [Int])
        #expect(natural == [photo.width, photo.height])
        try await driver.keys("\u{E012}\u{E012}\u{E012}")   // ArrowLeft x3: the slider moves
        #expect((try await driver.execute("return compare.split") as? NSNumber)?.doubleValue == 35)
        try await driver.screenshot(to: shots.appendingPathComponent("4-compare.png"))
        try await driver.keys("\u{E00C}")   // Escape

        // Phone width: the same page, one column.
        try await driver.setWindow(width: 390, height: 844)
        try await Task.sleep(for: .milliseconds(300))
        try await driver.screenshot(to: shots.appendingPathComponent("5-phone-results.png"))
        try await driver.click("#job-back")
        try await driver.wait("the editor", #"return !document.getElementById("editor-view").hidden && document.getElementById("stage").dataset.ready === "true""#)
        try await Task.sleep(for: .milliseconds(300))
        try await driver.screenshot(to: shots.appendingPathComponent("6-phone-editor.png"))
        #expect(try await driver.execute("return document.getElementById('prompt').value") as? String == "a red ball")

        // A result as the new input: the photo is replaced, the mask kept.
        try await driver.setWindow(width: 1280, height: 800)
        try await driver.execute("showJob(state.jobs.keys().next().value)")
        try await driver.click("#results .result-card .result-actions button")
        try await driver.wait("the result as the photo", #"return !document.getElementById("editor-view").hidden && state.photo && state.photo.name.endsWith("-edit1.png")"#)
        #expect(try #require(try await driver.execute(painted) as? NSNumber).doubleValue == coverage)

        // What the server got and made: the mask is the stroke, the results are at full
        // resolution and differ from the photo only inside it.
        let jobs = try #require(try await client.json("/api/jobs").object["jobs"] as? [[String: Any]])
        let job = try #require(jobs.first)
        #expect(jobs.count == 1 && job["state"] as? String == "finished" && job["prompt"] as? String == "a red ball")
        let id = try #require(job["id"] as? String)
        let mask = try EditMask(image: RGBImage(encoded: Array(buffer: try await client.execute(uri: "/api/jobs/\(id)/mask", method: .get).body)))
        #expect(mask.width == photo.width && mask.height == photo.height)
        // Inside the stroke's capsule (1.5 px in from its edge) painted; beyond it (1.5 px out) not.
        func distanceToStroke(_ x: Double, _ y0: Double) -> Double {
            let cx = min(max(x, a), b)
            return ((x - cx) * (x - cx) + (y0 - y) * (y0 - y)).squareRoot()
        }
        let radius = brush / 2 / 1   // brush is in photo pixels
        var inside = 0, outside = 0, wrong = 0
        for py in 0..<mask.height {
            for px in 0..<mask.width {
                let d = distanceToStroke(Double(px) + 0.5, Double(py) + 0.5)
                let edited = mask.isEdited[py * mask.width + px]
                if d < radius - 1.5 { inside += 1; if !edited { wrong += 1 } }
                if d > radius + 1.5 { outside += 1; if edited { wrong += 1 } }
            }
        }
        #expect(inside > 500 && outside > 10_000)
        #expect(wrong == 0, "\(wrong) mask pixels disagree with the stroke painted")
        try await expectEditedOnlyInside(mask, photo: photo, job: id, results: 2, client: client)

        try await latentJob(driver, shots: shots, client: client)
    }

    /// The latent method on the page: choose it, its settings appear with its defaults, run a
    /// job on the tiny SD model (the previous result as the photo, the same mask) with a
    /// background reconstruction; previews of the x0 estimates arrive, captioned as what they
    /// are, and the results are rendered.
    func latentJob(_ driver: WebDriver, shots: URL, client: some TestClientProtocol) async throws {
        #expect(try await driver.execute("return document.getElementById('latent-settings').hidden") as? Bool == true)
        try await driver.click("#set-method option[value='latent']")
        try await driver.wait("the latent settings", #"return document.getElementById("set-method").value === "latent" && !document.getElementById("latent-settings").hidden && document.getElementById("set-steps").value === "25""#)
        #expect(try await driver.execute("return document.getElementById('set-skip').closest('label').hidden") as? Bool == true)
        #expect(try await driver.execute("return document.getElementById('set-reconstruct-background').value") as? String == "0")
        try await driver.fill(["#set-samples": "2", "#set-batch": "1", "#set-steps": "8", "#set-reconstruct-background": "2"])
        // Note the previews the page's event stream brings (the job may finish before the page
        // has opened it: the newest preview is shown when it opens).
        try await driver.execute("window.previewJobs = []; events.addEventListener('preview', (e) => window.previewJobs.push(JSON.parse(e.data).job));")
        try await driver.click("#run")
        try await driver.wait("the latent job's view", "return !document.getElementById('job-view').hidden && state.currentJob && state.jobs.get(state.currentJob).settings.method === 'latent'")
        let caption = try await driver.execute("return document.getElementById('preview-caption').textContent") as? String
        #expect(caption?.contains("read straight from the latent") == true, "\(caption ?? "nil")")
        #expect((try await driver.execute("return document.getElementById('job-meta').textContent") as? String)?.contains("background reconstruction 2 steps") == true)
        try await driver.wait("the latent results", seconds: 120, "return document.getElementById('job-view').dataset.state === 'finished' && document.querySelectorAll('#results .result-card img').length === 2 && [...document.querySelectorAll('#results .result-card img')].every(i => i.complete && i.naturalWidth > 0)")
        let id = try #require(try await driver.execute("return state.currentJob") as? String)
        try await driver.wait("a preview", "const p = document.getElementById('preview'); return window.previewJobs.includes('\(id)') && p.src.startsWith('data:image/png') && p.complete && p.naturalWidth > 0")
        // The preview strip of one sample at the model's size (16x16 for the tiny SD model).
        let previewSize = try #require(try await driver.execute(
            "const p = document.getElementById('preview'); return [p.naturalWidth, p.naturalHeight];") as? [Int])
        #expect(previewSize == [16, 16])
        try await driver.screenshot(to: shots.appendingPathComponent("7-latent-results.png"))

        // What the server made: a latent job with the settings of the page, its results differing
        // from its photo only inside the mask.
        let job = try await client.json("/api/jobs/\(id)").object
        let settings = try #require(job["settings"] as? [String: Any])
        #expect(settings["method"] as? String == "latent" && settings["steps"] as? Int == 8 && settings["reconstructBackground"] as? Int == 2)
        #expect(job["modelSize"] as? Int == 16)
        let photo = try RGBImage(encoded: Array(buffer: try await client.execute(uri: "/api/jobs/\(id)/photo", method: .get).body))
        let mask = try EditMask(image: RGBImage(encoded: Array(buffer: try await client.execute(uri: "/api/jobs/\(id)/mask", method: .get).body)))
        try await expectEditedOnlyInside(mask, photo: photo, job: id, results: 2, client: client)
        let report = try await client.json("/api/jobs/\(id)/report").object
        #expect(((report["latent"] as? [String: Any])?["options"] as? [String: Any])?["reconstruct_background"] as? Int == 2)
    }

    /// Each of the job's first `results` results has the photo's size, the photo's pixels
    /// outside `mask` and mostly changed pixels inside it.
    func expectEditedOnlyInside(_ mask: EditMask, photo: RGBImage, job id: String, results: Int,
                                client: some TestClientProtocol) async throws {
        for rank in 1...results {
            let result = try RGBImage(encoded: Array(buffer: try await client.execute(uri: "/api/jobs/\(id)/results/\(rank)", method: .get).body))
            #expect(result.width == photo.width && result.height == photo.height)
            var changedInside = 0, changedOutside = 0
            for i in 0..<(photo.width * photo.height) where result.pixels[3 * i..<3 * i + 3] != photo.pixels[3 * i..<3 * i + 3] {
                if mask.isEdited[i] { changedInside += 1 } else { changedOutside += 1 }
            }
            #expect(changedOutside == 0 && changedInside > mask.editedPixelCount / 2, "result \(rank)")
        }
    }

    func waitForDriver(port: Int) async throws {
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if let value = try? await WebDriver.request("GET", URL(string: "http://127.0.0.1:\(port)/status")!, timeout: 2),
               (value as? [String: Any])?["ready"] as? Bool == true { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw WebDriver.Failure(description: "chromedriver did not start on port \(port)")
    }
}

/// A TCP port nothing listens on now (bound and released by the kernel's choice).
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
            guard bind(fd, pointer, length) == 0 else { return -1 }
            return getsockname(fd, pointer, &length)
        }
    }
    guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
    return Int(UInt16(bigEndian: address.sin_port))
}
