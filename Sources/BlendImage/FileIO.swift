#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-file reads and crash-safe writes with POSIX calls, so that every failure maps to
/// a specific ``ImageError``.
enum FileIO {
    /// The contents of the file at `path`.
    static func contents(of path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT || code == ENOTDIR { throw ImageError.fileNotFound(path: path) }
            throw ImageError.unreadableFile(path: path, reason: describe(code))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw ImageError.unreadableFile(path: path, reason: describe(errno)) }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            throw ImageError.unreadableFile(path: path, reason: "it is a directory")
        }
        // The size is a hint (a pipe or a growing file has none); read until end of file.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(max(info.st_size, 0)))
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR { continue }
                throw ImageError.unreadableFile(path: path, reason: describe(errno))
            }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return bytes
    }

    /// Writes the file at `path` so that it either keeps its old state or holds the whole
    /// new content, even if the process is killed or the machine loses power: the bytes go
    /// to a temporary file in the same directory (so the rename cannot cross file systems),
    /// are flushed to disk with fsync, and the file is renamed over `path` in one step.
    ///
    /// `produce` hands the content to its `emit` argument, in one or more pieces. If it or
    /// any system call throws, the temporary file is removed and `path` is untouched. A
    /// process killed mid-write can leave only a hidden `.<name>.blend-XXXXXX` file, never a
    /// partial `path`.
    static func writeAtomically(_ path: String, produce: (_ emit: ([UInt8]) throws -> Void) throws -> Void) throws {
        let (directory, name) = split(path)
        guard !name.isEmpty, name != ".", name != ".." else {
            throw ImageError.outputNotWritable(path: path, reason: "the path names a directory, not a file")
        }
        var info = stat()
        if stat(directory, &info) != 0 {
            let code = errno
            if code == ENOENT { throw ImageError.outputDirectoryMissing(path: path, directory: directory) }
            throw ImageError.outputNotWritable(path: path, reason: describe(code))
        }
        guard (info.st_mode & S_IFMT) == S_IFDIR else {
            throw ImageError.outputNotWritable(path: path, reason: "\(directory) is not a directory")
        }
        if stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR {
            throw ImageError.outputNotWritable(path: path, reason: "it is a directory")
        }

        var template = Array("\(directory)/.\(name).blend-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            throw ImageError.outputNotWritable(path: path, reason: describe(errno))
        }
        let temporary = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        var isOpen = true
        func discard() {
            if isOpen { close(fd); isOpen = false }
            unlink(temporary)
        }

        do {
            try produce { bytes in
                var offset = 0
                while offset < bytes.count {
                    let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw ImageError.writeFailed(path: path, reason: describe(errno))
                    }
                    offset += n
                }
            }
            // mkstemp creates the file 0600; an image is an ordinary document.
            guard fchmod(fd, 0o644) == 0, fsync(fd) == 0 else {
                throw ImageError.writeFailed(path: path, reason: describe(errno))
            }
            isOpen = false
            // close can report a deferred write error (e.g. on network file systems).
            guard close(fd) == 0 else { throw ImageError.writeFailed(path: path, reason: describe(errno)) }
            guard rename(temporary, path) == 0 else {
                throw ImageError.writeFailed(path: path, reason: describe(errno))
            }
        } catch {
            discard()
            throw error
        }
        // Make the rename itself durable; the new file is complete either way, so a failure
        // here is not reported.
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            _ = fsync(directoryFD)
            close(directoryFD)
        }
    }

    /// The directory (`"."` for a bare name) and the last component of a path.
    static func split(_ path: String) -> (directory: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let directory = String(path[..<slash])
        return (directory.isEmpty ? "/" : directory, String(path[path.index(after: slash)...]))
    }

    static func describe(_ code: Int32) -> String {
        switch code {
        case EACCES, EPERM: return "permission denied"
        case EROFS: return "read-only file system"
        case ENOSPC: return "no space left on the device"
        case EDQUOT: return "disk quota exceeded"
        default: return String(cString: strerror(code))
        }
    }
}

/// Writes `bytes` to `path` crash-safely (see `FileIO.writeAtomically`): the file either
/// keeps its old state or holds all of `bytes`. For reports and other non-image outputs.
public func writeFileAtomically(_ bytes: [UInt8], to path: String) throws {
    try FileIO.writeAtomically(path) { emit in try emit(bytes) }
}
