#!/usr/bin/env python3
"""Writes the Stable Diffusion text-encoder, scheduler and Blended Latent Diffusion fixtures
(dev-only; needs the venv from scripts/setup-dev-venv.sh: transformers 4.57, diffusers 0.35,
open_clip_torch 3.x). Tiny random-weight models built from configs; nothing is downloaded.

Text encoders (Tests/BlendModelsTests/Fixtures/sd/text_*):
  - SD 1.x: a tiny transformers CLIPTextModel (QuickGELU), saved in the CompVis single-file
    names (cond_stage_model.transformer.text_model.*, with the old position_ids buffer) and as a
    diffusers text_encoder/ folder (save_pretrained); hidden states = last_hidden_state.
  - SD 2.x: a tiny OpenCLIP text tower (erf GELU), saved in the CompVis names
    (cond_stage_model.model.*, in_proj_weight, all its blocks, text_projection, logit_scale);
    hidden states = the penultimate block's output through ln_final, as the SD 2 code's
    FrozenOpenCLIPEmbedder(layer="penultimate") computes it. The same weights converted by
    diffusers' own single-file converter into a CLIPTextModel one layer shorter (as diffusers
    stores SD 2.x) must give the same states; that folder is saved as well.
Schedulers (Tests/BlendDiffusionTests/Fixtures/scheduler_*): diffusers' DDIMScheduler and
  DPMSolverMultistepScheduler, configured from SD 1.5's published scheduler config, stepped over
  whole schedules with given model outputs (epsilon and v), and their timesteps per spacing.
BLD (Tests/BlendEditorTests/Fixtures/bld_*): the Blended Latent Diffusion loop re-implemented
  here with diffusers' schedulers, an analytic denoiser and autoencoder, and recorded noise.

    .venv/bin/python scripts/make-sd-text-sampling-fixtures.py
"""
import json
import os

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from scipy.ndimage import binary_dilation

from transformers import CLIPTextConfig, CLIPTextModel
from open_clip.transformer import TextTransformer
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, PNDMScheduler
from sd2_text_conversion import diffusers_sd2_text_encoder

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests")
TEXT_OUT = os.path.join(ROOT, "BlendModelsTests", "Fixtures", "sd")
SCHED_OUT = os.path.join(ROOT, "BlendDiffusionTests", "Fixtures")
BLD_OUT = os.path.join(ROOT, "BlendEditorTests", "Fixtures")

VOCAB, WIDTH, HEADS = 600, 32, 2
BOS, EOS = VOCAB - 2, VOCAB - 1

# SD 1.5's scheduler/scheduler_config.json as published (PNDMScheduler); the solvers are made
# from it with from_config, as users of diffusers do.
SD15_SCHEDULER = {
    "_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
    "clip_sample": False, "num_train_timesteps": 1000, "set_alpha_to_one": False, "skip_prk_steps": True,
    "steps_offset": 1, "trained_betas": None,
}


