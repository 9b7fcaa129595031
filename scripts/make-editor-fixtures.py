#!/usr/bin/env python3
"""Writes the guided-step fixtures of the editor (dev-only; needs the venv from scripts/setup-dev-venv.sh).

One Blended Diffusion step, DDPM and DDIM, computed the way the reference editor
(omriav/blended-diffusion, optimization/image_editor.py) computes it, on the tiny UNet and
CLIP fixtures of the model parity tests: guided-diffusion's SpacedDiffusion("100") with
rescaled timesteps; cond_fn = −∇x_t [λ_clip·clip_loss(x_in·mask) + λ_range·range_loss(x0)] with
x_in = x0·fac + x_t·(1 − fac); one augmentation (the plain resize: no random warps); then the
blending with the source noised to the current level. Everything random is passed in.

    .venv/bin/python scripts/make-editor-fixtures.py
"""
import json
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from guided_diffusion.unet import UNetModel
from clip.model import CLIP

from reference_guidance import make_cond_fn, spaced_diffusion

ROOT = os.path.join(os.path.dirname(__file__), "..")
MODELS = os.path.join(ROOT, "Tests", "BlendModelsTests", "Fixtures")
OUT = os.path.join(ROOT, "Tests", "BlendEditorTests", "Fixtures")


def load_unet():
    cfg = json.load(open(os.path.join(MODELS, "unet_tiny.json")))
    size = cfg["image_size"]
    model = UNetModel(image_size=size, in_channels=3, model_channels=cfg["num_channels"], out_channels=6,
                      num_res_blocks=cfg["num_res_blocks"],
                      attention_resolutions=tuple(size // r for r in cfg["attention_resolutions"]),
                      channel_mult=tuple(cfg["channel_mult"]), num_head_channels=cfg["num_head_channels"],
                      use_scale_shift_norm=True, resblock_updown=True)
    state = torch.load(os.path.join(MODELS, "unet_tiny.pt"))
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return model.eval().requires_grad_(False)


def load_clip():
    model = CLIP(embed_dim=32, image_resolution=32, vision_layers=2, vision_width=64, vision_patch_size=8,
                 context_length=77, vocab_size=500, transformer_width=64, transformer_heads=1, transformer_layers=2)
    state = torch.load(os.path.join(MODELS, "clip_tiny.pt"))
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return model.eval().requires_grad_(False)



def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    unet, clip_model = load_unet(), load_clip()
    diffusion = spaced_diffusion("100")
    tokens = torch.zeros(1, 77, dtype=torch.long)
    tokens[0, :5] = torch.tensor([498, 17, 230, 5, 499])
    with torch.no_grad():
        text = clip_model.encode_text(tokens)

    source = torch.rand(1, 3, 16, 16) * 2 - 1
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 3:12, 4:11] = 1
    t_index = 60
    x = diffusion.q_sample(source, torch.tensor([t_index]), noise=torch.randn(1, 3, 16, 16))

    # aug_num = 1: CLIP sees the plain resize only.
    cond_fn = make_cond_fn(diffusion, unet, clip_model, text, mask, views=lambda m: F.adaptive_avg_pool2d(m, (32, 32)))

    t = torch.tensor([t_index])
    step_noise = torch.randn(1, 3, 16, 16)
    background_noise = torch.randn(1, 3, 16, 16)
    results = {}
    for name, sampler in (("ddpm", diffusion.p_sample), ("ddim", diffusion.ddim_sample)):
        torch.manual_seed(1234)
        # Both samplers draw their noise with randn_like; hand them ours.
        original = torch.randn_like
        torch.randn_like = lambda like, *a, **k: step_noise.clone()
        try:
            out = sampler(unet, x, t, clip_denoised=False, cond_fn=cond_fn, model_kwargs={})
        finally:
            torch.randn_like = original
        background = diffusion.q_sample(source, t, noise=background_noise)
        results[f"{name}_sample"] = out["sample"]
        results[f"{name}_pred_xstart"] = out["pred_xstart"]
        if name == "ddim":
            # Blended Diffusion's vendored guided-diffusion returns the *score-conditioned* x0
            # from ddim_sample; the PyPI package returns the unconditioned one. Record the former.
            plain = diffusion.p_mean_variance(unet, x, t, clip_denoised=False, model_kwargs={})
            results["ddim_pred_xstart"] = diffusion.condition_score(cond_fn, plain, x, t, model_kwargs={})["pred_xstart"]
        results[f"{name}_blended"] = out["sample"] * mask + background * (1 - mask)
    save_file({"source": source, "mask": mask, "x": x, "step_noise": step_noise, "background_noise": background_noise,
               "tokens": tokens.float(), "timestep": torch.tensor([float(t_index)]), **results},
              os.path.join(OUT, "guided_step.safetensors"))




def write_augmentation_fixture():
    """kornia's affine and perspective warps for fixed parameters, to check that blend's
    augmentations use kornia's geometry (rotation sense, centre, corner offsets, padding)."""
    import kornia
    torch.manual_seed(5)
    image = torch.rand(1, 3, 16, 16) * 2 - 1
    size = 16
    angle, tx, ty = 10.0, 1.6, -1.1
    center = torch.tensor([[(size - 1) / 2, (size - 1) / 2]])
    affine = kornia.geometry.transform.get_affine_matrix2d(
        torch.tensor([[tx, ty]]), center, torch.ones(1, 2), torch.tensor([angle]))
    warped_affine = kornia.geometry.transform.warp_affine(image, affine[:, :2], (size, size), align_corners=False,
                                                          padding_mode="border")
    start = torch.tensor([[[0.0, 0.0], [size - 1.0, 0.0], [size - 1.0, size - 1.0], [0.0, size - 1.0]]])
    fractions = torch.tensor([[[0.3, 0.6], [0.9, 0.1], [0.5, 0.5], [0.2, 0.8]]])
    directions = torch.tensor([[[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]]])
    end = start + 0.7 * size / 2 * fractions * directions
    perspective = kornia.geometry.transform.get_perspective_transform(start, end)
    warped_perspective = kornia.geometry.transform.warp_perspective(image, perspective, (size, size), align_corners=False)
    save_file({"image": image, "affine": warped_affine, "perspective": warped_perspective,
               "params": torch.tensor([angle, tx, ty]), "fractions": fractions[0]},
              os.path.join(OUT, "augmentations.safetensors"))


if __name__ == "__main__":
    main()
    write_augmentation_fixture()
