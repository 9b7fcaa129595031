// Winograd's minimal filtering F(4×4, 3×3) for stride-1 3×3 convolutions (Lavin & Gray, 2016,
// "Fast Algorithms for Convolutional Neural Networks"), with the interpolation points
// 0, 1, −1, ½, −2 and ∞ that Barabasz, Anderson, Soodhalter & Gregg (2020, "Error analysis and
// improving the accuracy of Winograd convolution for deep neural networks", TOMS 46(4)) found
// the most accurate for this size in fp32.
//
// The matrices follow from the points by the Toom–Cook construction (finite point p gives
// Aᵀ's column (1, p, p², p³), G's row (1, p, p²)/N(p) with N(p) = Π_{q≠p}(p − q), and Bᵀ's row
// the coefficients of Π_{q≠p}(x − q); ∞ gives (0, 0, 0, 1), (0, 0, 1) and Π_q(x − q)):
//
//   Aᵀ = [[1, 1,  1, 1,   1,  0],      G = [[ 1,      0,     0    ],
//         [0, 1, −1, ½,  −2,  0],           [ 1/3,    1/3,   1/3  ],
//         [0, 1,  1, ¼,   4,  0],           [−1/3,    1/3,  −1/3  ],
//         [0, 1, −1, ⅛,  −8,  1]]           [−16/15, −8/15, −4/15 ],
//                                           [ 1/15,  −2/15,  4/15 ],
//                                           [ 0,      0,     1    ]]
//   Bᵀ = [[1, −3/2, −2,    3/2,  1,   0],
//         [0, −1,    1/2,  5/2,  1,   0],
//         [0,  1,   −5/2,  1/2,  1,   0],
//         [0, −2,   −1,    2,    1,   0],
//         [0,  1/2, −1,   −1/2,  1,   0],
//         [0,  1,   −3/2, −2,    3/2, 1]]
//
// so that the 4 outputs of a 6-sample row d correlated with a 3-tap g are Aᵀ·[(G·g) ⊙ (Bᵀ·d)],
// and in 2-D Y = Aᵀ·[(G·g·Gᵀ) ⊙ (Bᵀ·d·B)]·A.

/// The F(4×4, 3×3) filter transform U = G·g·Gᵀ of a 3×3 kernel (G above), one `[out, in]`
/// matrix per element of the 6×6 transformed tile (`[36, out, in]`, 4× the kernel), computed
/// in double precision from the exact fractions and rounded once. Computed for each call by
/// default; kept with the weight under ``TensorStorage/DerivedKey/winogradF4Filter(out:in:)``
/// with ``WeightTransformPolicy/kept``.
func winogradF4Filter(_ weight: Tensor, outChannels co: Int, inChannels ci: Int) -> TensorStorage {
    let pairs = co * ci
    return weightTransform(weight, .winogradF4Filter(out: co, in: ci), count: 36 * pairs) { up in
        let w = weight.pointer
        // Four input channels at a time, one per lane (computed per call by default, so
        // this runs in every forward and backward: ~4 % of a guided step when it went one
        // kernel at a time). Each lane does exactly the arithmetic of one kernel alone.
        parallelFor(co, grain: 4) { o in
            var i = 0
            while i < ci {
                let lanes = min(4, ci - i)
                let k = w + (o * ci + i) * 9
                @inline(__always) func tap(_ t: Int) -> SIMD4<Double> {
                    var v = SIMD4<Double>()
                    for l in 0..<lanes { v[l] = Double(k[9 * l + t]) }
                    return v
                }
                // G·k, column by column of k: c_v.a = (G·k)[a][v].
                let c0 = gTimes(tap(0), tap(3), tap(6))
                let c1 = gTimes(tap(1), tap(4), tap(7))
                let c2 = gTimes(tap(2), tap(5), tap(8))
                let q = up + o * ci + i
                @inline(__always) func store(_ a: Int, _ b: Int, _ value: SIMD4<Double>) {
                    let dst = q + (6 * a + b) * pairs
                    let f = SIMD4<Float>(value)
                    if lanes == 4 {
                        UnsafeMutableRawPointer(dst).storeBytes(of: f, as: SIMD4<Float>.self)
                    } else {
                        for l in 0..<lanes { dst[l] = f[l] }
                    }
                }
                @inline(__always) func storeRow(_ a: Int, _ x0: SIMD4<Double>, _ x1: SIMD4<Double>, _ x2: SIMD4<Double>) {
                    // Row a of U = (G·k)·Gᵀ: G applied to row a of G·k.
                    let u = gTimes(x0, x1, x2)
                    store(a, 0, u.0); store(a, 1, u.1); store(a, 2, u.2)
                    store(a, 3, u.3); store(a, 4, u.4); store(a, 5, u.5)
                }
                storeRow(0, c0.0, c1.0, c2.0)
                storeRow(1, c0.1, c1.1, c2.1)
                storeRow(2, c0.2, c1.2, c2.2)
                storeRow(3, c0.3, c1.3, c2.3)
                storeRow(4, c0.4, c1.4, c2.4)
                storeRow(5, c0.5, c1.5, c2.5)
                i += lanes
            }
        }
    }
}

