#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import BlendConcurrency

/// A 64-byte aligned, heap-allocated block of `Float`s owned by one or more tensors.
///
/// Tensors treat storage as immutable once an op has filled it: every op writes a
/// fresh block, so sharing one between tensor values (and threads) is safe. (The one
/// exception is the backward pass, which adds into a gradient buffer that nothing else
/// references: see ``accumulate(_:_:)``.)
///
/// Large blocks come from and go back to ``TensorMemory``'s cache, so that the activations
/// of a forward or backward pass reuse already-mapped memory instead of each mapping fresh
/// pages (one page fault per 4 KiB) and unmapping them again.
final class TensorStorage: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int
    /// The size class of a cached block (bytes), or 0 for a block from `malloc`.
    private let classBytes: Int
    /// Rearrangements of these values computed once (e.g. a convolution's transformed
    /// kernel), keyed by what they are; see ``derived(_:count:_:)``.
    private let derivedCache = PThreadMutex<[DerivedKey: TensorStorage]>([:])

    /// Allocates `count` floats; the contents are undefined until written.
    init(uninitializedCount count: Int) {
        self.count = count
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        let raw: UnsafeMutableRawPointer
        if let size = TensorMemory.sizeClass(bytes) {
            classBytes = size
            raw = TensorMemory.take(size) ?? TensorStorage.allocate(size)
        } else {
            classBytes = 0
            raw = TensorStorage.allocate(bytes)
        }
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    deinit {
        if classBytes > 0 {
            TensorMemory.give(UnsafeMutableRawPointer(pointer), size: classBytes)
        } else {
            free(pointer)
        }
    }

    private static func allocate(_ bytes: Int) -> UnsafeMutableRawPointer {
        var raw: UnsafeMutableRawPointer?
        // 64-byte alignment keeps AVX-512 loads and BLAS packing on cache lines.
        guard posix_memalign(&raw, 64, bytes) == 0, let raw else {
            // Out of memory is not a user input error; there is nothing sensible to return.
            fatalError("blend: out of memory allocating \(bytes) bytes")
        }
        return raw
    }

    var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }

    /// What a derived block holds.
    enum DerivedKey: Hashable {
        /// A 3×3 kernel's Winograd F(2×2, 3×3) filter transform, `[16, out, in]`.
        case winogradFilter(out: Int, in: Int)
        /// A 3×3 kernel's Winograd F(4×4, 3×3) filter transform, `[36, out, in]`.
        case winogradF4Filter(out: Int, in: Int)
        /// A kernel split into one `[out, in]` matrix per tap, `[kH·kW, out, in]`.
        case kernelTaps(out: Int, in: Int, kernelH: Int, kernelW: Int)
        /// The values rounded to bfloat16 (``ComputePrecision/bf16Rounded``).
        case bfloat16Rounded
        /// Weights in the layout (and data type) of one oneDNN primitive, named by it.
        case oneDNN(String)
    }

    /// The block `key` if ``derived(_:count:_:)`` computed and kept it already.
    func keptDerived(_ key: DerivedKey) -> TensorStorage? {
        derivedCache.withLock { $0[key] }
    }

    /// The block `key` derived from these values, computed by `make` (which fills `count`
    /// floats) on first use and kept for the lifetime of this storage. Thread-safe: when
    /// two threads ask at once, one computes and the other waits for it. Only for
    /// storage that is never written again, such as a layer's weights.
    func derived(_ key: DerivedKey, count: Int, _ make: (UnsafeMutablePointer<Float>) -> Void) -> TensorStorage {
        derivedCache.withLock { cache in
            if let block = cache[key] { return block }
            let block = TensorStorage(uninitializedCount: count)
            make(block.pointer)
            cache[key] = block
            return block
        }
    }
}

/// The engine's cache of freed large memory blocks.
///
/// Every tensor of 256 KiB or more is allocated in a size class (four classes per power of
/// two, so at most a quarter of a block is slack) and, when freed, kept for the next
/// allocation of its class, up to ``cacheLimitBytes`` in all (the least recently freed blocks
/// go back to the system first). A forward or backward pass allocates the same few sizes over
/// and over, so after the first layers almost every activation, gradient and scratch buffer
/// is a block that is already mapped: no page faults, no `munmap`.
public enum TensorMemory {
    static let shared = BlockCache(limit: 1 << 30)

    /// The most memory the cache keeps for reuse, in bytes (default 1 GiB; 0 disables it).
    /// Lowering it releases cached blocks at once.
    public static var cacheLimitBytes: Int {
        get { shared.limit }
        set { shared.limit = newValue }
    }

    /// Bytes held by the cache now (freed blocks waiting for reuse).
    public static var cachedBytes: Int { shared.bytes }

    /// Returns every cached block to the system (e.g. when a long computation is over).
    public static func releaseCache() { shared.removeAll() }

