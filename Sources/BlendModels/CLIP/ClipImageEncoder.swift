import BlendTensor

/// CLIP's vision transformer (`VisionTransformer`): patch embedding by a strided conv,
/// a class token, learned positions, pre-LN transformer, LayerNorm of the class token
/// and a linear projection to the joint embedding space. Differentiable in the image.
public struct ClipImageEncoder: Sendable {
    public let config: ClipConfig
    let patchEmbedding: Conv2dLayer
    let classEmbedding: Tensor          // [width]
    let positionalEmbedding: Tensor     // [grid² + 1, width]
    let lnPre: LayerNormLayer
    let transformer: ClipTransformer
    let lnPost: LayerNormLayer
    let projection: Tensor              // [width, embed]

    /// CLIP's per-channel normalisation constants (RGB), applied to images in [0, 1].
    public static let mean: [Float] = [0.48145466, 0.4578275, 0.40821073]
    public static let std: [Float] = [0.26862954, 0.26130258, 0.27577711]

    /// `(images − mean) / std` per channel for `[N, 3, H, W]` images in [0, 1]; differentiable.
    public static func normalize(_ images: Tensor) throws -> Tensor {
        guard images.rank == 4, images.dim(1) == 3 else {
            throw ModelError.badInput("CLIP normalisation needs RGB images [N, 3, H, W], got \(images.shape)")
        }
        let m = try Tensor(shape: [1, 3, 1, 1], scalars: mean), s = try Tensor(shape: [1, 3, 1, 1], scalars: std)
        return try (images - m) / s
    }

    /// Embeddings `[N, embedDim]` of normalised images `[N, 3, R, R]` (R = image_resolution).
    public func callAsFunction(_ images: Tensor) throws -> Tensor {
        let r = config.imageResolution
        guard images.rank == 4, images.dim(1) == 3, images.dim(2) == r, images.dim(3) == r else {
            throw ModelError.badInput("the CLIP image encoder needs normalised images [N, 3, \(r), \(r)], got \(images.shape)")
        }
        let n = images.dim(0), width = config.visionWidth, tokens = config.gridSize * config.gridSize
        let patches = try patchEmbedding(images).reshaped([n, width, tokens]).permuted([0, 2, 1])
        let cls = try classEmbedding.reshaped([1, 1, width]).broadcast(to: [n, 1, width])
        var x = try Tensor.concatenate([cls, patches], axis: 1) + positionalEmbedding
        x = try transformer(lnPre(x), causal: false)
        // [N, 1, width]: each image's projection is its own product (matmul's batch), so its
        // embedding does not depend on the other images.
        let pooled = try lnPost(x.sliced(0..<1, axis: 1))
        return try pooled.matmul(projection).reshaped([n, projection.dim(1)])
    }
}