def randomise(module, generator):
    """Replaces every parameter with seeded random values large enough to exercise each op."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or "layer_norm" in name and name.endswith("weight") \
                    or name.endswith("ln_final.weight") or name.endswith("final_layer_norm.weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=generator))
            else:
                p.copy_(0.3 * torch.randn(p.shape, generator=generator))


def token_rows(pad):
    """Three 77-id prompts: a short one, a longer one, and the empty prompt."""
    g = torch.Generator().manual_seed(7)
    rows = []
    for n in (5, 40, 0):
        body = torch.randint(1, VOCAB - 2, (n,), generator=g).tolist()
        ids = [BOS] + body + [EOS]
        rows.append(ids + [pad] * (77 - len(ids)))
    return torch.tensor(rows, dtype=torch.int64)


def text_fixtures():
    os.makedirs(TEXT_OUT, exist_ok=True)
    g = torch.Generator().manual_seed(11)
    io = {}

    # SD 1.x: transformers CLIPTextModel, QuickGELU, last_hidden_state.
    cfg1 = CLIPTextConfig(vocab_size=VOCAB, hidden_size=WIDTH, intermediate_size=37, num_hidden_layers=3,
                          num_attention_heads=HEADS, max_position_embeddings=77, hidden_act="quick_gelu",
                          bos_token_id=BOS, eos_token_id=EOS, pad_token_id=EOS)
    m1 = CLIPTextModel(cfg1).eval()
    randomise(m1, g)
    tokens1 = token_rows(pad=EOS)
    with torch.no_grad():
        io["sd1_tokens"] = tokens1.float()
        io["sd1_hidden"] = m1(tokens1).last_hidden_state.contiguous()
    sd = {"cond_stage_model.transformer." + k: v.contiguous() for k, v in m1.state_dict().items()}
    sd["cond_stage_model.transformer.text_model.embeddings.position_ids"] = torch.arange(77, dtype=torch.int64)[None]
    save_file(sd, os.path.join(TEXT_OUT, "text_sd1_compvis.safetensors"))
    m1.save_pretrained(os.path.join(TEXT_OUT, "text_sd1_diffusers", "text_encoder"), safe_serialization=True)

    # SD 2.x: an OpenCLIP text tower, its penultimate block through ln_final.
    layers = 4
    tower = TextTransformer(context_length=77, vocab_size=VOCAB, width=WIDTH, heads=HEADS, layers=layers,
                            output_dim=16).eval()
    randomise(tower, g)
    tokens2 = token_rows(pad=0)
    with torch.no_grad():
        x = tower.token_embedding(tokens2) + tower.positional_embedding
        assert tower.transformer.batch_first
        for r in tower.transformer.resblocks[:-1]:
            x = r(x, attn_mask=tower.attn_mask)
        io["sd2_tokens"] = tokens2.float()
        io["sd2_hidden"] = tower.ln_final(x).contiguous()
    sd = {"cond_stage_model.model." + k: v.contiguous() for k, v in tower.state_dict().items()}
    sd["cond_stage_model.model.logit_scale"] = torch.tensor(4.6052)
    save_file(sd, os.path.join(TEXT_OUT, "text_sd2_compvis.safetensors"))

    # diffusers' conversion of the same file: a CLIPTextModel one layer shorter, GELU.
    m2 = diffusers_sd2_text_encoder(sd, layers=layers, width=WIDTH, heads=HEADS, vocab=VOCAB, bos=BOS, eos=EOS)
    with torch.no_grad():
        states = m2(tokens2).last_hidden_state
    err = (states - io["sd2_hidden"]).abs().max() / io["sd2_hidden"].abs().max()
    assert err < 1e-5, f"diffusers' SD 2 conversion disagrees with the penultimate layer: {err}"
    m2.save_pretrained(os.path.join(TEXT_OUT, "text_sd2_diffusers", "text_encoder"), safe_serialization=True)

    save_file(io, os.path.join(TEXT_OUT, "text_io.safetensors"))


def sd_scheduler(cls, **overrides):
    return cls.from_config(PNDMScheduler.from_config(SD15_SCHEDULER).config, **overrides)


def scheduler_fixtures():
    os.makedirs(SCHED_OUT, exist_ok=True)
    # Timesteps for each spacing and a range of step counts.
    table = {"alphas_cumprod": DDIMScheduler.from_config(PNDMScheduler.from_config(SD15_SCHEDULER).config)
             .alphas_cumprod.double().tolist()}
    for name, cls in (("ddim", DDIMScheduler), ("dpm", DPMSolverMultistepScheduler)):
        for spacing in ("leading", "linspace", "trailing"):
            for offset in (0, 1):
                for steps in (1, 7, 25, 50, 333):
                    s = cls(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                            timestep_spacing=spacing, steps_offset=offset)
                    s.set_timesteps(steps)
                    table[f"{name}/{spacing}/{offset}/{steps}"] = s.timesteps.tolist()
    # What SD's published config gives each solver (from_config).
    for name, cls in (("ddim", DDIMScheduler), ("dpm", DPMSolverMultistepScheduler)):
        s = sd_scheduler(cls)
        s.set_timesteps(25)
        table[f"{name}/sd15/25"] = s.timesteps.tolist()
    with open(os.path.join(SCHED_OUT, "scheduler_timesteps.json"), "w") as f:
        json.dump(table, f)

    # Whole runs with given model outputs.
    g = torch.Generator().manual_seed(21)
    runs = {}
    for solver, cls, steps, start in (("ddim", DDIMScheduler, 10, 0), ("dpm", DPMSolverMultistepScheduler, 20, 0),
                                      ("dpm", DPMSolverMultistepScheduler, 8, 2)):
        for prediction in ("epsilon", "v_prediction"):
            s = sd_scheduler(cls, prediction_type=prediction)
            s.set_timesteps(steps)
            if start and hasattr(s, "set_begin_index"):
                s.set_begin_index(start)
            key = f"{solver}_{prediction}_{steps}_{start}"
            x = torch.randn(2, 4, 4, 4, generator=g)
            runs[f"{key}/x"] = x
            for i, t in enumerate(s.timesteps[start:]):
                out = torch.randn(2, 4, 4, 4, generator=g)
                x = s.step(out, t, x).prev_sample
                runs[f"{key}/output{start + i}"] = out
                runs[f"{key}/sample{start + i}"] = x
    # add_noise at a timestep, and classifier-free guidance as the pipelines compute it.
    x0, n = torch.randn(2, 4, 4, 4, generator=g), torch.randn(2, 4, 4, 4, generator=g)
    runs["add_noise/x0"], runs["add_noise/noise"] = x0, n
    runs["add_noise/t500"] = sd_scheduler(DDIMScheduler).add_noise(x0, n, torch.tensor([500]))
    u, c = torch.randn(2, 4, 4, 4, generator=g), torch.randn(2, 4, 4, 4, generator=g)
    runs["cfg/uncond"], runs["cfg/cond"], runs["cfg/guided"] = u, c, u + 7.5 * (c - u)
    save_file({k: v.contiguous() for k, v in runs.items()}, os.path.join(SCHED_OUT, "scheduler_runs.safetensors"))


# ----- Blended Latent Diffusion ---------------------------------------------------------------
# An analytic stand-in for the SD UNet and VAE, written the same way in the Swift test.
SCALE = 0.18215


def denoise(x, t, context):
    """tanh(x)·(0.5 + t/2000) + mean of each sample's context row."""
    return torch.tanh(x) * (0.5 + t / 2000.0) + context.mean(dim=(1, 2)).view(-1, 1, 1, 1)


