"""The reference editor's guidance, for the dev-only fixture and benchmark scripts.

Blended Diffusion's cond_fn (omriav/blended-diffusion, optimization/image_editor.py),
written once here and used by scripts/make-editor-fixtures.py (parity fixtures) and
bench/engine_bench.py (the PyTorch side of the edit-step benchmark).
"""
import torch
import torch.nn.functional as F
from guided_diffusion import gaussian_diffusion as gd
from guided_diffusion.respace import SpacedDiffusion, space_timesteps

CLIP_MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
CLIP_STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)


def spaced_diffusion(respacing="100"):
    """The reference's diffusion: linear schedule, 1000 steps respaced, learned sigma, rescaled timesteps."""
    return SpacedDiffusion(use_timesteps=space_timesteps(1000, respacing), betas=gd.get_named_beta_schedule("linear", 1000),
                           model_mean_type=gd.ModelMeanType.EPSILON, model_var_type=gd.ModelVarType.LEARNED_RANGE,
                           loss_type=gd.LossType.MSE, rescale_timesteps=True)


def spherical_distance(x, y):
    x = F.normalize(x, dim=-1)
    y = F.normalize(y, dim=-1)
    return (x - y).norm(dim=-1).div(2).arcsin().pow(2).mul(2)


def make_cond_fn(diffusion, unet, clip_model, text, mask, views, clip_lambda=1000.0, range_lambda=50.0):
    """cond_fn = −∇x_t [λ_clip·clip_loss(views(x_in·mask)) + λ_range·range_loss(x0)], with
    x_in = x0·fac + x_t·(1 − fac); `views` maps the masked x_in to the batch CLIP sees, in [-1, 1]."""
    def cond_fn(x, t, y=None):
        # The wrapped cond_fn receives rescaled timesteps; the reference un-scales them.
        t = (t * (diffusion.num_timesteps / 1000)).long()
        with torch.enable_grad():
            x = x.detach().requires_grad_()
            out = diffusion.p_mean_variance(unet, x, t, clip_denoised=False, model_kwargs={})
            fac = diffusion.sqrt_one_minus_alphas_cumprod[t[0].item()]
            x_in = out["pred_xstart"] * fac + x * (1 - fac)
            embeds = clip_model.encode_image((views(x_in * mask).add(1).div(2) - CLIP_MEAN) / CLIP_STD)
            loss = spherical_distance(embeds, text).mean() * clip_lambda
            loss = loss + (out["pred_xstart"] - out["pred_xstart"].clamp(-1, 1)).pow(2).mean([1, 2, 3]).sum() * range_lambda
            return -torch.autograd.grad(loss, x)[0]

    return cond_fn
