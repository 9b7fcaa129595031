import Foundation

/// Why a download failed, with what to do next.
public enum DownloadError: Error, Equatable, CustomStringConvertible {
    case unknownModel(name: String, known: [String])
    /// The host could not be reached at all: no network, DNS, or a firewall.
    case offline(url: String, reason: String, destination: String)
    case httpStatus(url: String, status: Int)
    /// The transfer broke off; the partial file is kept for the next run to resume.
    case interrupted(url: String, bytesReceived: Int64, partialFile: String, reason: String)
    /// The file is not the published one; it was deleted.
    case checksumMismatch(file: String, expected: String, actual: String)
    case fileSystem(path: String, reason: String)
    /// The server sent a file of a size the published one cannot have (an error page, say); it was deleted.
    case wrongSize(url: String, bytes: Int64, expected: String)
    /// The cache holds a file under the model's name that is not the published one.
    case wrongCachedFile(model: String, file: String, reason: String)

    public var description: String {
        switch self {
        case let .unknownModel(name, known):
            return "no model called \(name); `blend models list` shows the known ones (\(known.joined(separator: ", ")))"
        case let .offline(url, reason, destination):
            return "cannot reach \(URL(string: url)?.host ?? url) (\(reason)); you appear to be offline. "
                + "Download \(url) on a machine with network access and put it at \(destination), "
                + "or pass the file's path to blend directly"
        case let .httpStatus(url, status):
            return "the server answered HTTP \(status) for \(url)"
                + (status == 404 ? "; the file may have moved, please report it" : "; try again later")
        case let .interrupted(url, received, partial, reason):
            return "the download of \(url) broke off after \(received) bytes (\(reason)); "
                + "\(partial) is kept: run the same command again to resume"
        case let .checksumMismatch(file, expected, actual):
            return "\(file) does not match its published SHA-256 (expected \(expected), got \(actual)); "
                + "the file was deleted: run the command again to download it afresh"
        case let .wrongSize(url, bytes, expected):
            return "\(url) sent \(bytes) bytes, but the published file has \(expected); the download was deleted. "
                + "Check the address (--from), or try again later"
        case let .wrongCachedFile(model, file, reason):
            return "\(file) is in the model cache but is not the published \(model) (\(reason)); "
                + "run `blend models download \(model) --force` to replace it"
        case let .fileSystem(path, reason):
            return "cannot write \(path): \(reason); check the cache directory (--cache-dir or $\(ModelCache.environmentVariable))"
        }
    }
}
