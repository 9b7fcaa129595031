#!/usr/bin/env python3
"""Writes the Gaussian diffusion fixtures (dev-only; needs the venv from scripts/setup-dev-venv.sh).

Uses guided-diffusion's own GaussianDiffusion / SpacedDiffusion (PyPI guided-diffusion-sdk)
to record, for several schedules and respacings, the kept timesteps and the float64
coefficient tables (JSON, exact decimal repr), and for one step of the 100-step process the
tensors of p_mean_variance, condition_mean, condition_score, a DDPM and a DDIM step
(safetensors, float32).

    .venv/bin/python scripts/make-diffusion-fixtures.py
"""
import json
import os

import numpy as np
import torch
from safetensors.torch import save_file
from guided_diffusion import gaussian_diffusion as gd
from guided_diffusion.respace import SpacedDiffusion, space_timesteps

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "BlendDiffusionTests", "Fixtures")


def make(schedule, spec, learn_sigma=True):
    betas = gd.get_named_beta_schedule(schedule, 1000)
    return SpacedDiffusion(
        use_timesteps=space_timesteps(1000, spec),
        betas=betas,
        model_mean_type=gd.ModelMeanType.EPSILON,
        model_var_type=gd.ModelVarType.LEARNED_RANGE if learn_sigma else gd.ModelVarType.FIXED_SMALL,
        loss_type=gd.LossType.MSE,
        rescale_timesteps=True,
    )


def main():
    os.makedirs(OUT, exist_ok=True)
    tables = {}
    for schedule, spec in [("linear", "100"), ("linear", "ddim50"), ("linear", "25,25,50"), ("cosine", "50")]:
        d = make(schedule, spec)
        tables[f"{schedule}/{spec}"] = {
            "timestep_map": [int(t) for t in d.timestep_map],
            "betas": d.betas.tolist(),
            "alphas_cumprod": d.alphas_cumprod.tolist(),
            "posterior_log_variance_clipped": d.posterior_log_variance_clipped.tolist(),
            "posterior_mean_coef1": d.posterior_mean_coef1.tolist(),
            "posterior_mean_coef2": d.posterior_mean_coef2.tolist(),
            "sqrt_one_minus_alphas_cumprod": d.sqrt_one_minus_alphas_cumprod.tolist(),
        }
    with open(os.path.join(OUT, "schedules.json"), "w") as f:
        json.dump(tables, f)

    torch.manual_seed(0)
    d = make("linear", "100")
    t_index = 37
    x = torch.randn(2, 3, 8, 8)
    model_out = torch.randn(2, 6, 8, 8)
    grad = torch.randn(2, 3, 8, 8) * 0.1
    noise = torch.randn(2, 3, 8, 8)
    t = torch.tensor([t_index, t_index])
    seen = {}

    def model(x_in, ts, **kwargs):
        seen["ts"] = ts.clone()
        return model_out

    out = d.p_mean_variance(model, x, t, clip_denoised=False)
    cond = lambda x_, ts_, **kw: grad
    mean_ddpm = d.condition_mean(cond, out, x, t, model_kwargs={})
    scored = d.condition_score(cond, out, x, t, model_kwargs={})
    ddpm_sample = mean_ddpm + torch.exp(0.5 * out["log_variance"]) * noise
    # DDIM step (eta 0 and 0.5) from the score-conditioned prediction, as ddim_sample does.
    def ddim(pred_xstart, eta):
        eps = d._predict_eps_from_xstart(x, t, pred_xstart)
        ab = torch.tensor(d.alphas_cumprod[t_index]).float()
        abp = torch.tensor(d.alphas_cumprod_prev[t_index]).float()
        sigma = eta * torch.sqrt((1 - abp) / (1 - ab)) * torch.sqrt(1 - ab / abp)
        return pred_xstart * torch.sqrt(abp) + torch.sqrt(1 - abp - sigma ** 2) * eps + sigma * noise
    save_file({
        "x": x, "model_output": model_out, "gradient": grad, "noise": noise,
        "model_timestep": seen["ts"].float(),
        "mean": out["mean"], "log_variance": out["log_variance"], "pred_xstart": out["pred_xstart"],
        "condition_mean": mean_ddpm, "condition_score_pred_xstart": scored["pred_xstart"],
        "condition_score_mean": scored["mean"], "ddpm_sample": ddpm_sample,
        "ddim_sample_eta0": ddim(scored["pred_xstart"], 0.0), "ddim_sample_eta05": ddim(scored["pred_xstart"], 0.5),
        "q_sample": d.q_sample(x, t, noise=noise),
    }, os.path.join(OUT, "step_t37.safetensors"))


if __name__ == "__main__":
    main()
