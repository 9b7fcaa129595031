import Foundation
import Testing
import BlendCheckpoint
@testable import BlendCLI

@Suite struct InspectFolderTests {
    let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../BlendModelsTests/Fixtures/sd").standardizedFileURL

    @Test func inspectsDiffusersFoldersAndSDFiles() throws {
        try Models.Inspect.parse([fixtures.appendingPathComponent("unet_vae_sd2_diffusers").path, "--summary"]).run()
        try Models.Inspect.parse([fixtures.appendingPathComponent("unet_vae_sd1.ckpt").path, "--summary"]).run()
        // A folder that is not a diffusers pipeline says so.
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("blend-inspect-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        #expect(throws: DiffusersFolderError.notAFolder(path: empty.path)) { try Models.Inspect.parse([empty.path]).run() }
    }
}
