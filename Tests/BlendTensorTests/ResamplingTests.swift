import Testing
@testable import BlendTensor
import BlendTestSupport

/// Normalized coordinates of the pixel centres of an axis of `size` pixels.
func identityCoordinates(_ size: Int, alignCorners: Bool) -> [Float] {
    (0..<size).map { i in
        alignCorners ? (size > 1 ? 2 * Float(i) / Float(size - 1) - 1 : 0) : (2 * Float(i) + 1) / Float(size) - 1
    }
}

/// A grid `[n, height, width, 2]` whose point (i, j) is `(xs[j], ys[i])` for every batch item.
func separableGrid(n: Int, xs: [Float], ys: [Float]) -> Tensor {
    var values: [Float] = []
    for _ in 0..<n {
        for y in ys { for x in xs { values += [x, y] } }
    }
    return try! Tensor(shape: [n, ys.count, xs.count, 2], scalars: values)
}

/// Two fixed homographies (output -> source pixels): small rotations, translations by
/// fractions of a pixel and a mild perspective, so sample points fall between pixels.
let testHomographies = try! Tensor(shape: [2, 3, 3], scalars: [
    0.995, -0.0998, 0.45, 0.0998, 0.995, -0.21, 0.012, -0.009, 1.0,
    0.989, 0.149, -0.33, -0.149, 0.989, 0.37, -0.008, 0.011, 1.02,
])

@Suite struct ResamplingTests {
    @Test func upsampleNearestExactValues() throws {
        let x = try Tensor(shape: [1, 1, 2, 2], scalars: [1, 2, 3, 4])
        let y = try upsampleNearest2x(x)
        #expect(y.shape == [1, 1, 4, 4])
        expectClose(y, [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4])
        // Planes stay separate.
        let planes = try Tensor(shape: [2, 1, 1, 1], scalars: [5, 7])
        expectClose(try upsampleNearest2x(planes), [5, 5, 5, 5, 7, 7, 7, 7])
        // Each input pixel receives the sum of its 2x2 block's gradient.
        let leaf = x.requiringGradient()
        let seed = try Tensor(shape: [1, 1, 4, 4], scalars: (0..<16).map(Float.init))
        let g = try gradients(of: upsampleNearest2x(leaf), withRespectTo: [leaf], seed: seed)[0]
        expectClose(g, [0 + 1 + 4 + 5, 2 + 3 + 6 + 7, 8 + 9 + 12 + 13, 10 + 11 + 14 + 15])
    }

    @Test func resizeBilinearExactValues() throws {
        let x = try Tensor(shape: [1, 1, 2, 2], scalars: [0, 1, 2, 3])
        // align_corners=False, 2 -> 4: scale 1/2, src = (d + 0.5)/2 - 0.5 = -0.25 (clamped to 0),
        // 0.25, 0.75, 1.25 (index 1, whose neighbour is past the end, so the value of 1).
        // Per axis the positions are 0, 0.25, 0.75, 1, and the image is 2·row + column.
        expectClose(try resizeBilinear(x, height: 4, width: 4), [
            0, 0.25, 0.75, 1,
            0.5, 0.75, 1.25, 1.5,
            1.5, 1.75, 2.25, 2.5,
            2, 2.25, 2.75, 3,
        ])
        // align_corners=True, 2 -> 4: src = d·(2-1)/(4-1) = 0, 1/3, 2/3, 1.
        let third: Float = 1.0 / 3
        expectClose(try resizeBilinear(x, height: 4, width: 4, alignCorners: true), [
            0, third, 2 * third, 1,
            2 * third, 1, 4 * third, 5 * third,
            4 * third, 5 * third, 2, 7 * third,
            2, 7 * third, 8 * third, 3,
        ])
        // Downsampling the ramp 0 1 2 3 to 3 samples reads the ramp at the source positions:
        // align_corners=False: src = (d + 0.5)·4/3 - 0.5 = 1/6, 3/2, 17/6;
        // align_corners=True: src = d·3/2 = 0, 1.5, 3.
        let ramp = try Tensor(shape: [1, 1, 1, 4], scalars: [0, 1, 2, 3])
        expectClose(try resizeBilinear(ramp, height: 1, width: 3), [1.0 / 6, 1.5, 17.0 / 6])
        expectClose(try resizeBilinear(ramp, height: 1, width: 3, alignCorners: true), [0, 1.5, 3])
        // To one sample: align_corners=True takes the first pixel, False the centre (src 1.5).
        expectClose(try resizeBilinear(ramp, height: 1, width: 1, alignCorners: true), [0])
        expectClose(try resizeBilinear(ramp, height: 1, width: 1), [1.5])
        // Same size is the identity in both modes.
        expectClose(try resizeBilinear(piDigits, height: 3, width: 4), piDigits.scalars)
        expectClose(try resizeBilinear(piDigits, height: 3, width: 4, alignCorners: true), piDigits.scalars)
    }

