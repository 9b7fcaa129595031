import Testing
@testable import BlendTensor
import BlendTestSupport

/// A 1×1×n×n ramp image with value `n·row + column`.
func rampImage(_ n: Int) -> Tensor {
    try! Tensor(shape: [1, 1, n, n], scalars: (0..<(n * n)).map(Float.init))
}

/// A 1×1×3×4 image of the digits of pi, used for PyTorch reference values:
///   3 1 4 1
///   5 9 2 6
///   5 3 5 8
let piDigits = try! Tensor(shape: [1, 1, 3, 4], scalars: [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8])

/// Distinct values at least 0.05 apart in random order, so that small finite-difference
/// probes never change which element of a window is the maximum.
func distinctValues(_ shape: [Int], seed: UInt64) -> Tensor {
    var g = SeededGenerator(seed: seed)
    let n = shape.reduce(1, *)
    var values = (0..<n).map { Float($0) * 0.05 - Float(n) * 0.025 }
    values.shuffle(using: &g)
    return try! Tensor(shape: shape, scalars: values)
}

@Suite struct PoolingTests {
    @Test func avgPoolExactValues() throws {
        // 2x2 windows of the 4x4 ramp: (0+1+4+5)/4, (2+3+6+7)/4, (8+9+12+13)/4, (10+11+14+15)/4.
        let y = try avgPool2d(rampImage(4))
        #expect(y.shape == [1, 1, 2, 2])
        expectClose(y, [2.5, 4.5, 10.5, 12.5])
        // The mean of a 3x3 block of a ramp is its centre value: centres (1,1) (1,2) (2,1) (2,2).
        expectClose(try avgPool2d(rampImage(4), kernel: 3, stride: 1), [5, 6, 9, 10])
        // Floor mode on the 5x5 ramp (5r + c): 2x2 windows drop the last row and column,
        // block centres (0.5,0.5) (0.5,2.5) (2.5,0.5) (2.5,2.5) -> 3, 5, 13, 15.
        let five = try avgPool2d(rampImage(5))
        #expect(five.shape == [1, 1, 2, 2])
        expectClose(five, [3, 5, 13, 15])
        // 3x3 windows with stride 2 on 5x5: centres (1,1) (1,3) (3,1) (3,3) -> 6, 8, 16, 18.
        expectClose(try avgPool2d(rampImage(5), kernel: 3, stride: 2), [6, 8, 16, 18])
        // PyTorch: F.avg_pool2d(pi, 2, 1).
        expectClose(try avgPool2d(piDigits, kernel: 2, stride: 1), [4.5, 4.0, 3.25, 5.5, 4.75, 5.25])
        // Each of four planes (two batch items x two channels) is pooled on its own:
        // plane p holds 4p...4p+3, mean 4p + 1.5.
        let planes = try Tensor(shape: [2, 2, 2, 2], scalars: (0..<16).map(Float.init))
        let pooled = try avgPool2d(planes)
        #expect(pooled.shape == [2, 2, 1, 1])
        expectClose(pooled, [1.5, 5.5, 9.5, 13.5])
    }

    @Test func maxPoolExactValues() throws {
        expectClose(try maxPool2d(rampImage(4)), [5, 7, 13, 15])
        // PyTorch: F.max_pool2d(pi, 2, 1).
        expectClose(try maxPool2d(piDigits, kernel: 2, stride: 1), [9, 9, 6, 9, 9, 8])
        expectClose(try maxPool2d(rampImage(5), kernel: 3, stride: 2), [12, 14, 22, 24])
        let negative = try Tensor(shape: [1, 2, 2, 2], scalars: [-4, -3, -2, -1, -8, -7, -6, -5])
        expectClose(try maxPool2d(negative), [-1, -5])
    }

    @Test func maxPoolGradientGoesToFirstArgmax() throws {
        // Ties: both 2s are maxima; the first in row-major order takes the gradient.
        let tie = try Tensor(shape: [1, 1, 2, 2], scalars: [1, 2, 2, 1]).requiringGradient()
        expectClose(try gradients(of: maxPool2d(tie), withRespectTo: [tie])[0], [0, 1, 0, 0])
        let flat = try Tensor.ones([1, 1, 2, 2]).requiringGradient()
        expectClose(try gradients(of: maxPool2d(flat), withRespectTo: [flat])[0], [1, 0, 0, 0])
        // Overlapping windows accumulate: the 9 of pi wins four windows, 6 and 8 one each.
        let pi = piDigits.requiringGradient()
        let g = try gradients(of: maxPool2d(pi, kernel: 2, stride: 1), withRespectTo: [pi])[0]
        expectClose(g, [0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0, 1])
    }

