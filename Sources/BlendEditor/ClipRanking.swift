import BlendModels
import BlendTensor

/// How both methods rank their samples: the CLIP distance of the masked result to the prompt
/// (omriav/blended-diffusion `optimization/image_editor.py`, `unaugmented_clip_distance`).
public struct ClipRanking: Sendable {
    public let clip: ClipModel

    public init(clip: ClipModel) { self.clip = clip }

    /// CLIP text embedding `[1, D]` of the prompt's tokens (as the tokenizer returns them).
    public func promptEmbedding(tokens: [Int]) throws -> Tensor {
        try clip.text([tokens])
    }

    /// The spherical distance (lower is better) between `text` (`[1, D]`) and the embedding of
    /// `image` (`[1, 3, H, W]` in [−1, 1], clamped to [0, 1] after shifting) times `mask`
    /// (`[1, 1, H, W]`, 1 = edited), resized to CLIP's resolution (bilinear) and embedded
    /// without CLIP's normalisation, as the reference does. Throws the model's shape errors.
    public func distance(_ image: Tensor, mask: Tensor, text: Tensor) throws -> Float {
        let r = clip.config.imageResolution
        let unit = try ((image + 1) * 0.5).clamped(min: 0, max: 1) * mask
        let resized = try resizeBilinear(unit, height: r, width: r)
        return try GuidanceLosses.sphericalDistance(clip.image(resized), text).scalar
    }
}