    @Test func resizeBilinearMatchesPyTorch() throws {
        // F.interpolate(pi, size=..., mode="bilinear", align_corners=..., antialias=False), PyTorch 2.x.
        expectClose(try resizeBilinear(piDigits, height: 5, width: 7), [
            3.0, 2.285714, 1.142857, 2.5, 3.785714, 2.071428, 1.0,
            3.8, 3.942857, 4.171429, 3.7, 3.185714, 3.071429, 3.0,
            5.0, 6.428572, 8.714286, 5.499999, 2.285715, 4.571429, 6.0,
            5.0, 5.142857, 5.371428, 4.599999, 4.042858, 5.985715, 7.2,
            5.0, 4.285714, 3.142857, 4.0, 5.214286, 6.928572, 8.0,
        ])
        expectClose(try resizeBilinear(piDigits, height: 2, width: 3), [3.416667, 3.25, 2.458333, 4.916667, 4.375, 6.958334])
        expectClose(try resizeBilinear(piDigits, height: 5, width: 7, alignCorners: true), [
            3.0, 2.0, 1.0, 2.5, 4.0, 2.5, 1.0,
            4.0, 4.5, 5.0, 4.0, 3.0, 3.25, 3.5,
            5.0, 7.0, 9.0, 5.5, 2.0, 4.0, 6.0,
            5.0, 5.5, 6.0, 4.75, 3.5, 5.25, 7.0,
            5.0, 4.0, 3.0, 4.0, 5.0, 6.5, 8.0,
        ])
        expectClose(try resizeBilinear(piDigits, height: 2, width: 3, alignCorners: true), [3.0, 2.5, 1.0, 5.0, 4.0, 8.0])
    }

    @Test func gridSampleIdentityReturnsInput() throws {
        let x = randn([2, 3, 3, 4], seed: 41)
        for align in [false, true] {
            let grid = separableGrid(n: 2, xs: identityCoordinates(4, alignCorners: align),
                                     ys: identityCoordinates(3, alignCorners: align))
            let y = try gridSample(x, grid: grid, alignCorners: align)
            #expect(y.shape == [2, 3, 3, 4])
            expectClose(y, x.scalars, tolerance: 1e-6)
        }
    }

