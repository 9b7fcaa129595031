import Foundation

/// A W3C WebDriver client over HTTP on loopback, enough to drive Chromium through
/// chromedriver: sessions, elements, keys, pointer actions, scripts, screenshots.
struct WebDriver {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static let elementKey = "element-6066-11e4-a52e-4f735466cecf"
    let base: URL
    let session: String

    /// Chromium and chromedriver from Debian (`apt-get install chromium chromium-driver`).
    static func executables() -> (browser: String, driver: String)? {
        let fm = FileManager.default
        let browser = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first { fm.isExecutableFile(atPath: $0) }
        let driver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"].first { fm.isExecutableFile(atPath: $0) }
        guard let browser, let driver else { return nil }
        return (browser, driver)
    }

    /// One WebDriver command, on a plain socket (FoundationNetworking rejects chromedriver's
    /// headers, which have no space after the colon), off the test's threads.
    static func request(_ method: String, _ url: URL, _ body: Any? = nil, timeout: Double = 60) async throws -> Any {
        let payload = try body.map { try JSONSerialization.data(withJSONObject: $0) } ?? Data()
        let port = url.port ?? 80
        let head = "\(method) \(url.path) HTTP/1.1\nHost: 127.0.0.1:\(port)\nContent-Type: application/json\n"
            + "Content-Length: \(payload.count)\nConnection: close\n"
        let (status, _, bytes) = try await offPool { try rawExchange(port: port, head, body: Array(payload), timeout: timeout) }
        let object = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
        let value = (object as? [String: Any])?["value"] ?? NSNull()
        if status >= 400 || status == 0 {
            throw Failure(description: "WebDriver \(method) \(url.path): \(status) \(value)")
        }
        return value
    }

    /// Starts a headless Chromium session at `width` x `height`.
    static func start(driverPort: Int, browser: String, profile: URL, width: Int, height: Int) async throws -> WebDriver {
        let base = URL(string: "http://127.0.0.1:\(driverPort)")!
        let capabilities: [String: Any] = ["capabilities": ["alwaysMatch": [
            "browserName": "chrome",
            "goog:chromeOptions": [
                "binary": browser,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                         "--disable-extensions", "--hide-scrollbars", "--force-device-scale-factor=1",
                         "--window-size=\(width),\(height)", "--user-data-dir=\(profile.path)"],
            ],
        ] as [String: Any]]]
        let value = try await request("POST", base.appendingPathComponent("session"), capabilities, timeout: 120)
        guard let session = (value as? [String: Any])?["sessionId"] as? String else {
            throw Failure(description: "chromedriver started no session: \(value)")
        }
        return WebDriver(base: base, session: session)
    }

    func call(_ method: String, _ path: String, _ body: Any? = nil) async throws -> Any {
        try await Self.request(method, base.appendingPathComponent("session/\(session)\(path)"), body ?? (method == "POST" ? [String: Any]() : nil))
    }

    func quit() async { _ = try? await Self.request("DELETE", base.appendingPathComponent("session/\(session)")) }

    func navigate(_ url: String) async throws { _ = try await call("POST", "/url", ["url": url]) }

    func element(_ css: String) async throws -> String {
        let value = try await call("POST", "/element", ["using": "css selector", "value": css])
        guard let id = (value as? [String: Any])?[Self.elementKey] as? String else { throw Failure(description: "no element \(css)") }
        return id
    }

    func click(_ css: String) async throws { _ = try await call("POST", "/element/\(try await element(css))/click") }

    func clear(_ css: String) async throws { _ = try await call("POST", "/element/\(try await element(css))/clear") }

    func type(_ css: String, _ text: String) async throws {
        _ = try await call("POST", "/element/\(try await element(css))/value", ["text": text])
    }

    /// Replaces the text of each field (a CSS selector) with its value, in order.
    func fill(_ fields: KeyValuePairs<String, String>) async throws {
        for (css, text) in fields {
            try await clear(css)
            try await type(css, text)
        }
    }

    /// Runs `script` (a function body) in the page; returns its value.
    @discardableResult
    func execute(_ script: String, _ arguments: [Any] = []) async throws -> Any {
        try await call("POST", "/execute/sync", ["script": script, "args": arguments])
    }

    /// Waits until `script` returns true.
    func wait(_ what: String, seconds: Double = 60, _ script: String) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if (try? await execute(script)) as? Bool == true { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw Failure(description: "timed out waiting for \(what)")
    }

    /// A mouse (or pen) stroke through `points`, in CSS pixels from the element's centre.
    func stroke(on css: String, through points: [(x: Int, y: Int)], pointerType: String = "mouse") async throws {
        let id = try await element(css)
        let origin = [Self.elementKey: id]
        var actions: [[String: Any]] = [["type": "pointerMove", "duration": 0, "origin": origin, "x": points[0].x, "y": points[0].y],
                                        ["type": "pointerDown", "button": 0]]
        for point in points.dropFirst() {
            actions.append(["type": "pointerMove", "duration": 60, "origin": origin, "x": point.x, "y": point.y])
        }
        actions.append(["type": "pointerUp", "button": 0])
        _ = try await call("POST", "/actions", ["actions": [["type": "pointer", "id": "pointer1",
                                                              "parameters": ["pointerType": pointerType], "actions": actions]]])
        _ = try await call("DELETE", "/actions")
    }

    func keys(_ text: String) async throws {
        var actions: [[String: Any]] = []
        for scalar in text.unicodeScalars {
            actions.append(["type": "keyDown", "value": String(scalar)])
            actions.append(["type": "keyUp", "value": String(scalar)])
        }
        _ = try await call("POST", "/actions", ["actions": [["type": "key", "id": "keyboard", "actions": actions]]])
    }

    /// `key` pressed with Control held (and Shift, if asked): e.g. Ctrl+Z.
    func chord(_ key: String, shift: Bool = false) async throws {
        var actions: [[String: Any]] = [["type": "keyDown", "value": "\u{E009}"]]
        if shift { actions.append(["type": "keyDown", "value": "\u{E008}"]) }
        actions += [["type": "keyDown", "value": key], ["type": "keyUp", "value": key]]
        if shift { actions.append(["type": "keyUp", "value": "\u{E008}"]) }
        actions.append(["type": "keyUp", "value": "\u{E009}"])
        _ = try await call("POST", "/actions", ["actions": [["type": "key", "id": "keyboard", "actions": actions]]])
        _ = try await call("DELETE", "/actions")
    }

    func screenshot(to url: URL) async throws {
        guard let base64 = try await call("GET", "/screenshot") as? String, let png = Data(base64Encoded: base64) else {
            throw Failure(description: "no screenshot")
        }
        try png.write(to: url)
    }

    func setWindow(width: Int, height: Int) async throws {
        _ = try await call("POST", "/window/rect", ["width": width, "height": height])
    }
}
