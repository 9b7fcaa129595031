import Testing
@testable import BlendTensor
import BlendTestSupport

/// The thread counts the property tests force, whatever the machine: odd, prime and larger
/// than any CI machine's core count, so that a split that is wrong on a 16-core desktop fails
/// on a 2-core runner.
let forcedThreadCounts = [1, 2, 3, 4, 7, 8, 16, 33, 64]

/// `body` at each of ``forcedThreadCounts``.
func atEveryThreadCount<T>(_ body: () throws -> T) rethrows -> [(threads: Int, value: T)] {
    try forcedThreadCounts.map { t in (t, try EngineThreads.withCount(t, body)) }
}

/// The GEMM split (BLAS.swift, ``GEMMSplit``): blocks of rows that cover every row once, and
/// products that are bit for bit those of one unsplit OpenBLAS call at every thread count —
/// under whichever kernels OpenBLAS runs (`.ci/run` repeats this suite under each
/// `OPENBLAS_CORETYPE` the CPU can execute).
@Suite struct GEMMSplitTests {
    @Test func rowBlocksCoverEveryRowOnceOnAlignedStarts() {
        for rows in [1, 2, 11, 12, 13, 47, 48, 49, 97, 196, 197, 289, 320, 1025, 4096] {
            for macsPerRow in [1, 1000, 40_000, 1 << 20, 1 << 24] {
                for wanted in [1, 2, 3, 5, 16, 64, 1024] {
                    let blocks = GEMMRowBlocks(rows: rows, macsPerRow: macsPerRow, wanted: wanted)
                    #expect(blocks.count >= 1 && blocks.count <= max(1, wanted))
                    var next = 0
                    for i in 0..<blocks.count {
                        let r = blocks[i]
                        #expect(r.lowerBound == next && !r.isEmpty, "rows \(rows), wanted \(wanted): block \(i) is \(r)")
                        #expect(r.lowerBound % GEMMSplit.rowAlignment == 0)
                        if blocks.count > 1 { #expect(r.count * macsPerRow >= gemmMinimumBlockMACs) }
                        next = r.upperBound
                    }
                    #expect(next == rows, "rows \(rows), macs/row \(macsPerRow), wanted \(wanted): covered up to \(next)")
                }
            }
        }
    }

    /// Odd, prime and 32j+1 extents, products with a single row or column, and depths either
    /// side of OpenBLAS's K blocks (256, 320, 448).
    static let shapes: [(m: Int, n: Int, k: Int)] = [
        (289, 40, 216), (197, 197, 64), (196, 257, 129), (97, 383, 257), (65, 1, 4099), (1025, 2, 1031),
        (49, 127, 449), (61, 5, 8191), (331, 33, 321), (129, 12, 1543), (433, 97, 255), (50, 101, 1000),
    ]

    @Test(arguments: 0..<shapes.count)
    func everySplitIsTheUnsplitProductBitForBit(index: Int) throws {
        let (m, n, k) = Self.shapes[index]
        for (transA, transB, alpha, beta) in [(false, false, 1, 0), (true, false, 0.37, 1), (false, true, 1, -0.5), (true, true, 0.125, 0)]
            as [(Bool, Bool, Float, Float)] {
            let lda = transA ? m : k, ldb = transB ? k : n, ldc = n + 3
            let a = randn([m * k], seed: UInt64(10 * index + 1)).scalars, b = randn([k * n], seed: UInt64(10 * index + 2)).scalars
            let c0 = randn([m * ldc], seed: UInt64(10 * index + 3)).scalars
            func product() -> [Float] {
                var c = c0
                a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                    sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: ap.baseAddress!, lda: lda,
                          b: bp.baseAddress!, ldb: ldb, beta: beta, c: cp.baseAddress!, ldc: ldc)
                } } }
                return c
            }
            var unsplit = c0
            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in unsplit.withUnsafeMutableBufferPointer { cp in
                serialSgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: ap.baseAddress!, lda: lda,
                            b: bp.baseAddress!, ldb: ldb, beta: beta, c: cp.baseAddress!, ldc: ldc)
            } } }
            let reference = Reference.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: Double(alpha), a: a, lda: lda,
                                           b: b, ldb: ldb, beta: Double(beta), c: c0, ldc: ldc)
            // The padding columns between rows are C's own and must not be touched.
            let columns = (0..<m).flatMap { i in (0..<n).map { i * ldc + $0 } }
            let error = Reference.relativeError(columns.map { unsplit[$0] }, columns.map { reference[$0] })
            #expect(error < 1e-5, "\(m)x\(n)x\(k) transA \(transA) transB \(transB): error \(error) against float64")
            for (threads, c) in atEveryThreadCount(product) {
                #expect(sameBits(c, unsplit), "\(m)x\(n)x\(k) transA \(transA) transB \(transB) at \(threads) threads differs from one GEMM")
            }
        }
    }

    @Test func aBatchedProductIsEachItemAlone() throws {
        // Winograd's 36 products and attention's heads: fewer items than threads cut each into
        // rows, more items than threads run whole; either way each is its own lone product.
        let (count, m, n, k) = (5, 197, 61, 257)
        let a = randn([count * m * k], seed: 31).scalars, b = randn([count * k * n], seed: 32).scalars
        var alone = [Float](repeating: 0, count: count * m * n)
        a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in alone.withUnsafeMutableBufferPointer { cp in
            for i in 0..<count {
                serialSgemm(m: m, n: n, k: k, a: ap.baseAddress! + i * m * k, lda: k, b: bp.baseAddress! + i * k * n, ldb: n,
                            c: cp.baseAddress! + i * m * n, ldc: n)
            }
        } } }
        for (threads, batched) in atEveryThreadCount({ () -> [Float] in
            var c = [Float](repeating: .nan, count: count * m * n)
            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                sgemmBatch(count: count, m: m, n: n, k: k, a: ap.baseAddress!, lda: k, strideA: m * k,
                           b: bp.baseAddress!, ldb: n, strideB: k * n, c: cp.baseAddress!, ldc: n, strideC: m * n)
            } } }
            return c
        }) {
            #expect(sameBits(batched, alone), "\(threads) threads")
        }
    }

    @Test func linearAndMatmulGiveEachItemOfTheBatchItsOwnProduct() throws {
        // An item's rows are the same product whatever else is in the batch: the sample-i-only
        // promise of both methods rests on it (under Haswell's kernels, rows of one product
        // round by where they sit in it).
        let w = randn([77, 61], seed: 40), bias = randn([77], seed: 41)
        let batch = randn([5, 13, 61], seed: 42)
        let single = try linear(batch.sliced(3..<4, axis: 0), weight: w, bias: bias)
        for (threads, y) in try atEveryThreadCount({ try linear(batch, weight: w, bias: bias) }) {
            #expect(sameBits(try y.sliced(3..<4, axis: 0).scalars, single.scalars), "linear at \(threads) threads")
        }
        let rows = randn([7, 61], seed: 43)
        let one = try linear(rows.sliced(2..<3, axis: 0), weight: w)
        #expect(sameBits(try linear(rows, weight: w).sliced(2..<3, axis: 0).scalars, one.scalars), "a rank-2 input's rows are items")
        let p = randn([61, 19], seed: 44)
        let alone = try batch.sliced(1..<2, axis: 0).matmul(p)
        #expect(sameBits(try batch.matmul(p).sliced(1..<2, axis: 0).scalars, alone.scalars), "matmul against a shared matrix")
    }

    @Test func linearAndMatmulMatchFloat64ForwardAndBackward() throws {
        let (items, rows, inF, outF) = (3, 97, 65, 129)
        let x = randn([items, rows, inF], seed: 50), w = randn([outF, inF], seed: 51), bias = randn([outF], seed: 52)
        let g = randn([items, rows, outF], seed: 53)
        let xs = x.scalars, ws = w.scalars, gs = g.scalars
        // y = x·wᵀ + b, dx = g·w
        let yRef = Reference.gemm(transA: false, transB: true, m: items * rows, n: outF, k: inF, alpha: 1, a: xs, lda: inF,
                                  b: ws, ldb: inF, beta: 1, c: (0..<(items * rows)).flatMap { _ in bias.scalars }, ldc: outF)
        let dxRef = Reference.gemm(transA: false, transB: false, m: items * rows, n: inF, k: outF, alpha: 1, a: gs, lda: outF,
                                   b: ws, ldb: inF, beta: 0, c: [], ldc: inF)
        let results = try atEveryThreadCount { () -> ([Float], [Float]) in
            let leaf = x.requiringGradient()
            let y = try linear(leaf, weight: w, bias: bias)
            return (y.scalars, try gradients(of: y, withRespectTo: [leaf], seed: g)[0].scalars)
        }
        for (threads, (y, dx)) in results {
            #expect(Reference.relativeError(y, yRef) < 1e-5 && Reference.relativeError(dx, dxRef) < 1e-5, "linear at \(threads) threads")
            #expect(sameBits(y, results[0].value.0) && sameBits(dx, results[0].value.1), "linear at \(threads) threads")
        }
        // matmul, batched operands: dA = g·Bᵀ, dB = Aᵀ·g per item.
        let a = randn([2, 67, 45], seed: 54), b = randn([2, 45, 83], seed: 55), gm = randn([2, 67, 83], seed: 56)
        let matmuls = try atEveryThreadCount { () -> [[Float]] in
            let (la, lb) = (a.requiringGradient(), b.requiringGradient())
            let y = try la.matmul(lb)
            let grads = try gradients(of: y, withRespectTo: [la, lb], seed: gm)
            return [y.scalars, grads[0].scalars, grads[1].scalars]
        }
        for i in 0..<2 {
            let ai = Array(a.scalars[(i * 67 * 45)..<((i + 1) * 67 * 45)]), bi = Array(b.scalars[(i * 45 * 83)..<((i + 1) * 45 * 83)])
            let gi = Array(gm.scalars[(i * 67 * 83)..<((i + 1) * 67 * 83)])
            let refs = [
                Reference.gemm(transA: false, transB: false, m: 67, n: 83, k: 45, alpha: 1, a: ai, lda: 45, b: bi, ldb: 83, beta: 0, c: [], ldc: 83),
                Reference.gemm(transA: false, transB: true, m: 67, n: 45, k: 83, alpha: 1, a: gi, lda: 83, b: bi, ldb: 83, beta: 0, c: [], ldc: 45),
                Reference.gemm(transA: true, transB: false, m: 45, n: 83, k: 67, alpha: 1, a: ai, lda: 45, b: gi, ldb: 83, beta: 0, c: [], ldc: 83),
            ]
            let sizes = [67 * 83, 67 * 45, 45 * 83]
            for (threads, values) in matmuls {
                for j in 0..<3 {
                    let part = Array(values[j][(i * sizes[j])..<((i + 1) * sizes[j])])
                    #expect(Reference.relativeError(part, refs[j]) < 1e-5, "matmul output \(j), item \(i), \(threads) threads")
                    #expect(sameBits(values[j], matmuls[0].value[j]), "matmul output \(j) at \(threads) threads")
                }
            }
        }
    }
}