/// G·(x0, x1, x2) for the rows of G above, lane by lane, in double precision (the filter
/// transform is rounded to Float once, at the end).
@inline(__always)
private func gTimes<V: SIMD>(_ x0: V, _ x1: V, _ x2: V) -> (V, V, V, V, V, V) where V.Scalar == Double {
    (x0,
     (x0 + x1 + x2) / 3,
     (x1 - x0 - x2) / 3,
     -(16 * x0 + 8 * x1 + 4 * x2) / 15,
     (x0 - 2 * x1 + 4 * x2) / 15,
     x2)
}

typealias Six = (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>)
typealias Four = (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>)

/// Bᵀ·d for one column of six samples (eight tiles at once, one per lane).
@inline(__always)
private func inputTransform(_ d: Six) -> Six {
    let (d0, d1, d2, d3, d4, d5) = d
    return (d0 - 1.5 * d1 - 2 * d2 + 1.5 * d3 + d4,
            d4 - d1 + 0.5 * d2 + 2.5 * d3,
            d4 + d1 - 2.5 * d2 + 0.5 * d3,
            d4 - 2 * d1 - d2 + 2 * d3,
            d4 + 0.5 * d1 - d2 - 0.5 * d3,
            d5 + d1 - 1.5 * d2 - 2 * d3 + 1.5 * d4)
}

/// Aᵀ·m for one column of six products.
@inline(__always)
private func outputTransform(_ m: Six) -> Four {
    let (m0, m1, m2, m3, m4, m5) = m
    let sum = m1 + m2, difference = m1 - m2
    return (m0 + sum + m3 + m4,
            difference + 0.5 * m3 - 2 * m4,
            sum + 0.25 * m3 + 4 * m4,
            difference + 0.125 * m3 - 8 * m4 + m5)
}