    @Test func adaptiveAvgPoolExactValues() throws {
        // 5 -> 3 bins: [floor(0), ceil(5/3)) = 0..<2, [floor(5/3), ceil(10/3)) = 1..<4,
        // [floor(10/3), 5) = 3..<5; bin means of 0...4 are 0.5, 2, 3.5. On the 5x5 ramp
        // the output is 5·rowMean + colMean.
        let y = try adaptiveAvgPool2d(rampImage(5), outputSize: (height: 3, width: 3))
        #expect(y.shape == [1, 1, 3, 3])
        expectClose(y, [3, 4.5, 6, 10.5, 12, 13.5, 18, 19.5, 21])
        // Growing 2 -> 3: bins 0..<1, 0..<2, 1..<2 of [1, 3] give 1, 2, 3.
        let row = try Tensor(shape: [1, 1, 1, 2], scalars: [1, 3])
        expectClose(try adaptiveAvgPool2d(row, outputSize: (height: 1, width: 3)), [1, 2, 3])
        // PyTorch: F.adaptive_avg_pool2d(pi, (2, 3)) and (2, 5).
        expectClose(try adaptiveAvgPool2d(piDigits, outputSize: (2, 3)), [4.5, 4.0, 3.25, 5.5, 4.75, 5.25])
        expectClose(try adaptiveAvgPool2d(piDigits, outputSize: (2, 5)),
                    [4.0, 4.5, 4.0, 3.25, 3.5, 5.0, 5.5, 4.75, 5.25, 7.0])
        // Same size is the identity; to 1x1 is the mean (sum of pi digits 52 / 12).
        expectClose(try adaptiveAvgPool2d(piDigits, outputSize: (3, 4)), piDigits.scalars)
        expectClose(try adaptiveAvgPool2d(piDigits, outputSize: (1, 1)), [52.0 / 12])
        // CLIP's 256 -> 224 keeps a constant image constant.
        let flat = try Tensor(shape: [1, 3, 256, 256], repeating: 0.25)
        let small = try adaptiveAvgPool2d(flat, outputSize: (224, 224))
        #expect(small.shape == [1, 3, 224, 224])
        #expect(small.scalars.allSatisfy { Swift.abs($0 - 0.25) < 1e-6 })
    }

    @Test func poolingGradients() throws {
        let x = randn([2, 3, 5, 6], seed: 31)
        try checkGradients([x]) { try avgPool2d($0[0]) }
        try checkGradients([x]) { try avgPool2d($0[0], kernel: 3, stride: 1) }
        try checkGradients([x]) { try avgPool2d($0[0], kernel: 3, stride: 2) }
        try checkGradients([x]) { try adaptiveAvgPool2d($0[0], outputSize: (3, 4)) }
        try checkGradients([x]) { try adaptiveAvgPool2d($0[0], outputSize: (7, 8)) }
        try checkGradients([x]) { try adaptiveAvgPool2d($0[0], outputSize: (2, 2)) }
        let distinct = distinctValues([2, 3, 5, 6], seed: 32)
        try checkGradients([distinct]) { try maxPool2d($0[0]) }
        try checkGradients([distinct]) { try maxPool2d($0[0], kernel: 3, stride: 2) }
        try checkGradients([distinct]) { try maxPool2d($0[0], kernel: 2, stride: 1) }
    }

    @Test func badInputsThrow() throws {
        let x = randn([1, 2, 4, 4], seed: 33)
        let rank3 = randn([2, 4, 4], seed: 34)
        #expect(throws: TensorError.self) { try avgPool2d(rank3) }
        #expect(throws: TensorError.self) { try maxPool2d(rank3) }
        #expect(throws: TensorError.self) { try adaptiveAvgPool2d(rank3, outputSize: (2, 2)) }
        #expect(throws: TensorError.self) { try avgPool2d(x, kernel: 5) }
        #expect(throws: TensorError.self) { try maxPool2d(randn([1, 1, 3, 8], seed: 35), kernel: 4) }
        #expect(throws: TensorError.self) { try avgPool2d(x, kernel: 0) }
        #expect(throws: TensorError.self) { try maxPool2d(x, kernel: 2, stride: 0) }
        #expect(throws: TensorError.self) { try adaptiveAvgPool2d(x, outputSize: (0, 2)) }
        #expect(throws: TensorError.self) { try adaptiveAvgPool2d(Tensor.zeros([1, 1, 0, 3]), outputSize: (1, 1)) }
        do {
            _ = try avgPool2d(x, kernel: 5)
            Issue.record("expected an error")
        } catch let error as TensorError {
            #expect(String(describing: error).contains("avgPool2d"))
        }
    }
}
