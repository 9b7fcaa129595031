import COpenBLAS

/// Row-major single-precision GEMM: C = alpha·op(A)·op(B) + beta·C.
/// `op(A)` is M×K, `op(B)` is K×N, C is M×N with leading dimension `ldc`.
@inline(__always)
func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
           alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
           b: UnsafePointer<Float>, ldb: Int,
           beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    if m == 0 || n == 0 { return }
    if k == 0 {
        // BLAS leaves C untouched for k == 0 only when beta == 1; make it explicit.
        for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } }
        return
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// The number of threads OpenBLAS uses for one call.
public var blasThreadCount: Int {
    get { Int(openblas_get_num_threads()) }
}

/// The CPU kernel family OpenBLAS picked (e.g. "Haswell", "SkylakeX"); `OPENBLAS_CORETYPE` overrides it.
public var blasCoreName: String { String(cString: openblas_get_corename()) }