/// A stride-1 3×3 convolution of one image by F(4×4, 3×3): each 4×4 block of outputs comes
/// from a 6×6 input patch with 36 multiplications per channel pair instead of 144 (2.25 per
/// output; F(2×2, 3×3): 4). The 36 products are 36 GEMMs `U[e] · V[e]` (U: transformed filters
/// `[out, in]` from ``winogradF4Filter(_:outChannels:inChannels:)``; V: transformed patches
/// `[in, tiles]`) shared out whole among the engine's threads. The input and output transforms
/// run on eight tiles at a time (SIMD lanes). With `adjoint` the kernel is flipped and
/// transposed (the input gradient): a correlation with the flipped kernel is, tile by tile,
/// the reversed correlation of the reversed patch (y = J·Aᵀ[U ⊙ Bᵀ·J·d·J]·A·J in 2-D), so the
/// stored transform serves, transposed, with the patch and the outputs read in reverse order —
/// no second transform. The input rows a band of tile rows reads are copied zero-padded (no
/// padded copy of the whole image); outputs beyond the image (sizes not multiple of 4) are
/// computed and dropped. With `accumulate`, results are added to `output`.
func winogradF4Convolution(_ input: UnsafeMutablePointer<Float>, channels: Int, height: Int, width: Int,
                           padH: Int, padW: Int, filter: UnsafeMutablePointer<Float>, adjoint: Bool,
                           outChannels: Int, accumulate: Bool, into output: UnsafeMutablePointer<Float>) {
    let ci = channels, co = outChannels
    let outH = height + 2 * padH - 2, outW = width + 2 * padW - 2
    let tilesY = (outH + 3) / 4, tilesX = (outW + 3) / 4
    let pairs = co * ci

    // Invariant: bands of tile rows by shape alone, covering every tile once; the transforms are
    // per channel (input) or per output channel (output), so threads never share an element.
    let rowsPerChunk = max(1, min(tilesY, 1024 / max(tilesX, 1)))
    let maxTiles = rowsPerChunk * tilesX
    // A band of 4·rows + 2 padded rows per channel; its rows are 4·tilesX + 2 wide, plus slack
    // for the last eight-tile load (which reads up to two floats past a row) and whole tiles.
    let pw = 4 * tilesX + 4, bandRows = 4 * rowsPerChunk + 2, bandPlane = bandRows * pw
    let band = TensorStorage(uninitializedCount: ci * bandPlane + 32)
    let v = TensorStorage(uninitializedCount: 36 * ci * maxTiles)
    let m = TensorStorage(uninitializedCount: 36 * co * maxTiles)
    let bp = band.pointer, vp = v.pointer, mp = m.pointer
    var tileRow0 = 0
    while tileRow0 < tilesY {
        let chunkRows = min(rowsPerChunk, tilesY - tileRow0)
        let tiles = chunkRows * tilesX
        parallelFor(ci, grain: 2) { c in
            let plane = bp + c * bandPlane, src = input + c * height * width
            fillWinogradBand(plane, rows: 4 * chunkRows + 2, rowWidth: pw, fromInputRow: 4 * tileRow0 - padH,
                             of: src, height: height, width: width, padW: padW)
            let stride = ci * tiles
            for row in 0..<chunkRows {
                var tx = 0
                while tx < tilesX {
                    let lanes = min(8, tilesX - tx)
                    // The patch rows of eight tiles, each as its six columns (one lane per tile).
                    @inline(__always) func patchRow(_ r: Int) -> Six {
                        let p = plane + (4 * row + r) * pw + 4 * tx
                        if lanes == 8 {
                            // Patches start every fourth column: lanes of stride 4 in 16-wide loads.
                            let raw = UnsafeRawPointer(p)
                            let a = raw.loadUnaligned(as: SIMD16<Float>.self)
                            let b = raw.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self)
                            let c = raw.loadUnaligned(fromByteOffset: 16, as: SIMD16<Float>.self)
                            let d = raw.loadUnaligned(fromByteOffset: 80, as: SIMD16<Float>.self)
                            let ae = a.evenHalf, ao = a.oddHalf, be = b.evenHalf, bo = b.oddHalf
                            let ce = c.evenHalf, co = c.oddHalf, de = d.evenHalf, dof = d.oddHalf
                            return (SIMD8(lowHalf: ae.evenHalf, highHalf: be.evenHalf),
                                    SIMD8(lowHalf: ao.evenHalf, highHalf: bo.evenHalf),
                                    SIMD8(lowHalf: ae.oddHalf, highHalf: be.oddHalf),
                                    SIMD8(lowHalf: ao.oddHalf, highHalf: bo.oddHalf),
                                    SIMD8(lowHalf: ce.evenHalf, highHalf: de.evenHalf),
                                    SIMD8(lowHalf: co.evenHalf, highHalf: dof.evenHalf))
                        }
                        var s: Six = (.zero, .zero, .zero, .zero, .zero, .zero)
                        for k in 0..<lanes {
                            let q = p + 4 * k
                            s.0[k] = q[0]; s.1[k] = q[1]; s.2[k] = q[2]
                            s.3[k] = q[3]; s.4[k] = q[4]; s.5[k] = q[5]
                        }
                        return s
                    }
                    @inline(__always) func reversed(_ s: Six) -> Six { (s.5, s.4, s.3, s.2, s.1, s.0) }
                    var d0 = patchRow(0), d1 = patchRow(1), d2 = patchRow(2)
                    var d3 = patchRow(3), d4 = patchRow(4), d5 = patchRow(5)
                    if adjoint {
                        (d0, d1, d2, d3, d4, d5) = (reversed(d5), reversed(d4), reversed(d3),
                                                    reversed(d2), reversed(d1), reversed(d0))
                    }
                    // Bᵀ·d column by column, then each row of the result times B.
                    let c0 = inputTransform((d0.0, d1.0, d2.0, d3.0, d4.0, d5.0))
                    let c1 = inputTransform((d0.1, d1.1, d2.1, d3.1, d4.1, d5.1))
                    let c2 = inputTransform((d0.2, d1.2, d2.2, d3.2, d4.2, d5.2))
                    let c3 = inputTransform((d0.3, d1.3, d2.3, d3.3, d4.3, d5.3))
                    let c4 = inputTransform((d0.4, d1.4, d2.4, d3.4, d4.4, d5.4))
                    let c5 = inputTransform((d0.5, d1.5, d2.5, d3.5, d4.5, d5.5))
                    let t = row * tilesX + tx
                    @inline(__always) func store(_ r: Int, _ w: Six) {
                        let q = vp + 6 * r * stride + c * tiles + t
                        if lanes == 8 {
                            let raw = UnsafeMutableRawPointer(q)
                            raw.storeBytes(of: w.0, as: SIMD8<Float>.self)
                            raw.storeBytes(of: w.1, toByteOffset: stride * 4, as: SIMD8<Float>.self)
                            raw.storeBytes(of: w.2, toByteOffset: 2 * stride * 4, as: SIMD8<Float>.self)
                            raw.storeBytes(of: w.3, toByteOffset: 3 * stride * 4, as: SIMD8<Float>.self)
                            raw.storeBytes(of: w.4, toByteOffset: 4 * stride * 4, as: SIMD8<Float>.self)
                            raw.storeBytes(of: w.5, toByteOffset: 5 * stride * 4, as: SIMD8<Float>.self)
                        } else {
                            for k in 0..<lanes {
                                q[k] = w.0[k]; q[stride + k] = w.1[k]; q[2 * stride + k] = w.2[k]
                                q[3 * stride + k] = w.3[k]; q[4 * stride + k] = w.4[k]; q[5 * stride + k] = w.5[k]
                            }
                        }
                    }
                    store(0, inputTransform((c0.0, c1.0, c2.0, c3.0, c4.0, c5.0)))
                    store(1, inputTransform((c0.1, c1.1, c2.1, c3.1, c4.1, c5.1)))
                    store(2, inputTransform((c0.2, c1.2, c2.2, c3.2, c4.2, c5.2)))
                    store(3, inputTransform((c0.3, c1.3, c2.3, c3.3, c4.3, c5.3)))
                    store(4, inputTransform((c0.4, c1.4, c2.4, c3.4, c4.4, c5.4)))
                    store(5, inputTransform((c0.5, c1.5, c2.5, c3.5, c4.5, c5.5)))
                    tx += lanes
                }
            }
        }
        // The 36 products, each its own item of a batched GEMM (whole, or cut into rows when
        // there are more threads than products).
        sgemmBatch(count: 36, transA: adjoint, m: co, n: tiles, k: ci, a: filter, lda: adjoint ? co : ci, strideA: pairs,
                   b: vp, ldb: tiles, strideB: ci * tiles, c: mp, ldc: tiles, strideC: co * tiles)
        // Output transform Y = Aᵀ·M·A, eight tiles of a tile row at a time.
        parallelFor(co, grain: 2) { o in
            let out = output + o * outH * outW
            let stride = co * tiles
            for row in 0..<chunkRows {
                let oy = 4 * (tileRow0 + row), rows = min(4, outH - oy)
                var tx = 0
                while tx < tilesX {
                    let lanes = min(8, tilesX - tx)
                    let base = mp + o * tiles + row * tilesX + tx
                    @inline(__always) func product(_ e: Int) -> SIMD8<Float> {
                        if lanes == 8 { return UnsafeRawPointer(base + e * stride).loadUnaligned(as: SIMD8<Float>.self) }
                        var s = SIMD8<Float>.zero
                        for k in 0..<lanes { s[k] = base[e * stride + k] }
                        return s
                    }
                    // Aᵀ·M column by column, then each row of the result times A.
                    @inline(__always) func column(_ b: Int) -> Four {
                        outputTransform((product(b), product(6 + b), product(12 + b), product(18 + b),
                                         product(24 + b), product(30 + b)))
                    }
                    let k0 = column(0), k1 = column(1), k2 = column(2), k3 = column(3), k4 = column(4), k5 = column(5)
                    var y0 = outputTransform((k0.0, k1.0, k2.0, k3.0, k4.0, k5.0))
                    var y1 = outputTransform((k0.1, k1.1, k2.1, k3.1, k4.1, k5.1))
                    var y2 = outputTransform((k0.2, k1.2, k2.2, k3.2, k4.2, k5.2))
                    var y3 = outputTransform((k0.3, k1.3, k2.3, k3.3, k4.3, k5.3))
                    if adjoint {
                        // The outputs of the reversed patch, reversed back.
                        (y0, y1, y2, y3) = ((y3.3, y3.2, y3.1, y3.0), (y2.3, y2.2, y2.1, y2.0),
                                            (y1.3, y1.2, y1.1, y1.0), (y0.3, y0.2, y0.1, y0.0))
                    }
                    @inline(__always) func write(_ i: Int, _ y: Four) {
                        guard i < rows else { return }
                        let line = out + (oy + i) * outW
                        for k in 0..<lanes {
                            let ox = 4 * (tx + k), q = line + ox
                            let count = min(4, outW - ox)
                            if accumulate {
                                q[0] += y.0[k]
                                if count > 1 { q[1] += y.1[k] }
                                if count > 2 { q[2] += y.2[k] }
                                if count > 3 { q[3] += y.3[k] }
                            } else {
                                q[0] = y.0[k]
                                if count > 1 { q[1] = y.1[k] }
                                if count > 2 { q[2] = y.2[k] }
                                if count > 3 { q[3] = y.3[k] }
                            }
                        }
                    }
                    write(0, y0)
                    write(1, y1)
                    write(2, y2)
                    write(3, y3)
                    tx += lanes
                }
            }
        }
        tileRow0 += chunkRows
    }
}
