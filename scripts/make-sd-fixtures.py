#!/usr/bin/env python3
"""Writes the Stable Diffusion UNet and VAE parity fixtures (dev-only; needs the venv from
scripts/setup-dev-venv.sh: diffusers 0.35, torch).

Builds TINY random-weight diffusers models from configs (no downloads; GroupNorm with
fewer groups than SD's 32 so that the channel counts can be tiny): two
UNet2DConditionModel (an SD 1.x-like one: 1x1-conv projections, a fixed head count; an SD
2.x-like one: linear projections, per-block head counts, 2 ResNets per level) and one
AutoencoderKL. Weights are rounded to float16 and stored that way; the reference runs in
float32 on exactly those rounded values. Each model is saved in BOTH layouts:

  - the original CompVis single file (`model.diffusion_model.*`, `first_stage_model.*`):
    sd1 as a torch.save .ckpt with the weights under `state_dict` plus a few `model_ema.*`
    and schedule tensors, sd2 as .safetensors. The key conversion is written here from the
    published mapping; diffusers' own single-file converter must map it back exactly
    (checked below), so both sides agree on the facts.
  - the diffusers folder layout (model_index.json, unet/, vae/ with config.json): sd1 as the
    fp16 variant (`diffusion_pytorch_model.fp16.safetensors`), sd2 sharded
    (`diffusion_pytorch_model.safetensors.index.json`) with the VAE under diffusers' old
    attention names (query/key/value/proj_attn), which published folders still use.

Inputs and outputs: UNet eps at several timesteps with a 77-token context; VAE latent mean
and log-variance, decode, and the input gradient of sum(decode(z) * r).

Also writes the tensor names and shapes (CompVis layout) of the full-size SD 1.5 and 2.1
UNets and of the SD VAE, built on the meta device (no memory, no weights), for the
recognition tests.

    .venv/bin/python scripts/make-sd-fixtures.py
"""
import json
import os
import re
import shutil

import torch
from safetensors.torch import save_file, load_file
from diffusers import UNet2DConditionModel, AutoencoderKL
from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "BlendModelsTests", "Fixtures", "sd")

UNET_SD1 = dict(
    sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
    block_out_channels=[16, 16, 32],
    down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    cross_attention_dim=16, attention_head_dim=4, norm_num_groups=8,
)
UNET_SD2 = dict(
    sample_size=8, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=[16, 16, 32],
    down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    cross_attention_dim=24, attention_head_dim=[2, 4, 4], use_linear_projection=True,
    upcast_attention=True, norm_num_groups=8,
)
VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
    block_out_channels=[8, 16],
    down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
    norm_num_groups=4, sample_size=16,
)
# The published SD configs (unet/config.json of SD 1.5 and 2.1, vae/config.json).
UNET_SD15_FULL = dict(sample_size=64, cross_attention_dim=768, attention_head_dim=8)
UNET_SD21_FULL = dict(sample_size=96, cross_attention_dim=1024, attention_head_dim=[5, 10, 20, 20],
                      use_linear_projection=True, upcast_attention=True)
VAE_SD_FULL = dict(block_out_channels=[128, 256, 512, 512], layers_per_block=2, latent_channels=4,
                   down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
                   sample_size=512)


