#!/usr/bin/env python3
"""Writes the CLIP parity fixtures (dev-only; needs the venv from scripts/setup-dev-venv.sh).

Builds a tiny ViT CLIP with the reference implementation (clip-anytorch's clip.model.CLIP),
random weights rounded to float16 (as the official files store them), saves the state dict
with torch.save under the official key names, and saves images, token sequences, both
embeddings and the image gradient of sum(image_embedding * r) to a safetensors file.

    .venv/bin/python scripts/make-clip-fixtures.py
"""
import os
import sys

import torch
from safetensors.torch import save_file
from clip.model import CLIP

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "BlendModelsTests", "Fixtures")


def main():
    torch.manual_seed(0)
    # Tiny, but every structural feature of ViT-B/16: 64-channel heads (width // 64), class
    # token, 2 layers each, a 77-token causal text context. A small vocabulary keeps it small;
    # the highest id (499) plays the end-of-text token.
    model = CLIP(embed_dim=32, image_resolution=32, vision_layers=2, vision_width=64, vision_patch_size=8,
                 context_length=77, vocab_size=500, transformer_width=64, transformer_heads=1,
                 transformer_layers=2).eval()
    with torch.no_grad():
        for key, p in model.state_dict().items():
            if key == "logit_scale":
                continue
            fan_in = p.shape[-1] if p.dim() > 1 else 1
            if key.endswith("proj") or key == "text_projection":
                fan_in = p.shape[0]
            scale = 1 / fan_in ** 0.5 if p.dim() > 1 else 0.5
            base = 1.0 if key.endswith(("ln_1.weight", "ln_2.weight", "ln_pre.weight", "ln_post.weight", "ln_final.weight")) else 0.0
            p.copy_((base + scale * torch.randn_like(p)).half().float())
    state = {k: v.half() for k, v in model.state_dict().items()}
    torch.save(state, os.path.join(OUT, "clip_tiny.pt"))

    images = torch.randn(2, 3, 32, 32, requires_grad=True)
    image_emb = model.encode_image(images)
    r = torch.randn_like(image_emb)
    (grad,) = torch.autograd.grad((image_emb * r).sum(), images)

    tokens = torch.zeros(2, 77, dtype=torch.long)
    tokens[0, :6] = torch.tensor([498, 17, 230, 5, 77, 499])
    tokens[1, :12] = torch.tensor([498, 3, 3, 400, 401, 12, 9, 250, 251, 252, 13, 499])
    with torch.no_grad():
        text_emb = model.encode_text(tokens)

    save_file({"images": images.detach(), "image_embedding": image_emb.detach(), "r": r, "grad_images": grad,
               "tokens": tokens.float(), "text_embedding": text_emb},
              os.path.join(OUT, "clip_tiny_io.safetensors"))
    print("clip_tiny:", sum(p.numel() for p in model.parameters()), "parameters", file=sys.stderr)


if __name__ == "__main__":
    main()
