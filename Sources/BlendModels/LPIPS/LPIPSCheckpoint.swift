import BlendTensor

// The checkpoint key layout of LPIPS-VGG, in one place. It comes from two files:
//
//   torchvision's VGG16 (vgg16-397923af.pth):  features.{0,2,5,7,10,12,14,17,19,21,24,26,28}.weight/.bias
//                                              classifier.* (not used)
//   lpips' v0.1 linear layers (vgg.pth):       lin{0..4}.model.1.weight   [1, C, 1, 1]

extension LPIPSModel {
    /// Assembles LPIPS from the VGG16 trunk weights and the lin-layer weights (which may
    /// be one dictionary or two merged: the key names do not overlap).
    public init(weights: ModelWeights) throws {
        var cin = 3
        var convolutions: [Conv2dLayer] = []
        var stageOfConv: [Int] = []
        for (stage, size) in VGG16Features.stageSizes.enumerated() {
            for _ in 0..<size { stageOfConv.append(stage) }
        }
        for (conv, index) in VGG16Features.featureIndices.enumerated() {
            let cout = VGG16Features.stageChannels[stageOfConv[conv]]
            convolutions.append(Conv2dLayer(weight: try weights.take("features.\(index).weight", shape: [cout, cin, 3, 3]),
                                            bias: try weights.take("features.\(index).bias", shape: [cout]),
                                            padding: 1))
            cin = cout
        }
        features = VGG16Features(convolutions: convolutions)
        linear = try VGG16Features.stageChannels.enumerated().map { k, c in
            Conv2dLayer(weight: try weights.take("lin\(k).model.1.weight", shape: [1, c, 1, 1]), bias: nil)
        }
        // The VGG classifier head is part of torchvision's file but not of LPIPS.
        for key in weights.keys where key.hasPrefix("classifier.") { _ = try weights.take(key) }
        try weights.finish()
    }
}
