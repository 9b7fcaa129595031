#!/usr/bin/env python3
"""Writes the UNet parity fixtures (dev-only; needs the venv from scripts/setup-dev-venv.sh).

For each small config, builds guided-diffusion's own UNetModel (PyPI guided-diffusion-sdk)
with random weights, saves the state dict with torch.save (unchanged official key names),
and saves inputs, outputs and the input gradient of sum(output * r) to a safetensors file.
Weights are stored as float16 to keep the fixtures small; the reference runs in float32
on exactly those rounded values, so the Swift side must reproduce it to float32 precision.

    .venv/bin/python scripts/make-unet-fixtures.py
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file
from guided_diffusion.unet import UNetModel

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "BlendModelsTests", "Fixtures")

# JSON configs use the same keys as Swift's UNetConfig (guided-diffusion flag names).
VARIANTS = {
    # The ADM-256 layout in miniature: scale-shift norm, resblock up/down, legacy attention
    # with num_head_channels, learned sigma (channel changes: the 1x1 skip convs of the decoder).
    "unet_tiny": dict(image_size=16, num_channels=32, num_res_blocks=1, channel_mult=[1, 1],
                      attention_resolutions=[8], num_head_channels=16, learn_sigma=True,
                      use_scale_shift_norm=True, resblock_updown=True),
    # The other code paths: additive embedding, conv resampling, new attention order,
    # num_heads, class conditioning, no learned sigma.
    "unet_variant": dict(image_size=16, num_channels=32, num_res_blocks=1, channel_mult=[1, 1],
                         attention_resolutions=[16, 8], num_heads=2, learn_sigma=False, num_classes=10,
                         use_scale_shift_norm=False, resblock_updown=False, use_new_attention_order=True),
}


def build(cfg):
    image_size = cfg["image_size"]
    return UNetModel(
        image_size=image_size,
        in_channels=3,
        model_channels=cfg["num_channels"],
        out_channels=6 if cfg.get("learn_sigma", True) else 3,
        num_res_blocks=cfg["num_res_blocks"],
        attention_resolutions=tuple(image_size // r for r in cfg["attention_resolutions"]),
        dropout=0.0,
        channel_mult=tuple(cfg["channel_mult"]),
        conv_resample=cfg.get("conv_resample", True),
        num_classes=cfg.get("num_classes"),
        num_heads=cfg.get("num_heads", 4),
        num_head_channels=cfg.get("num_head_channels", -1),
        use_scale_shift_norm=cfg.get("use_scale_shift_norm", True),
        resblock_updown=cfg.get("resblock_updown", True),
        use_new_attention_order=cfg.get("use_new_attention_order", False),
    )


def main():
    os.makedirs(OUT, exist_ok=True)
    for seed, (name, cfg) in enumerate(VARIANTS.items()):
        torch.manual_seed(seed)
        model = build(cfg).eval()
        # zero_module() zeroes some convs at init; give every tensor random values so every
        # weight matters, scaled so activations stay O(1).
        with torch.no_grad():
            for key, p in model.state_dict().items():
                fan_in = p[0].numel() if p.dim() > 1 else 1
                p.copy_((torch.randn_like(p) / fan_in ** 0.5).half().float())
        state = {k: v.half() for k, v in model.state_dict().items()}
        torch.save(state, os.path.join(OUT, f"{name}.pt"))
        with open(os.path.join(OUT, f"{name}.json"), "w") as f:
            json.dump(cfg, f, indent=2)

        batch = 2
        x = torch.randn(batch, 3, cfg["image_size"], cfg["image_size"], requires_grad=True)
        t = torch.tensor([3.0, 517.5])
        y = torch.tensor([1, 7]) if cfg.get("num_classes") else None
        out = model(x, t, y)
        r = torch.randn_like(out)
        (grad,) = torch.autograd.grad((out * r).sum(), x)
        tensors = {"x": x.detach(), "timesteps": t, "output": out.detach(), "r": r, "grad_x": grad}
        if y is not None:
            tensors["classes"] = y.float()
        save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, f"{name}_io.safetensors"))
        params = sum(p.numel() for p in model.parameters())
        print(f"{name}: {params} parameters, output {tuple(out.shape)}", file=sys.stderr)

    # The full-size ADM-256 config must have exactly this many parameters.
    full = build(dict(image_size=256, num_channels=256, num_res_blocks=2, channel_mult=[1, 1, 2, 2, 4, 4],
                      attention_resolutions=[32, 16, 8], num_head_channels=64))
    print("ADM-256 uncond parameters:", sum(p.numel() for p in full.parameters()), file=sys.stderr)


if __name__ == "__main__":
    main()
