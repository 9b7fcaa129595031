import ArgumentParser
import Foundation
import Testing
import BlendServer
@testable import BlendCLI

@Suite struct ServeCommandTests {
    @Test func defaultsListenOnLoopbackWithTheIssuesLimits() throws {
        let configuration = try Serve.parse([]).serverConfiguration()
        #expect(configuration.host == "127.0.0.1" && configuration.port == 8188 && configuration.isLoopback)
        #expect(configuration.queueLimit == 8)
        #expect(configuration.maxUploadBytes == 32 * 1024 * 1024 && configuration.maxUploadPixels == 100_000_000)
        #expect(configuration.precision == .fp32)
        #expect(configuration.models.diffusion.hasSuffix("256x256_diffusion_uncond.pt"))
        #expect(ServerConfiguration.defaultDataDirectory(environment: ["HOME": "/home/u"]).path == "/home/u/.local/share/blend")
        #expect(ServerConfiguration.defaultDataDirectory(environment: ["HOME": "/home/u", "XDG_DATA_HOME": "/data"]).path == "/data/blend")
    }

    @Test func everyOptionParses() throws {
        let configuration = try Serve.parse([
            "--host", "0.0.0.0", "--port", "9000", "--data-dir", "/tmp/d", "--models-dir", "/m", "--diffusion-model", "u.pt",
            "--clip-model", "c.pt", "--clip-vocab", "v.gz", "--queue-limit", "2", "--max-upload-mb", "5", "--max-megapixels", "12",
            "--allow-host", "studio.local", "--open", "--precision", "bf16",
        ]).serverConfiguration()
        #expect(configuration.precision == .bf16)
        #expect(configuration.host == "0.0.0.0" && !configuration.isLoopback && configuration.port == 9000)
        #expect(configuration.dataDirectory.path == "/tmp/d" && configuration.queueLimit == 2)
        #expect(configuration.maxUploadBytes == 5 * 1024 * 1024 && configuration.maxUploadPixels == 12_000_000)
        #expect(configuration.models.diffusion == "u.pt" && configuration.models.clip == "c.pt" && configuration.models.clipVocabulary == "v.gz")
        #expect(configuration.models.vgg16 == "/m/vgg16-397923af.pth")
        #expect(configuration.extraAllowedHosts == ["studio.local"])
        #expect(throws: (any Error).self) { try Serve.parse(["--port", "70000"]) }
        #expect(throws: (any Error).self) { try Serve.parse(["--max-upload-mb", "0"]) }
        for bad in ["fp16", "bf16-rounded"] {
            #expect(throws: (any Error).self, "--precision \(bad)") { try Serve.parse(["--precision", bad]) }
        }
        for bad in ["0", "10001", "many"] {
            #expect(throws: (any Error).self, "--max-megapixels \(bad)") { try Serve.parse(["--max-megapixels", bad]) }
        }
    }
}
