#if canImport(Glibc)
import Glibc
#endif
import COpenBLAS

/// OpenBLAS runs single-threaded: the engine owns the cores. Its own thread pool, left to
/// itself, keeps a worker spinning on `sched_yield` after every call while the engine's
/// threads want the same cores (on small models more system time than work). Large GEMMs
/// are split across the engine's threads instead (see ``sgemm``), and small ones run on the
/// calling thread without any hand-off.
/// Before the first BLAS call: the kernel family (``BLASKernels``), then one BLAS thread (the
/// engine splits large GEMMs itself).
private let blasSingleThreaded: Void = {
    _ = BLASKernels.current
    openblas_set_num_threads(1)
}()

/// How the engine splits a GEMM across its threads so that no result depends on the split.
///
/// OpenBLAS computes an element of C with an arithmetic (the order of its sums, FMA or not)
/// that depends on where the element falls in its micro-kernel's tiles and on which algorithm
/// the call's size selects. Measured on 0.3.21 (`GEMMSplitTests`, under every core type a CPU
/// runs):
/// - a product cut into blocks of **rows of C** (OpenBLAS's N, in its column-major view)
///   gives every element bit for bit the unsplit product's value when each block starts on a
///   multiple of 12 rows: Haswell's and Zen's kernel runs 12 of those at a time and rounds
///   the ones after a cut at 4 or 8 differently; the other kernel sets are invariant at 4;
/// - cut into blocks of **columns** (its M), no alignment keeps Haswell's results: its kernel
///   pairs the 16-row halves of a tile in a skewed order that restarts at every call, so the
///   engine never cuts columns;
/// - SkylakeX and Cooperlake switch to other kernels for products of at most 100³ = 10⁶
///   multiply-adds ("small matrix") and, for row-major NN products with α = 1, β = 0, below
///   28·512² ("direct"); those round differently. Blocks are kept above the first
///   (``gemmMinimumBlockMACs``), and every call is made column-major, which never takes the
///   second.
/// So a split never changes a value, and the thread count never changes a result. What the
/// engine cannot make split-invariant it does not split: a product is only ever cut into
/// rows, and products that mix the images of a batch are made one image at a time (linear,
/// matmul, attention, convolutions), so a sample's values do not depend on its batch either.
enum GEMMSplit {
    /// Every block of rows starts on a multiple of this many rows (12 suffices on 0.3.21;
    /// 48 also covers row unrolls of 16 and 24 in other kernels).
    static let rowAlignment = 48
}

/// No block of a split GEMM has fewer multiply-adds than this (2²¹ > 10⁶: above OpenBLAS's
/// small-matrix cut-off; ≈ 20–40 µs of work, well above a hand-off's cost).
let gemmMinimumBlockMACs = 1 << 21

/// Row-major single-precision GEMM: C = alpha·op(A)·op(B) + beta·C.
/// `op(A)` is M×K, `op(B)` is K×N, C is M×N with leading dimension `ldc`.
/// Large products are split into blocks of rows computed on the engine's threads, which never
/// changes a value (``GEMMSplit``).
@inline(__always)
func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
           alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
           b: UnsafePointer<Float>, ldb: Int,
           beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    sgemmBatch(count: 1, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
               a: a, lda: lda, strideA: 0, b: b, ldb: ldb, strideB: 0, beta: beta, c: c, ldc: ldc, strideC: 0)
}

/// `count` independent row-major GEMMs of the same shape, C_i = alpha·op(A_i)·op(B_i) + beta·C_i
/// with A_i = `a + i·strideA` (and likewise B_i, C_i; a stride of 0 shares the operand), shared
/// out among the engine's threads as whole products or as blocks of rows of one (``GEMMSplit``).
/// Every product is computed exactly as a lone ``serialSgemm`` of it would be, whatever the
/// thread count or `count`.
func sgemmBatch(count: Int, transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, strideA: Int,
                b: UnsafePointer<Float>, ldb: Int, strideB: Int,
                beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int) {
    sgemmBatch(count: count, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, lda: lda, ldb: ldb,
               beta: beta, ldc: ldc) { i in (a + i * strideA, b + i * strideB, c + i * strideC) }
}