    @Test func gridSampleBorderAndTranslation() throws {
        // Points outside [-1, 1] clip to the border: (5, -3) -> top right, (-2, 2) -> bottom
        // left, (1.5, 1.5) -> bottom right, (-1.5, -7) -> top left; (0, 5) -> the middle of
        // the bottom row, halfway between 3 and 5 in both modes (x = 1.5 in pixels).
        let grid = try Tensor(shape: [1, 1, 5, 2], scalars: [5, -3, -2, 2, 1.5, 1.5, -1.5, -7, 0, 5])
        for align in [false, true] {
            expectClose(try gridSample(piDigits, grid: grid, alignCorners: align), [1, 5, 8, 3, 4])
        }
        // A shift by one pixel to the right: output (i, j) reads source (i, j + 1); the last
        // column repeats the border.
        let shifted: [Float] = [1, 4, 1, 1, 9, 2, 6, 6, 3, 5, 8, 8]
        for align in [false, true] {
            let step: Float = align ? 2.0 / 3 : 2.0 / 4
            let xs = identityCoordinates(4, alignCorners: align).map { $0 + step }
            let grid = separableGrid(n: 1, xs: xs, ys: identityCoordinates(3, alignCorners: align))
            expectClose(try gridSample(piDigits, grid: grid, alignCorners: align), shifted)
        }
        let translate = try Tensor(shape: [1, 3, 3], scalars: [1, 0, 1, 0, 1, 0, 0, 0, 1])
        expectClose(try warpPerspective(piDigits, homographies: translate), shifted)
    }

    @Test func gridSampleMatchesPyTorch() throws {
        let grid = try Tensor(shape: [1, 2, 3, 2], scalars: [-0.9, -0.8, 0.3, 0.1, 0.77, -0.45,
                                                              1.4, 0.2, -0.2, -1.6, 0.05, 0.95])
        // F.grid_sample(pi, grid, "bilinear", "border", align_corners=...), PyTorch 2.x.
        // By hand for the first point with align_corners=True: x = 0.1·1.5 = 0.15,
        // y = 0.2·1 = 0.2; rows (3·0.85 + 1·0.15) = 2.7 and (5·0.85 + 9·0.15) = 5.6;
        // 2.7·0.8 + 5.6·0.2 = 3.28.
        expectClose(try gridSample(piDigits, grid: grid, alignCorners: false), [3.0, 2.835, 2.625, 6.6, 1.3, 4.2])
        expectClose(try gridSample(piDigits, grid: grid, alignCorners: true), [3.28, 2.605, 3.45675, 6.4, 1.6, 4.19125])
        // The gradient of the sum with respect to the image (PyTorch's x.grad).
        let leaf = piDigits.requiringGradient()
        let g = try gradients(of: gridSample(leaf, grid: grid, alignCorners: false), withRespectTo: [leaf])[0]
        expectClose(g, [1.0, 0.9, 0.1, 0.675, 0.0, 0.0, 0.765, 1.11, 0.0, 0.4, 0.735, 0.315])
    }

    @Test func gridSampleZerosPaddingMatchesPyTorch() throws {
        let grid = try Tensor(shape: [1, 2, 3, 2], scalars: [-0.9, -0.8, 0.3, 0.1, 0.77, -0.45,
                                                              1.4, 0.2, -0.2, -1.6, 0.05, 0.95])
        // F.grid_sample(pi, grid, "bilinear", "zeros", align_corners=...), PyTorch 2.x: points
        // beyond the edge fade towards 0 instead of repeating the border.
        expectClose(try gridSample(piDigits, grid: grid, alignCorners: false, padding: .zeros),
                    [1.68, 2.835, 2.52, 0, 0, 2.414999])
        expectClose(try gridSample(piDigits, grid: grid, alignCorners: true, padding: .zeros),
                    [3.28, 2.605, 3.45675, 2.559999, 0.64, 4.19125])
        let leaf = piDigits.requiringGradient()
        let g = try gradients(of: gridSample(leaf, grid: grid, alignCorners: false, padding: .zeros), withRespectTo: [leaf])[0]
        expectClose(g, [0.56, 0, 0, 0.648, 0, 0, 0.765, 0.397, 0, 0.23, 0.48, 0.015])
        let x = randn([2, 3, 5, 6], seed: 77)
        var rng = SeededGenerator(seed: 78)
        let points = try Tensor.randomUniform([2, 4, 5, 2], in: -1.3..<1.3, using: &rng)
        try checkGradients([x]) { try gridSample($0[0], grid: points, alignCorners: false, padding: .zeros) }
    }

