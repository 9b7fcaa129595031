import BlendTensor

/// The convolutional trunk of torchvision's VGG16 (`vgg16().features`), returning the
/// five activations LPIPS compares: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.
public struct VGG16Features: Sendable {
    /// The 13 3×3 convolutions in order; each is followed by ReLU.
    let convolutions: [Conv2dLayer]

    /// Convolutions per stage; a 2×2 max pool precedes every stage but the first.
    static let stageSizes = [2, 2, 3, 3, 3]
    static let stageChannels = [64, 128, 256, 512, 512]

    /// Index of each convolution in torchvision's `features` Sequential (ReLUs and
    /// pools take the other indices): 0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28.
    static let featureIndices: [Int] = {
        var indices: [Int] = []
        var i = 0
        for (stage, size) in stageSizes.enumerated() {
            if stage > 0 { i += 1 }            // max pool
            for _ in 0..<size { indices.append(i); i += 2 }   // conv, relu
        }
        return indices
    }()

    func callAsFunction(_ x: Tensor) throws -> [Tensor] {
        var h = x
        var outputs: [Tensor] = []
        var conv = 0
        for (stage, size) in Self.stageSizes.enumerated() {
            if stage > 0 { h = try maxPool2d(h, kernel: 2) }
            for _ in 0..<size {
                h = try convolutions[conv](h).relu()
                conv += 1
            }
            outputs.append(h)
        }
        return outputs
    }
}
