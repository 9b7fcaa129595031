import Foundation

/// Opens weight files of any format `blend` reads, telling them apart by content
/// rather than by extension (`.pt` is used for all three PyTorch formats).
public enum CheckpointFile {
    /// Maps `path` and reads its tensor directory. Tensor data stays in the file
    /// until `Checkpoint.tensor(named:)` asks for it. Nothing in the file is executed.
    public static func load(path: String) throws -> Checkpoint {
        let file = try MappedFile(path: path)
        let head = file.bytes
        if ZipArchive.looksLikeZip(head) {
            let archive = try ZipArchive(file: file)
            guard let prefix = TorchZipReader.recordPrefix(of: archive) else {
                if archive.members.contains(where: { $0.name.hasSuffix("attributes.pkl") || $0.name.hasSuffix("model.json") }) {
                    throw CheckpointError.unrecognizedFormat(file: path, detail: "a TorchScript archive from PyTorch < 1.4; re-save it with a newer PyTorch")
                }
                throw CheckpointError.unrecognizedFormat(file: path, detail: "a zip archive without data.pkl")
            }
            if TorchScriptReader.isTorchScript(archive, prefix: prefix) {
                return try TorchScriptReader.read(archive, prefix: prefix)
            }
            return try TorchZipReader.read(archive, prefix: prefix)
        }
        if TorchLegacyReader.looksLikeLegacy(head) {
            return try TorchLegacyReader.read(file)
        }
        if SafetensorsReader.looksLikeSafetensors(head) {
            return try SafetensorsReader.read(file)
        }
        if head.count > 262, String(decoding: UnsafeRawBufferPointer(rebasing: head[257..<262]), as: UTF8.self) == "ustar" {
            throw CheckpointError.unrecognizedFormat(file: path, detail: "a tar-based torch.save file from PyTorch < 0.4; re-save it with a newer PyTorch")
        }
        if head.count >= 2, head[0] == 0x80 {
            throw CheckpointError.unrecognizedFormat(file: path, detail: "a bare pickle without PyTorch's magic number")
        }
        if head.isEmpty { throw CheckpointError.unrecognizedFormat(file: path, detail: "the file is empty") }
        let shown = head.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " ")
        throw CheckpointError.unrecognizedFormat(file: path, detail: "it starts with bytes \(shown)")
    }

    public static func load(url: URL) throws -> Checkpoint { try load(path: url.path) }
}