    @Test func transformGrids() throws {
        // The identity homography gives the align_corners=True identity grid.
        let eye = try Tensor(shape: [1, 3, 3], scalars: [1, 0, 0, 0, 1, 0, 0, 0, 1])
        let identity = separableGrid(n: 1, xs: identityCoordinates(4, alignCorners: true),
                                     ys: identityCoordinates(3, alignCorners: true))
        expectClose(try perspectiveGrid(homographies: eye, height: 3, width: 4), identity.scalars)
        // Perspective by hand: H = [[1,0,0],[0,1,0],[0.1,0,1]] sends pixel (u, v) = (2, 1) to
        // (2, 1) / 1.2 = (5/3, 5/6); normalized 2·(5/3)/3 - 1 = 1/9 and 2·(5/6)/2 - 1 = -1/6.
        let tilt = try Tensor(shape: [1, 3, 3], scalars: [1, 0, 0, 0, 1, 0, 0.1, 0, 1])
        let tilted = try perspectiveGrid(homographies: tilt, height: 3, width: 4)
        #expect(tilted.shape == [1, 3, 4, 2])
        expectClose(try tilted.sliced(1..<2, axis: 1).sliced(2..<3, axis: 2), [1.0 / 9, -1.0 / 6])
        // An affine map is the homography with last row (0, 0, 1).
        let affine = try Tensor(shape: [2, 2, 3], scalars: [0.9, -0.2, 0.7, 0.3, 1.1, -0.4,
                                                            1, 0, 0.5, 0, 1, 0.25])
        let full = try Tensor(shape: [2, 3, 3], scalars: [0.9, -0.2, 0.7, 0.3, 1.1, -0.4, 0, 0, 1,
                                                          1, 0, 0.5, 0, 1, 0.25, 0, 0, 1])
        expectClose(try affineGrid(matrices: affine, height: 5, width: 6),
                    try perspectiveGrid(homographies: full, height: 5, width: 6).scalars)
        // A quarter turn about the centre of a 3x3 image: source = (2 - v, u), so the output
        // at (u, v) is the ramp value 3u + 2 - v.
        let turn = try Tensor(shape: [1, 2, 3], scalars: [0, -1, 2, 1, 0, 0])
        expectClose(try warpAffine(rampImage(3), matrices: turn), [2, 5, 8, 1, 4, 7, 0, 3, 6])
    }

    @Test func warpPerspectiveMatchesPyTorch() throws {
        // The grid built in float64 with the same convention in PyTorch, then
        // F.grid_sample(pi, grid, "bilinear", "border", align_corners=True).
        let h = try Tensor(shape: [1, 3, 3], scalars: [0.95, -0.12, 0.4, 0.1, 1.05, -0.3, 0.02, -0.015, 1.0])
        expectClose(try perspectiveGrid(homographies: h, height: 3, width: 4), [
            -0.733333, -1.3, -0.117647, -1.196078, 0.474359, -1.096154, 1.044025, -1.0,
            -0.810491, -0.238579, -0.18408, -0.154229, 0.417886, -0.073171, 0.99681, 0.004785,
            -0.890034, 0.85567, -0.252525, 0.919192, 0.359736, 0.980198, 0.94822, 1.038835,
        ])
        expectClose(try warpPerspective(piDigits, homographies: h),
                    [2.2, 1.970588, 3.365384, 1.0, 5.252983, 6.544293, 2.588697, 5.990454, 4.812945, 3.639119, 5.06019, 7.76699])
    }

