import BlendImage
import BlendPipeline
import BlendTensor
import Foundation

/// How `blend serve` runs: where it listens, where it keeps jobs, which model files it
/// loads, and the limits that keep a local server safe.
public struct ServerConfiguration: Sendable {
    /// The address to bind. Loopback by default; anything else exposes the server to the
    /// network, which the CLI warns about.
    public var host: String = "127.0.0.1"
    /// The TCP port; 0 picks a free one (tests).
    public var port: Int = 8188
    /// Jobs, inputs and results: `DATA/jobs/<id>/`.
    public var dataDirectory: URL
    public var models: EditModelPaths
    /// Jobs that may wait behind the running one; a job beyond them is refused with 429.
    public var queueLimit: Int = 8
    /// The largest request body accepted (the photo and the mask together), in bytes.
    public var maxUploadBytes: Int = 32 * 1024 * 1024
    /// The largest photo or mask accepted, in pixels (checked from the file header, before
    /// decoding, at upload and again when the job reads its files). `--max-megapixels`.
    public var maxUploadPixels: Int = ImageSize.defaultMaximumDecodedPixels
    /// Further host names the server answers to (besides loopback names and `host`), for a
    /// server reached through a name of its own.
    public var extraAllowedHosts: [String] = []
    /// The arithmetic of the diffusion model's convolutions for every job (`--precision`): fp32,
    /// the reference, or bf16 where the CPU has AVX512_BF16 or AMX (elsewhere a job runs in
    /// fp32 and its log and report.json say so).
    public var precision: ComputePrecision = .fp32
    /// An x0 preview is sent every this many denoising steps (and at the last step).
    public var previewEvery: Int = 5
    /// Seconds between keep-alive comments on an idle event stream.
    public var keepAliveSeconds: Double = 15

    public init(dataDirectory: URL = ServerConfiguration.defaultDataDirectory(), models: EditModelPaths = .standard()) {
        self.dataDirectory = dataDirectory
        self.models = models
    }

    /// `$XDG_DATA_HOME/blend`, else `~/.local/share/blend`.
    public static func defaultDataDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let xdg = environment["XDG_DATA_HOME"], xdg.hasPrefix("/") {
            return URL(fileURLWithPath: xdg, isDirectory: true).appendingPathComponent("blend", isDirectory: true)
        }
        let home = environment["HOME"].map { URL(fileURLWithPath: $0, isDirectory: true) }
            ?? FileManager.default.homeDirectoryForCurrentUser
        return home.appendingPathComponent(".local/share/blend", isDirectory: true)
    }

    /// True for addresses only this machine can reach.
    public var isLoopback: Bool { Self.loopbackHosts.contains(host.lowercased()) || host.hasPrefix("127.") }

    static let loopbackHosts: Set<String> = ["127.0.0.1", "localhost", "::1", "[::1]"]
}
