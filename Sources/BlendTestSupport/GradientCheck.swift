// Test helpers shared by the test targets: seeded inputs and the finite-difference
// gradient check. A library target only so that one copy serves every suite.
import Testing
import BlendTensor

/// Seeded test inputs come from the engine's own generator.
public typealias SeededGenerator = SplitMix64

public func randn(_ shape: [Int], seed: UInt64, std: Float = 1) -> Tensor {
    var g = SeededGenerator(seed: seed)
    return try! Tensor.randomNormal(shape, std: std, using: &g)
}

public func uniform(_ shape: [Int], seed: UInt64, in range: Range<Float>) -> Tensor {
    var g = SeededGenerator(seed: seed)
    return try! Tensor.randomUniform(shape, in: range, using: &g)
}

/// Central-difference check of reverse-mode input gradients.
///
/// The scalar objective is `sum(f(inputs) * r)` for a fixed random `r`, so every
/// output element and every term of the backward pass matters. For each input,
/// up to `maxProbes` elements are perturbed by ±`eps`; the analytic gradient must
/// match the numeric one to `tolerance`, relative to the largest numeric gradient
/// entry — a wrong sign, a missing term or a wrong scale all fail.
public func checkGradients(_ inputs: [Tensor], eps: Float = 1e-2, tolerance: Float = 1e-2, maxProbes: Int = 48,
                    seed: UInt64 = 99, sourceLocation: SourceLocation = #_sourceLocation,
                    _ f: ([Tensor]) throws -> Tensor) throws {
    let leaves = inputs.map { $0.requiringGradient() }
    let y = try f(leaves)
    let r = randn(y.shape, seed: seed)
    let analytic = try gradients(of: y, withRespectTo: leaves, seed: r)

    func objective(_ xs: [Tensor]) throws -> Double {
        let out = try f(xs)
        var total = 0.0
        for (a, b) in zip(out.scalars, r.scalars) { total += Double(a) * Double(b) }
        return total
    }

    var probeRNG = SeededGenerator(seed: seed &+ 1)
    for (index, input) in inputs.enumerated() {
        let values = input.scalars
        let probes: [Int] = values.count <= maxProbes
            ? Array(0..<values.count)
            : (0..<maxProbes).map { _ in Int.random(in: 0..<values.count, using: &probeRNG) }
        var numeric: [Double] = []
        var computed: [Double] = []
        let grad = analytic[index].scalars
        for p in probes {
            var plus = values, minus = values
            plus[p] += eps
            minus[p] -= eps
            var xsPlus = inputs, xsMinus = inputs
            xsPlus[index] = try Tensor(shape: input.shape, scalars: plus)
            xsMinus[index] = try Tensor(shape: input.shape, scalars: minus)
            let d = (try objective(xsPlus) - objective(xsMinus)) / (2 * Double(eps))
            numeric.append(d)
            computed.append(Double(grad[p]))
        }
        let scale = max(numeric.map { Swift.abs($0) }.max() ?? 0, 1e-3)
        let worst = zip(numeric, computed).map { Swift.abs($0 - $1) }.max() ?? 0
        #expect(worst / scale <= Double(tolerance),
                "input \(index): max gradient error \(worst) vs scale \(scale); numeric \(numeric.prefix(6)) analytic \(computed.prefix(6))",
                sourceLocation: sourceLocation)
        #expect(numeric.contains { $0 != 0 } || computed.allSatisfy { $0 == 0 },
                "input \(index): numeric gradient is identically zero", sourceLocation: sourceLocation)
    }
}

/// Element-wise closeness with an absolute-plus-relative tolerance.
public func expectClose(_ a: Tensor, _ b: [Float], tolerance: Float = 1e-5, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.count == b.count, "count \(a.count) vs \(b.count)", sourceLocation: sourceLocation)
    let worst = zip(a.scalars, b).map { Swift.abs($0 - $1) / max(1, Swift.abs($1)) }.max() ?? 0
    #expect(worst <= tolerance, "max relative error \(worst): got \(a.scalars.prefix(8)), expected \(b.prefix(8))",
            sourceLocation: sourceLocation)
}