    @Test func resamplingGradients() throws {
        let x = randn([2, 3, 5, 6], seed: 42)
        try checkGradients([x]) { try upsampleNearest2x($0[0]) }
        for align in [false, true] {
            try checkGradients([x]) { try resizeBilinear($0[0], height: 7, width: 9, alignCorners: align) }
            try checkGradients([x]) { try resizeBilinear($0[0], height: 3, width: 4, alignCorners: align) }
            // Points inside and beyond [-1, 1] (border clipping).
            let grid = uniform([2, 4, 7, 2], seed: 43, in: -1.2..<1.2)
            try checkGradients([x]) { try gridSample($0[0], grid: grid, alignCorners: align) }
        }
        // The warps are linear in the image, so central differences are exact up to rounding;
        // the fixed homographies put sample points between pixels, so every weight is used.
        try checkGradients([x]) { try warpPerspective($0[0], homographies: testHomographies) }
        let affine = try Tensor(shape: [2, 2, 3], scalars: [0.966, -0.259, 0.83, 0.259, 0.966, -0.47,
                                                            0.985, 0.174, -0.36, -0.174, 0.985, 0.52])
        try checkGradients([x]) { try warpAffine($0[0], matrices: affine) }
        // Through a chain, as in the CLIP augmentations: warp, then pool to a smaller size.
        try checkGradients([x]) {
            try adaptiveAvgPool2d(warpPerspective($0[0], homographies: testHomographies), outputSize: (3, 4))
        }
    }

    @Test func badInputsThrow() throws {
        let x = randn([2, 3, 5, 6], seed: 44)
        let rank3 = randn([3, 5, 6], seed: 45)
        #expect(throws: TensorError.self) { try upsampleNearest2x(rank3) }
        #expect(throws: TensorError.self) { try resizeBilinear(rank3, height: 4, width: 4) }
        #expect(throws: TensorError.self) { try resizeBilinear(x, height: 0, width: 4) }
        #expect(throws: TensorError.self) { try resizeBilinear(Tensor.zeros([1, 1, 0, 2]), height: 2, width: 2) }
        // Grid: wrong last dimension, wrong rank, batch mismatch, image of wrong rank.
        #expect(throws: TensorError.self) { try gridSample(x, grid: Tensor.zeros([2, 4, 4, 3]), alignCorners: true) }
        #expect(throws: TensorError.self) { try gridSample(x, grid: Tensor.zeros([2, 4, 2]), alignCorners: true) }
        #expect(throws: TensorError.self) { try gridSample(x, grid: Tensor.zeros([3, 4, 4, 2]), alignCorners: false) }
        #expect(throws: TensorError.self) { try gridSample(rank3, grid: Tensor.zeros([3, 4, 4, 2]), alignCorners: false) }
        // Transforms of the wrong shape.
        #expect(throws: TensorError.self) { try perspectiveGrid(homographies: Tensor.zeros([3, 3]), height: 4, width: 4) }
        #expect(throws: TensorError.self) { try perspectiveGrid(homographies: Tensor.zeros([1, 2, 3]), height: 4, width: 4) }
        #expect(throws: TensorError.self) { try perspectiveGrid(homographies: Tensor.zeros([1, 3, 3]), height: 0, width: 4) }
        #expect(throws: TensorError.self) { try affineGrid(matrices: Tensor.zeros([1, 3, 3]), height: 4, width: 4) }
        #expect(throws: TensorError.self) { try warpPerspective(x, homographies: Tensor.zeros([1, 3, 3])) }
        #expect(throws: TensorError.self) { try warpPerspective(x, homographies: Tensor.zeros([2, 2, 3])) }
        #expect(throws: TensorError.self) { try warpAffine(x, matrices: Tensor.zeros([3, 2, 3])) }
        #expect(throws: TensorError.self) { try warpPerspective(rank3, homographies: testHomographies) }
        // A degenerate (all-zero) homography divides by zero: border values, no crash.
        let degenerate = try warpPerspective(x, homographies: Tensor.zeros([2, 3, 3]))
        #expect(degenerate.shape == x.shape && degenerate.scalars.allSatisfy { $0.isFinite })
    }
}