/// ``sgemmBatch(count:transA:transB:m:n:k:alpha:a:lda:strideA:b:ldb:strideB:beta:c:ldc:strideC:)``
/// with the operands of product `i` given by `operands(i)` (A_i, B_i, C_i).
func sgemmBatch(count: Int, transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                alpha: Float = 1, lda: Int, ldb: Int, beta: Float = 0, ldc: Int,
                operands: (Int) -> (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>)) {
    guard count > 0, m > 0, n > 0 else { return }
    let threads = EngineThreads.count
    // Blocks of rows per product: enough for every thread to have a share when the products
    // are fewer than the threads, never below the alignment or the minimum size.
    let wanted = threads <= count ? 1 : (threads + count - 1) / count
    let rowBlocks = GEMMRowBlocks(rows: m, macsPerRow: n * k, wanted: wanted)
    let tasks = count * rowBlocks.count
    @inline(__always) func run(_ task: Int) {
        let rows = rowBlocks[task % rowBlocks.count]
        let (ai, bi, ci) = operands(task / rowBlocks.count)
        serialSgemm(transA: transA, transB: transB, m: rows.count, n: n, k: k, alpha: alpha,
                    a: transA ? ai + rows.lowerBound : ai + rows.lowerBound * lda, lda: lda,
                    b: bi, ldb: ldb, beta: beta, c: ci + rows.lowerBound * ldc, ldc: ldc)
    }
    parallelFor(tasks) { run($0) }
}

/// The rows of C cut into `count` blocks, each starting on a multiple of
/// ``GEMMSplit/rowAlignment`` and holding at least ``gemmMinimumBlockMACs`` multiply-adds
/// (one block when the product is too small to cut). Depends only on the shape and `wanted`.
struct GEMMRowBlocks {
    let rows: Int
    let count: Int
    private let units: Int

    init(rows: Int, macsPerRow: Int, wanted: Int) {
        self.rows = rows
        let alignment = GEMMSplit.rowAlignment
        units = (rows + alignment - 1) / alignment
        var parts = min(max(wanted, 1), units)
        // The smallest block has ⌊units / parts⌋ units, the last of which may be partial.
        while parts > 1 {
            let smallestRows = min((units / parts) * alignment, rows - (units - units / parts) * alignment)
            if smallestRows > 0 && smallestRows * macsPerRow >= gemmMinimumBlockMACs { break }
            parts -= 1
        }
        count = parts
    }

    /// The rows of block `i`: units `⌊i·units/count⌋ ..< ⌊(i+1)·units/count⌋`, so the blocks
    /// cover `0..<rows` exactly once.
    subscript(i: Int) -> Range<Int> {
        let alignment = GEMMSplit.rowAlignment
        let lo = (i * units / count) * alignment
        let hi = min(rows, ((i + 1) * units / count) * alignment)
        return lo..<hi
    }
}

/// One GEMM on the calling thread (for loops that already run on the engine's threads),
/// row-major as ``sgemm``. It is made as OpenBLAS's column-major product Cᵀ = op(B)ᵀ·op(A)ᵀ,
/// which is what its row-major interface computes too, except that the row-major form may
/// take SkylakeX's "direct" kernel for some sizes, which rounds differently (``GEMMSplit``).
@inline(__always)
func serialSgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                 alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                 b: UnsafePointer<Float>, ldb: Int,
                 beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    if m == 0 || n == 0 { return }
    if k == 0 {
        // BLAS leaves C untouched for k == 0 only when beta == 1; make it explicit.
        for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : c[i * ldc + j] * beta } }
        return
    }
    _ = blasSingleThreaded
    cblas_sgemm(CblasColMajor, transB ? CblasTrans : CblasNoTrans, transA ? CblasTrans : CblasNoTrans,
                Int32(n), Int32(m), Int32(k), alpha, b, Int32(ldb), a, Int32(lda), beta, c, Int32(ldc))
}

/// The number of threads OpenBLAS uses for one call (1: the engine splits large GEMMs itself).
public var blasThreadCount: Int {
    _ = blasSingleThreaded
    return Int(openblas_get_num_threads())
}

/// OpenBLAS's build, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Cooperlake MAX_THREADS=64"
/// (``GEMMSplit``'s rules were measured on 0.3.21; `GEMMSplitTests` checks them on the one installed).
public var blasConfiguration: String { String(cString: openblas_get_config()) }

/// The CPU kernel family the GEMMs run on (e.g. "Haswell", "SkylakeX"): OpenBLAS's choice, or the
/// one ``BLASKernels`` replaced it with; `OPENBLAS_CORETYPE` overrides both.
public var blasCoreName: String {
    _ = blasSingleThreaded
    return String(cString: openblas_get_corename())
}
