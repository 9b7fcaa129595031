import Foundation
import BlendTensor
@testable import BlendModels

/// The VGG16 trunk weights of the LPIPS fixture, made by the same formula as
/// `formula_weights` in scripts/make-lpips-fixtures.py (14.7M parameters are too many to commit).
func lpipsFormulaTrunk() throws -> [String: Tensor] {
    func formula(_ shape: [Int], seed: UInt64, fanIn: Int) throws -> Tensor {
        let bound = (3.0 / Double(fanIn)).squareRoot()
        let offset = seed &* 40503 &+ 12345
        return try Tensor(shape: shape) { buffer in
            for i in buffer.indices {
                var h = (UInt64(i) &* 2_654_435_761 &+ offset) & 0xFFFF_FFFF
                h ^= h >> 13
                h = (h &* 1_274_126_177) & 0xFFFF_FFFF
                h ^= h >> 16
                let u = Double(h) / 4_294_967_296.0
                buffer[i] = Float((u * 2 - 1) * bound)
            }
        }
    }
    var tensors: [String: Tensor] = [:]
    var cin = 3
    let channels = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    for (index, cout) in zip(VGG16Features.featureIndices, channels) {
        let fanIn = cin * 9
        tensors["features.\(index).weight"] = try formula([cout, cin, 3, 3], seed: UInt64(2 * index), fanIn: fanIn)
        tensors["features.\(index).bias"] = try formula([cout], seed: UInt64(2 * index + 1), fanIn: fanIn)
        cin = cout
    }
    return tensors
}
