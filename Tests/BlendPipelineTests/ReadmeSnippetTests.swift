import Foundation
import Testing
import BlendEditor
import BlendPipeline
import BlendPipelineTestSupport

/// README's "Use blend from Swift" snippet: every line of its code is this test's code (the
/// model files and folders aside, which are the tiny models here), and it runs.
@Suite(.serialized) struct ReadmeSnippetTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The code lines of the README's snippet, trimmed, without comments.
    static func snippetLines() throws -> [String] {
        let readme = try String(contentsOf: packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try #require(readme.components(separatedBy: "## Use blend from Swift").dropFirst().first)
        let code = try #require(section.components(separatedBy: "```swift\n").dropFirst().first?.components(separatedBy: "```").first)
        return code.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("//") }
    }

    @Test func theSnippetIsThisTestsCode() throws {
        let source = try String(contentsOf: URL(fileURLWithPath: #filePath), encoding: .utf8)
        let lines = try Self.snippetLines()
        #expect(lines.count >= 8)
        // The paths differ: the README's are a user's, these the tiny models' files.
        let generic = ["\"photo.jpg\"", "\"mask.png\"", "\"out\"", ".standard()"]
        for line in lines {
            var expected = line
            for word in generic { expected = expected.replacingOccurrences(of: word, with: "…") }
            let pattern = expected.components(separatedBy: "…")
            #expect(source.contains(line) || pattern.count > 1 && pattern.allSatisfy { source.contains($0) }, "README line not in the test: \(line)")
        }
    }

    @Test func theSnippetRuns() throws {
        let models = try TinyModelFiles.scratch()
        let directory = models.directory.appendingPathComponent("readme")
        let (photo, mask) = try writePhotoAndMask(in: directory)
        let out = directory.appendingPathComponent("out").path
        var printed: [String] = []
        func print(_ items: Any...) { printed.append(items.map { "\($0)" }.joined(separator: " ")) }

        var settings = EditSettings(prompt: "a red ball")
        settings.samples = 4
        settings.pixel.timestepRespacing = "10"
        settings.pixel.skipTimesteps = 8
        settings.pixel.augmentations = 1
        let request = EditRequest(imagePath: photo, maskPath: mask, outputDirectory: out,
                                  settings: settings, models: models.paths)
        let report = try EditPipeline.run(request) { event in
            if case let .sampleFinished(sample) = event { print("sample \(sample.index + 1): \(sample.file)") }
        }
        print("best:", report.directory + "/" + report.samples[0].file)

        #expect(printed.count == 5 && printed.last!.hasPrefix("best: \(out)/runs/") && printed.last!.contains("/ranked/01_distance_"))
        #expect(FileManager.default.fileExists(atPath: String(printed.last!.dropFirst("best: ".count))))
    }
}
