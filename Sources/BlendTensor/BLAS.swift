#if canImport(Glibc)
import Glibc
#endif
import COpenBLAS

/// OpenBLAS runs single-threaded: the engine owns the cores. Its own thread pool, left to
/// itself, keeps a worker spinning on `sched_yield` after every call while the engine's
/// threads want the same cores (on small models more system time than work). Large GEMMs
/// are split across the engine's threads instead (see ``sgemm``), and small ones run on the
/// calling thread without any hand-off.
private let blasSingleThreaded: Void = openblas_set_num_threads(1)

/// Below this many multiply-adds (≈ 40 µs of work on one core) a GEMM is not split.
let gemmSplitThreshold = 1 << 21

/// Row-major single-precision GEMM: C = alpha·op(A)·op(B) + beta·C.
/// `op(A)` is M×K, `op(B)` is K×N, C is M×N with leading dimension `ldc`.
/// Large products are split into column (or row) blocks computed on the engine's threads.
@inline(__always)
func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
           alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
           b: UnsafePointer<Float>, ldb: Int,
           beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    let threads = engineThreadCount
    guard threads > 1, m * n * k >= gemmSplitThreshold, max(m, n) >= 32 else {
        serialSgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                    b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        return
    }
    // Blocks of C: columns when C is at least as wide as tall (each block reads all of A and a
    // slice of B), rows otherwise. Block edges on multiples of 16 keep the slices aligned.
    let splitColumns = n >= m
    let extent = splitColumns ? n : m
    let parts = min(threads, extent / 16)
    let unit = (extent / parts + 15) / 16 * 16
    parallelFor(parts) { p in
        let lo = p * unit, hi = min(extent, lo + unit)
        guard hi > lo else { return }
        if splitColumns {
            serialSgemm(transA: transA, transB: transB, m: m, n: hi - lo, k: k, alpha: alpha, a: a, lda: lda,
                        b: transB ? b + lo * ldb : b + lo, ldb: ldb, beta: beta, c: c + lo, ldc: ldc)
        } else {
            serialSgemm(transA: transA, transB: transB, m: hi - lo, n: n, k: k, alpha: alpha,
                        a: transA ? a + lo : a + lo * lda, lda: lda, b: b, ldb: ldb,
                        beta: beta, c: c + lo * ldc, ldc: ldc)
        }
    }
}

/// One GEMM on the calling thread (for loops that already run on the engine's threads).
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
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// The number of threads OpenBLAS uses for one call (1: the engine splits large GEMMs itself).
public var blasThreadCount: Int {
    _ = blasSingleThreaded
    return Int(openblas_get_num_threads())
}

/// The CPU kernel family OpenBLAS picked (e.g. "Haswell", "SkylakeX"); `OPENBLAS_CORETYPE` overrides it.
public var blasCoreName: String { String(cString: openblas_get_corename()) }