def randomize(model, seed):
    """Every parameter random (no zero-initialised layers), rounded to float16."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1 and ("norm" in name):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g) if name.endswith("weight")
                        else 0.2 * torch.randn(p.shape, generator=g))
            elif p.ndim == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
            p.copy_(p.half().float())
    return model.eval()


# ---- diffusers -> CompVis names (the inverse of diffusers' single_file_utils mapping) ----

RESNET_LDM = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
              "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}


def unet_to_ldm(state, config):
    L = config["layers_per_block"]
    attends_up = [t == "CrossAttnUpBlock2D" for t in config["up_block_types"]]
    out = {}
    for key, value in state.items():
        k = key
        fixed = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
                 "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
        for old, new in fixed.items():
            if k.startswith(old + "."):
                k = new + k[len(old):]
        m = re.match(r"down_blocks\.(\d+)\.resnets\.(\d+)\.(\w+)\.(.*)", k)
        if m:
            i, j, part, rest = int(m[1]), int(m[2]), m[3], m[4]
            k = f"input_blocks.{(L + 1) * i + j + 1}.0.{RESNET_LDM[part]}.{rest}"
        m = re.match(r"down_blocks\.(\d+)\.attentions\.(\d+)\.(.*)", k)
        if m:
            k = f"input_blocks.{(L + 1) * int(m[1]) + int(m[2]) + 1}.1.{m[3]}"
        m = re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", k)
        if m:
            k = f"input_blocks.{(L + 1) * (int(m[1]) + 1)}.0.op.{m[2]}"
        m = re.match(r"mid_block\.resnets\.(\d+)\.(\w+)\.(.*)", k)
        if m:
            k = f"middle_block.{2 * int(m[1])}.{RESNET_LDM[m[2]]}.{m[3]}"
        m = re.match(r"mid_block\.attentions\.0\.(.*)", k)
        if m:
            k = f"middle_block.1.{m[1]}"
        m = re.match(r"up_blocks\.(\d+)\.resnets\.(\d+)\.(\w+)\.(.*)", k)
        if m:
            i, j, part, rest = int(m[1]), int(m[2]), m[3], m[4]
            k = f"output_blocks.{(L + 1) * i + j}.0.{RESNET_LDM[part]}.{rest}"
        m = re.match(r"up_blocks\.(\d+)\.attentions\.(\d+)\.(.*)", k)
        if m:
            k = f"output_blocks.{(L + 1) * int(m[1]) + int(m[2])}.1.{m[3]}"
        m = re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", k)
        if m:
            i = int(m[1])
            k = f"output_blocks.{(L + 1) * i + L}.{2 if attends_up[i] else 1}.conv.{m[2]}"
        assert k != key or key.startswith(("input_blocks", "output_blocks")), f"unmapped UNet key {key}"
        out["model.diffusion_model." + k] = value
    return out


def vae_to_ldm(state, config, prefix="first_stage_model."):
    n = len(config["block_out_channels"])
    attention = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
    out = {}
    for key, value in state.items():
        k = key
        m = re.match(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", k)
        if m:
            k = f"encoder.down.{m[1]}.block.{m[2]}.{m[3]}".replace("conv_shortcut", "nin_shortcut")
        m = re.match(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", k)
        if m:
            k = f"encoder.down.{m[1]}.downsample.conv.{m[2]}"
        m = re.match(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", k)
        if m:
            k = f"decoder.up.{n - 1 - int(m[1])}.block.{m[2]}.{m[3]}".replace("conv_shortcut", "nin_shortcut")
        m = re.match(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", k)
        if m:
            k = f"decoder.up.{n - 1 - int(m[1])}.upsample.conv.{m[2]}"
        m = re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.*)", k)
        if m:
            k = f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3]}".replace("conv_shortcut", "nin_shortcut")
        m = re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.*)\.(weight|bias)", k)
        if m:
            k = f"{m[1]}.mid.attn_1.{attention[m[2]]}.{m[3]}"
            if m[3] == "weight" and value.ndim == 2:
                value = value[:, :, None, None]     # ldm's attention projections are 1x1 convs
        m = re.match(r"(encoder|decoder)\.conv_norm_out\.(.*)", k)
        if m:
            k = f"{m[1]}.norm_out.{m[2]}"
        out[prefix + k] = value
    return out


def deprecated_vae_attention_names(state):
    rename = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
    out = {}
    for key, value in state.items():
        m = re.match(r"(.*\.mid_block\.attentions\.0)\.(to_q|to_k|to_v|to_out\.0)\.(weight|bias)", key)
        out[f"{m[1]}.{rename[m[2]]}.{m[3]}" if m else key] = value
    return out


def half(state):
    return {k: v.detach().half().contiguous() for k, v in state.items()}


def check_round_trip(ldm, reference, convert, config):
    back = convert(dict(ldm), config)
    assert set(back) == set(reference), sorted(set(back) ^ set(reference))[:10]
    for k in reference:
        assert torch.equal(back[k].float().reshape(reference[k].shape), reference[k].float()), k


def write_folder(path, components):
    os.makedirs(path, exist_ok=True)
    index = {"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.35.2"}
    for name, cls in components:
        index[name] = ["diffusers", cls]
    with open(os.path.join(path, "model_index.json"), "w") as f:
        json.dump(index, f, indent=2, sort_keys=True)


def shapes_json(state, path):
    with open(path, "w") as f:
        json.dump({k: list(v.shape) for k, v in state.items()}, f, separators=(",", ":"), sort_keys=True)


def main():
    torch.manual_seed(0)
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)

    unets = {"sd1": randomize(UNet2DConditionModel(**UNET_SD1), 1), "sd2": randomize(UNet2DConditionModel(**UNET_SD2), 2)}
    vae = randomize(AutoencoderKL(**VAE), 3)
    vae_state = half(vae.state_dict())
    vae_ldm = vae_to_ldm(vae_state, VAE)
    check_round_trip(vae_ldm, vae_state, convert_ldm_vae_checkpoint, vae.config)

    for name, unet in unets.items():
        config = UNET_SD1 if name == "sd1" else UNET_SD2
        state = half(unet.state_dict())
        ldm = unet_to_ldm(state, config)
        check_round_trip(ldm, state, convert_ldm_unet_checkpoint, unet.config)
        single = dict(ldm)
        single.update(vae_ldm)
        folder = os.path.join(OUT, f"unet_vae_{name}_diffusers")
        write_folder(folder, [("unet", "UNet2DConditionModel"), ("vae", "AutoencoderKL")])
        if name == "sd1":
            # A training checkpoint: weights under state_dict, EMA copies (flattened names) and
            # the schedule buffers beside them, step counters outside.
            single["model_ema.decay"] = torch.tensor(0.9999)
            single["model_ema.num_updates"] = torch.tensor(1000, dtype=torch.int32)
            for k in list(ldm)[:3]:
                single["model_ema." + "".join(k.split(".")[1:])] = ldm[k].clone()
            single["alphas_cumprod"] = torch.cumprod(1 - torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000) ** 2, 0)
            torch.save({"state_dict": single, "global_step": 1000, "epoch": 1}, os.path.join(OUT, "unet_vae_sd1.ckpt"))
            unet.half().save_pretrained(os.path.join(folder, "unet"), variant="fp16")
            vae.half().save_pretrained(os.path.join(folder, "vae"))
            vae.float()
        else:
            save_file(single, os.path.join(OUT, "unet_vae_sd2.safetensors"))
            unet.half().save_pretrained(os.path.join(folder, "unet"), max_shard_size="250KB")
            vae.save_config(os.path.join(folder, "vae"))
            save_file(deprecated_vae_attention_names(vae_state), os.path.join(folder, "vae", "diffusion_pytorch_model.safetensors"))
        unet.float()

        # Parity data: eps at several timesteps (fractional too) with a 77-token context.
        g = torch.Generator().manual_seed(10 + len(name))
        x = torch.randn(2, 4, 8, 12, generator=g)
        context = torch.randn(2, 77, config["cross_attention_dim"], generator=g)
        io = {"x": x, "context": context}
        for tag, t in [("a", [999.0, 1.0]), ("b", [500.0, 250.5])]:
            with torch.no_grad():
                io[f"timesteps_{tag}"] = torch.tensor(t)
                io[f"eps_{tag}"] = unet(x, torch.tensor(t), encoder_hidden_states=context).sample
        save_file(io, os.path.join(OUT, f"unet_{name}_io.safetensors"))

    g = torch.Generator().manual_seed(20)
    images = torch.rand(2, 3, 16, 12, generator=g) * 2 - 1
    with torch.no_grad():
        dist = vae.encode(images).latent_dist
    z = torch.randn(2, 4, 8, 6, generator=g).requires_grad_(True)
    decoded = vae.decode(z).sample
    r = torch.randn(decoded.shape, generator=g)
    (grad_z,) = torch.autograd.grad((decoded * r).sum(), z)
    save_file({"images": images, "mean": dist.mean.contiguous(), "logvar": dist.logvar.contiguous(), "z": z.detach(), "decoded": decoded.detach(),
               "r": r, "grad_z": grad_z}, os.path.join(OUT, "vae_io.safetensors"))

    # Full-size names and shapes, CompVis layout, from models built on the meta device.
    with torch.device("meta"):
        for tag, cfg in [("sd15", UNET_SD15_FULL), ("sd21", UNET_SD21_FULL)]:
            model = UNet2DConditionModel(**cfg)
            shapes_json(unet_to_ldm(model.state_dict(), {**model.config}), os.path.join(OUT, f"unet_keys_{tag}.json"))
        model = AutoencoderKL(**VAE_SD_FULL)
        shapes_json(vae_to_ldm(model.state_dict(), VAE_SD_FULL), os.path.join(OUT, "vae_keys_sd.json"))

    total = 0
    for root, _, files in os.walk(OUT):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    print(f"wrote {OUT}: {total / 1e6:.2f} MB")
    for name, unet in unets.items():
        print(name, "UNet parameters", sum(p.numel() for p in unet.parameters()))
    print("VAE parameters", sum(p.numel() for p in vae.parameters()))


if __name__ == "__main__":
    main()