    /// Runs `body` with the cache held to at most `bytes` (cached blocks above it are released
    /// at once), then lifts that ceiling again; ``cacheLimitBytes`` itself is unchanged.
    ///
    /// For a phase whose freed blocks are rarely asked for again, so that a full cache only
    /// adds to the peak: a 512² VAE decode frees activations of 32–256 MiB in many classes
    /// (measured on SD 1.5's decoder, 2026-11-30: peak 1.90 GiB at the default limit, 1.43 GiB
    /// under a 256 MiB ceiling in the same time, 1.15 GiB with no cache but a third slower).
    /// The ceiling is process-wide, not task-local: every thread's blocks are held to it while
    /// `body` runs. Ceilings of overlapping calls (other threads, or nested) all apply, the
    /// lowest wins, and each is lifted when its own call returns or throws.
    public static func withCacheCeiling<R>(_ bytes: Int, _ body: () throws -> R) rethrows -> R {
        try shared.withCeiling(bytes, body)
    }

    /// Blocks below this size go straight to `malloc`, which keeps them in its own heap.
    static let minimumCachedBytes = 256 << 10

    /// The size class of a request of `bytes`, or nil when it is too small to cache.
    static func sizeClass(_ bytes: Int) -> Int? {
        guard bytes >= minimumCachedBytes else { return nil }
        let top = Int.bitWidth - 1 - bytes.leadingZeroBitCount   // 2^top <= bytes
        let step = 1 << (top - 2)
        return (bytes + step - 1) / step * step
    }

    static func take(_ size: Int) -> UnsafeMutableRawPointer? { shared.take(size) }
    static func give(_ pointer: UnsafeMutableRawPointer, size: Int) { shared.give(pointer, size: size) }
}

/// Freed blocks by size class, least recently freed first, within a byte limit. Blocks are
/// held by address (an integer) so that the state is plainly `Sendable`; `free` runs outside
/// the lock.
final class BlockCache: Sendable {
    private struct State {
        var blocks: [(size: Int, address: UInt)] = []
        var bytes = 0
        var limit: Int
        /// The ceilings of ``TensorMemory/withCacheCeiling(_:_:)`` calls in progress.
        var ceilings: [Int] = []
        /// What the cache may hold now: the limit, or the lowest ceiling in force.
        var effectiveLimit: Int { min(limit, ceilings.min() ?? limit) }
    }

    private let state: PThreadMutex<State>

    init(limit: Int) { state = PThreadMutex(State(limit: limit)) }

    deinit { removeAll() }

    var limit: Int {
        get { state.withLock { $0.limit } }
        set {
            let released = state.withLock { s -> [UInt] in
                s.limit = max(0, newValue)
                return BlockCache.evict(&s)
            }
            BlockCache.release(released)
        }
    }

    var bytes: Int { state.withLock { $0.bytes } }

    /// What the cache may hold now (the limit, or the lowest ceiling in force).
    var effectiveLimit: Int { state.withLock { $0.effectiveLimit } }

    func withCeiling<R>(_ bytes: Int, _ body: () throws -> R) rethrows -> R {
        addCeiling(bytes)
        defer { removeCeiling(bytes) }
        return try body()
    }

    func addCeiling(_ bytes: Int) {
        let released = state.withLock { s -> [UInt] in
            s.ceilings.append(max(0, bytes))
            return BlockCache.evict(&s)
        }
        BlockCache.release(released)
    }

    func removeCeiling(_ bytes: Int) {
        state.withLock { s in
            if let i = s.ceilings.firstIndex(of: max(0, bytes)) { s.ceilings.remove(at: i) }
        }
    }

    func removeAll() {
        let released = state.withLock { s -> [UInt] in
            defer { s.blocks.removeAll(); s.bytes = 0 }
            return s.blocks.map(\.address)
        }
        BlockCache.release(released)
    }

    /// A cached block of exactly `size` bytes, the most recently freed one.
    func take(_ size: Int) -> UnsafeMutableRawPointer? {
        let address = state.withLock { s -> UInt? in
            guard let i = s.blocks.lastIndex(where: { $0.size == size }) else { return nil }
            s.bytes -= size
            return s.blocks.remove(at: i).address
        }
        return address.flatMap { UnsafeMutableRawPointer(bitPattern: $0) }
    }

    /// Keeps `pointer`, a block from `malloc` of `size` bytes, for reuse; frees it (or older
    /// blocks) to stay within the limit.
    func give(_ pointer: UnsafeMutableRawPointer, size: Int) {
        let address = UInt(bitPattern: pointer)
        let released = state.withLock { s -> [UInt] in
            guard size <= s.effectiveLimit else { return [address] }
            s.blocks.append((size, address))
            s.bytes += size
            return BlockCache.evict(&s)
        }
        BlockCache.release(released)
    }

    private static func evict(_ s: inout State) -> [UInt] {
        var released: [UInt] = []
        var drop = 0
        while s.bytes > s.effectiveLimit, drop < s.blocks.count {
            s.bytes -= s.blocks[drop].size
            released.append(s.blocks[drop].address)
            drop += 1
        }
        if drop > 0 { s.blocks.removeFirst(drop) }
        return released
    }

    private static func release(_ addresses: [UInt]) {
        for address in addresses { free(UnsafeMutableRawPointer(bitPattern: address)) }
    }
}
