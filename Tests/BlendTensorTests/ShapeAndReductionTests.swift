import Testing
@testable import BlendTensor
import BlendTestSupport

@Suite struct ShapeAndReductionTests {
    let x = try! Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])

    @Test func reductionsExactValues() throws {
        expectClose(try x.sum(), [21])
        expectClose(try x.sum(axes: [0]), [5, 7, 9])
        expectClose(try x.sum(axes: [1], keepingDimensions: true), [6, 15])
        #expect(try x.sum(axes: [1], keepingDimensions: true).shape == [2, 1])
        expectClose(try x.mean(axes: [-1]), [2, 5])
        expectClose(try x.norm(axis: 1), [Float(14).squareRoot(), Float(77).squareRoot()])
    }

    @Test func shapeOpsExactValues() throws {
        expectClose(try x.transposed(), [1, 4, 2, 5, 3, 6])
        #expect(try x.reshaped([3, -1]).shape == [3, 2])
        expectClose(try x.sliced(1..<3, axis: 1), [2, 3, 5, 6])
        let y = try Tensor(shape: [2, 1], scalars: [7, 8])
        expectClose(try Tensor.concatenate([x, y], axis: 1), [1, 2, 3, 7, 4, 5, 6, 8])
        expectClose(try y.broadcast(to: [2, 3]), [7, 7, 7, 8, 8, 8])
        let parts = try x.chunked(3, axis: 1)
        expectClose(parts[2], [3, 6])
    }

    @Test func shapeErrorsThrow() throws {
        #expect(throws: TensorError.self) { try x.reshaped([4, 2]) }
        #expect(throws: TensorError.self) { try x.sum(axes: [2]) }
        #expect(throws: TensorError.self) { try x.sliced(2..<4, axis: 1) }
        #expect(throws: TensorError.self) { try x.permuted([0, 0]) }
        #expect(throws: TensorError.self) { try Tensor.concatenate([x, Tensor.zeros([3, 1])], axis: 1) }
        #expect(throws: TensorError.self) { try x.chunked(2, axis: 1) }
    }

    @Test func gradients() throws {
        let a = randn([2, 3, 4], seed: 11), b = randn([2, 2, 4], seed: 12)
        try checkGradients([a]) { try $0[0].sum(axes: [1]) }
        try checkGradients([a]) { try $0[0].mean(axes: [0, 2], keepingDimensions: true) }
        try checkGradients([a]) { try $0[0].norm(axis: -1) }
        try checkGradients([a]) { try $0[0].permuted([2, 0, 1]) }
        try checkGradients([a]) { try $0[0].reshaped([4, 6]) }
        try checkGradients([a]) { try $0[0].sliced(1..<3, axis: 1) }
        try checkGradients([a, b]) { try Tensor.concatenate([$0[0], $0[1]], axis: 1) }
        try checkGradients([randn([3, 1], seed: 13)]) { try $0[0].broadcast(to: [2, 3, 4]) }
    }

    @Test func matmulAndLinear() throws {
        let a = try Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])
        let b = try Tensor(shape: [2, 3], scalars: [1, 0, 1, 0, 1, 1])
        expectClose(try a.matmul(b), [1, 2, 3, 3, 4, 7])
        let w = try Tensor(shape: [3, 2], scalars: [1, 0, 0, 1, 1, 1])
        let bias = try Tensor(shape: [3], scalars: [0.5, 0, -1])
        expectClose(try linear(a, weight: w, bias: bias), [1.5, 2, 2, 3.5, 4, 6])
        #expect(throws: TensorError.self) { try a.matmul(w) }
        #expect(throws: TensorError.self) { try linear(b, weight: w) }

        try checkGradients([randn([2, 3, 4], seed: 14), randn([2, 4, 5], seed: 15)]) { try $0[0].matmul($0[1]) }
        try checkGradients([randn([2, 3, 4], seed: 16), randn([4, 5], seed: 17)]) { try $0[0].matmul($0[1]) }
        let weight = randn([5, 4], seed: 18), bias5 = randn([5], seed: 19)
        try checkGradients([randn([2, 3, 4], seed: 20)]) { try linear($0[0], weight: weight, bias: bias5) }
    }
}
