#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A 64-byte aligned, heap-allocated block of `Float`s owned by one or more tensors.
///
/// Tensors treat storage as immutable once an op has filled it: every op writes a
/// fresh block, so sharing one between tensor values (and threads) is safe.
final class TensorStorage: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    /// Allocates `count` floats; the contents are undefined until written.
    init(uninitializedCount count: Int) {
        self.count = count
        var raw: UnsafeMutableRawPointer?
        // 64-byte alignment keeps AVX-512 loads and BLAS packing on cache lines.
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        guard posix_memalign(&raw, 64, bytes) == 0, let raw else {
            // Out of memory is not a user input error; there is nothing sensible to return.
            fatalError("blend: out of memory allocating \(bytes) bytes")
        }
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    deinit { free(pointer) }

    var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
}
