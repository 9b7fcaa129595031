import Foundation

/// Locates the committed fixtures (written by scripts/make-checkpoint-fixtures.py)
/// relative to this source file, so tests run from any working directory.
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// What PyTorch says each fixture holds.
    struct Expected: Decodable {
        struct Entry: Decodable {
            let name: String
            let dtype: String
            let shape: [Int]
            let f32bits: [UInt32]?
            let ints: [Int64]?
        }

        let format: String
        let metadata: [String: String]?
        let entries: [Entry]
    }

    static func expected() throws -> [String: Expected] {
        let data = try Data(contentsOf: directory.appendingPathComponent("expected.json"))
        return try JSONDecoder().decode([String: Expected].self, from: data)
    }

    /// A fresh scratch directory under the system temporary directory.
    static func scratchDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("blend-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
