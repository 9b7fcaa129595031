import ArgumentParser
import BlendModels
import BlendPipeline
import BlendServer
import BlendTensor
import Foundation

/// `blend serve`: the local web app. A thin front end over ``BlendServer``.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the local web app: paint the mask on a photo, prompt, watch the edit, compare results.",
        discussion: """
            Open the address it prints in a browser. Models load once, in the background; the page \
            and this console say when a file is missing, which methods need it and how to get it \
            (blend models download ..., or the option that gives its path). Jobs, \
            inputs and results are kept in the data directory and survive restarts.

            The server answers only requests for itself (Host and Origin are checked), and binds \
            to loopback unless told otherwise: anyone who can reach it can run edits and see \
            every job.
            """)

    @Option(help: ArgumentHelp("Address to listen on. Anything but loopback exposes the server to the network.", valueName: "address"))
    var host = "127.0.0.1"

    @Option(help: "TCP port (0: any free one).")
    var port = 8188

    @Option(help: ArgumentHelp("Jobs and results (default: $XDG_DATA_HOME/blend, else ~/.local/share/blend).", valueName: "dir"))
    var dataDir: String?

    @OptionGroup var modelFiles: ModelFileOptions

    @OptionGroup var threadOptions: ThreadOptions

    @Option(help: "Jobs that may wait behind the running one; more are refused (HTTP 429).")
    var queueLimit = 8

    @Option(help: ArgumentHelp("Largest upload (photo and mask together), in MB.", valueName: "MB"))
    var maxUploadMb = 32

    @Option(help: ArgumentHelp("Largest photo or mask, in megapixels (checked from the file's header before decoding).", valueName: "MP"))
    var maxMegapixels = 100

    @Option(help: ArgumentHelp("Another host name the server may be reached by (repeatable).", valueName: "name"))
    var allowHost: [String] = []

    @Option(help: ArgumentHelp("Arithmetic of the diffusion model's convolutions for every job: fp32 (the reference) or bf16 (faster on CPUs with AVX512_BF16 or AMX; elsewhere fp32 is used, with a note in the job's log). Recorded in each report.json.", valueName: "fp32|bf16"))
    var precision: ComputePrecision = .fp32

    @Flag(help: "Open the page in the default browser once the server runs.")
    var open = false

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0 to 65535") }
        guard queueLimit >= 0 else { throw ValidationError("--queue-limit must be at least 0") }
        guard maxUploadMb >= 1 else { throw ValidationError("--max-upload-mb must be at least 1") }
        try validateMegapixels(maxMegapixels)
    }

    func serverConfiguration() throws -> ServerConfiguration {
        let models = try modelFiles.paths()
        var configuration = ServerConfiguration(
            dataDirectory: dataDir.map { URL(fileURLWithPath: $0, isDirectory: true) } ?? ServerConfiguration.defaultDataDirectory(),
            models: models)
        configuration.host = host
        configuration.port = port
        configuration.queueLimit = queueLimit
        configuration.maxUploadBytes = maxUploadMb * 1024 * 1024
        configuration.maxUploadPixels = maxMegapixels * 1_000_000
        configuration.extraAllowedHosts = allowHost
        configuration.precision = precision
        return configuration
    }

    func run() async throws {
        threadOptions.apply()
        let configuration = try serverConfiguration()
        // A data directory in use or unusable is a failure at run time (exit 1), not a usage error.
        let server = try BlendServer(configuration: configuration)
        if precision == .bf16, let note = ComputePrecision.bf16Unavailable {
            FileHandle.standardError.write(Data("note: \(note)\n".utf8))
        }
        server.loadModels(onModelsChange: { status in
            FileHandle.standardError.write(Data(Serve.consoleLines(for: status).map { $0 + "\n" }.joined().utf8))
        })
        let display = configuration.host == "0.0.0.0" || configuration.host == "::" ? "127.0.0.1" : configuration.host
        let open = self.open
        // After run returns: its job runner has stopped and saved the running job by then.
        defer { server.close() }
        try await server.run(onRunning: { port in
            // The port it listens on (the one chosen when --port 0).
            if !configuration.isLoopback {
                FileHandle.standardError.write(Data(Serve.exposureWarning(host: configuration.host, port: port).utf8))
            }
            let url = "http://\(display.contains(":") ? "[\(display)]" : display):\(port)/"
            // Unbuffered, so that it shows at once also when the output goes to a file.
            FileHandle.standardOutput.write(Data("blend serve: open \(url) (data: \(configuration.dataDirectory.path)); Ctrl+C stops\n".utf8))
            FileHandle.standardError.write(Data("blend serve: \(ThreadOptions.summary)\n".utf8))
            if open { Serve.openInBrowser(url) }
        })
    }

    /// The warning for a server listening beyond loopback, naming the port it listens on.
    static func exposureWarning(host: String, port: Int) -> String {
        "warning: listening on \(host), not loopback: anyone who can reach this machine on port \(port) can run edits and"
            + " see every job. Use --host 127.0.0.1 unless you mean it.\n"
    }

    /// What the console says of the models' status: one line per missing file with what to
    /// do (the page shows the same), the failure, or that they are ready.
    static func consoleLines(for status: ModelsStatus) -> [String] {
        switch status.state {
        case .loading:
            return []
        case .missing:
            return status.missingLines + ["no edit can run until they are there: the page shows the same; press \"Check again\" there"
                + " (or restart) once they are"]
        case .failed:
            return ["the models failed to load: \(status.message ?? "unknown error")"]
        case .ready:
            return [String(format: "models ready (loaded in %.1f s)", status.loadSeconds ?? 0)] + status.missingLines
        }
    }

    static func openInBrowser(_ url: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["xdg-open", url]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            FileHandle.standardError.write(Data("could not open a browser (\(error)); open \(url) yourself\n".utf8))
        }
    }
}
