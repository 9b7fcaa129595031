// Shared by every fuzz target (compiled into each): the input as a file, for readers that
// take paths (memory-mapped, as the CLI reads them), and the rule for thrown errors.
#if canImport(Glibc)
import Glibc
#endif

/// A file that holds the current input: on /dev/shm (memory) when it exists.
let fuzzInputPath: String = {
    let folder = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
    return "\(folder)/blend-fuzz-\(getpid()).bin"
}()

/// Removes `fuzzInputPath` when the fuzzer exits normally (scripts/fuzz.sh also removes it
/// after a crash).
private let removeInputAtExit: Void = { atexit { unlink(fuzzInputPath) } }()

/// Writes the input to `fuzzInputPath`.
func writeFuzzInput(_ data: UnsafePointer<UInt8>, _ size: Int) {
    _ = removeInputAtExit
    let fd = open(fuzzInputPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    precondition(fd >= 0, "cannot create \(fuzzInputPath)")
    var written = 0
    while written < size {
        let n = write(fd, data + written, size - written)
        precondition(n > 0, "cannot write \(fuzzInputPath)")
        written += n
    }
    close(fd)
}

/// Every failure must be one of the documented error types; anything else is a finding.
func expectDocumented<T>(_ body: () throws -> T, allowed: (any Error) -> Bool) {
    do {
        _ = try body()
    } catch {
        guard allowed(error) else { fatalError("undocumented error type \(type(of: error)): \(error)") }
    }
}
