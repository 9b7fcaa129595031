import BlendTensor

/// Blended Diffusion's blending: the guided sample inside the mask, `background`
/// (the source noised to the matching level, or the clean source at the end) outside.
/// `mask` is `[1, 1, H, W]` of 0/1 and broadcasts over the batch and channels.
public func blendBackground(sample: Tensor, background: Tensor, mask: Tensor) throws -> Tensor {
    try sample * mask + background * (1 - mask)
}