def encode(image):
    """2×2 average pool of the RGB channels, a fourth channel their mean, times 0.18215."""
    p = torch.nn.functional.avg_pool2d(image, 2)
    return torch.cat([p, p.mean(dim=1, keepdim=True)], dim=1) * SCALE


def decode(z):
    """Nearest 2× upsampling of channels 0-2 plus 0.5 × channel 3, divided by 0.18215."""
    z = z / SCALE
    return torch.nn.functional.interpolate(z[:, :3] + 0.5 * z[:, 3:], scale_factor=2, mode="nearest")


def reference_bld(solver, prediction, steps, start_rule, init, level, dilations, image, mask_image, context, uncond,
                  guidance, samples, g):
    cls = DDIMScheduler if solver == "ddim" else DPMSolverMultistepScheduler
    if solver == "ddim-official":
        # text_editing_SD2.py's own scheduler: DDIMScheduler(...) with steps_offset 0.
        s = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                          set_alpha_to_one=False, prediction_type=prediction)
    else:
        s = sd_scheduler(cls, prediction_type=prediction)
    s.set_timesteps(steps)
    ts = s.timesteps
    kind, value = start_rule
    start = steps - min(int(steps * value), steps) if kind == "strength" else int(steps * value)
    if hasattr(s, "set_begin_index"):
        s.set_begin_index(start)
    ac = s.alphas_cumprod.double()

    z0 = encode(image)
    h, w = z0.shape[2:]
    small = np.array(mask_image.resize((w, h), Image.NEAREST)) / 255.0
    small = (small >= 0.5).astype(np.float32)
    masks = [binary_dilation(small, structure=np.ones((3 + 2 * i, 3 + 2 * i))) for i in reversed(range(dilations))]
    masks = [torch.from_numpy(np.asarray(m, dtype=np.float32))[None, None] for m in masks + [small]]

    out = {}
    initial = torch.randn(samples, *z0.shape[1:], generator=g)
    out["noise_initial"] = initial
    source = z0.repeat(samples, 1, 1, 1)
    x = initial if init == "noise" else s.add_noise(source, initial, ts[start:start + 1])
    run = ts[start:]
    for i, t in enumerate(run):
        k = start + i
        both = denoise(torch.cat([x, x]), int(t), torch.cat([uncond.repeat(samples, 1, 1), context.repeat(samples, 1, 1)]))
        u, c = both.chunk(2)
        x = s.step(u + guidance * (c - u), t, x).prev_sample
        noise = torch.randn(samples, *z0.shape[1:], generator=g)
        out[f"noise_background{k}"] = noise
        if level == "next":
            # The official script: add_noise at the step's own timestep t.
            a = float(ac[int(t)])
            if solver.startswith("ddim"):
                background = s.add_noise(source, noise, t.view(1))
            else:
                background = source * a ** 0.5 + noise * (1 - a) ** 0.5
        else:
            if solver.startswith("ddim"):
                prev = int(t) - 1000 // steps
                a = float(ac[prev]) if prev >= 0 else float(s.final_alpha_cumprod)
            else:
                a = float(ac[int(ts[k + 1])]) if k + 1 < len(ts) else 1.0
            background = source * a ** 0.5 + noise * (1 - a) ** 0.5
        m = masks[min(i // (len(run) // len(masks) + 1), len(masks) - 1)]
        x = x * m + background * (1 - m)
    out["latents"] = x
    out["images"] = decode(x)
    out["masks"] = torch.cat(masks)
    out["start"] = torch.tensor([float(start)])
    return out


def bld_fixtures():
    os.makedirs(BLD_OUT, exist_ok=True)
    g = torch.Generator().manual_seed(31)
    image = torch.rand(1, 3, 16, 16, generator=g) * 2 - 1
    # A mask with grey levels either side of 0.5 and a thin diagonal stroke.
    m = np.zeros((16, 16), dtype=np.uint8)
    m[3:9, 4:12] = 255
    m[9:11, 4:12] = 140
    m[11:13, 4:12] = 110
    for i in range(16):
        m[i, 15 - i] = 255
    mask_image = Image.fromarray(m, mode="L")
    context, uncond = torch.randn(1, 5, 6, generator=g), torch.randn(1, 5, 6, generator=g)
    fixture = {"image": image, "mask": torch.from_numpy(m.astype(np.float32) / 255.0)[None, None],
               "context": context, "uncond": uncond}
    configs = {
        # The defaults: DPM-Solver++(2M), strength 0.75, source init, same-level blending.
        "dpm_eps": ("dpm", "epsilon", 12, ("strength", 0.75), "source", "same", 0),
        "dpm_v_shrink": ("dpm", "v_prediction", 10, ("strength", 0.75), "source", "same", 2),
        "ddim_eps": ("ddim", "epsilon", 10, ("strength", 0.8), "source", "same", 0),
        # The official script: DDIM (steps_offset 0), pure-noise start, 25 % skipped, blend at t.
        "official": ("ddim-official", "epsilon", 10, ("skip", 0.25), "noise", "next", 0),
    }
    for name, (solver, prediction, steps, start, init, level, dilations) in configs.items():
        out = reference_bld(solver, prediction, steps, start, init, level, dilations, image, mask_image, context, uncond,
                            guidance=7.5, samples=2, g=g)
        for k, v in out.items():
            fixture[f"{name}/{k}"] = v
    # Pillow's nearest resize at a non-integer scale, thresholded, for LatentMasks.downsample.
    odd = (torch.rand(13, 11, generator=g) * 255).round().to(torch.uint8).numpy()
    fixture["odd_mask"] = torch.from_numpy(odd.astype(np.float32) / 255.0)[None, None]
    down = np.array(Image.fromarray(odd, mode="L").resize((4, 5), Image.NEAREST)) / 255.0
    fixture["odd_mask_down"] = torch.from_numpy((down >= 0.5).astype(np.float32))[None, None]
    save_file({k: v.contiguous().float() for k, v in fixture.items()}, os.path.join(BLD_OUT, "bld_loops.safetensors"))


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    text_fixtures()
    scheduler_fixtures()
    bld_fixtures()
