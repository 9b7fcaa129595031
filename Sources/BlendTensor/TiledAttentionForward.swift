#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The forward pass of ``tiledAttention(q:k:v:heads:scale:maxScoreElements:)`` for inference:
/// every (batch, head, block of query rows) tile is one task, and the engine's threads take
/// whole tasks, each with its own score buffer and single-threaded GEMMs. A task computes
/// S = α·Q·Kᵀ for its rows, turns each row into e^(S − max) in one vectorised sweep that
/// also sums it, multiplies the unnormalised rows by V and only then divides the `Dv` outputs
/// of each row by its sum (`Dv` ≪ `S` divisions instead of a third sweep over the scores).
/// Blocks hold up to 512 Ki scores (2 MiB, 128 rows of 4096 keys): small enough to stay in
/// cache between the two GEMMs, large enough that the GEMMs do not spend their time re-packing
/// the head's keys and values for every block; never more than `maxScoreElements` per thread.
func tiledAttentionForward(q: Tensor, k: Tensor, v: Tensor, into y: Tensor, batch: Int, queries: Int, keys: Int,
                           heads: Int, headDim: Int, valueDim: Int, alpha: Float, maxScoreElements: Int) {
    // Invariant: the tasks (batch, head, block of rows) depend only on the shape and the budget;
    // a task's arithmetic is its own serial GEMMs, whichever thread takes it.
    let budget = min(maxScoreElements, 1 << 19)
    let rowsPerTask = max(1, min(queries, budget / max(keys, 1)))
    let blocks = (queries + rowsPerTask - 1) / rowsPerTask
    let tasks = batch * heads * blocks
    let hd = heads * headDim, hdv = heads * valueDim
    let qp = q.pointer, kp = k.pointer, vp = v.pointer, yp = y.pointer
    parallelRanges(tasks, grain: 1) { range in
        let scores = TensorStorage(uninitializedCount: rowsPerTask * keys)
        var sums = [Float](repeating: 0, count: rowsPerTask)
        let s = scores.pointer
        for task in range {
            let block = task % blocks, nh = task / blocks
            let n = nh / heads, h = nh % heads
            let row0 = block * rowsPerTask, rows = min(rowsPerTask, queries - row0)
            let qRows = qp + (n * queries + row0) * hd + h * headDim
            let kHead = kp + n * keys * hd + h * headDim
            let vHead = vp + n * keys * hdv + h * valueDim
            let yRows = yp + (n * queries + row0) * hdv + h * valueDim
            serialSgemm(transB: true, m: rows, n: keys, k: headDim, alpha: alpha, a: qRows, lda: hd,
                        b: kHead, ldb: hd, c: s, ldc: keys)
            sums.withUnsafeMutableBufferPointer { sum in
                for r in 0..<rows { sum[r] = expShiftedRowInPlace(s + r * keys, width: keys) }
            }
            serialSgemm(m: rows, n: valueDim, k: keys, a: s, lda: keys, b: vHead, ldb: hdv, c: yRows, ldc: hdv)
            for r in 0..<rows {
                let inv = 1 / sums[r]
                let out = yRows + r * hdv
                for j in 0..<valueDim { out[j] *= inv }
            }
        }
    }
}

/// Replaces `row[0..<width]` by e^(row − max(row)) and returns the sum of the new values
/// (≥ 1 unless the row holds NaN): the C kernel of the CPU's widest ISA, one vectorised sweep
/// for the maximum and one for the exponentials (within 2 ulp of expf, see CBlendKernels.h).
@inline(__always)
func expShiftedRowInPlace(_ row: UnsafeMutablePointer<Float>, width: Int) -> Float {
    kernels.expShiftedRow(row, width)
}
