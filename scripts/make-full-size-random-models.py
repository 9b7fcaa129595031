#!/usr/bin/env python3
"""Writes full-size random-weight stand-ins for the pixel method's model files (dev-only; needs
the venv from scripts/setup-dev-venv.sh), in the official files' formats, for timing and memory
measurements of a whole `blend edit` where the real weights cannot be downloaded:

    .venv/bin/python scripts/make-full-size-random-models.py DIR
    .build/release/blend edit PHOTO --mask MASK --prompt "a red ball" --models-dir DIR --samples 1

- 256x256_diffusion_uncond.pt: guided-diffusion's UNet with the published 256x256 unconditional
  flags (552,814,086 parameters), its state dict saved with torch.save, float32 like the
  official file. Tensors the reference initialises to zero get small random values instead, so
  that no layer is degenerate.
- ViT-B-16.pt: clip-anytorch's CLIP with ViT-B/16's dimensions, its state dict in float16 (the
  official file is a TorchScript archive of the same tensors; blend reads both).
- bpe_simple_vocab_16e6.txt.gz: copied from the clip package (the real vocabulary).

The edits these make are noise; only their time and memory mean anything.
"""
import os
import shutil
import sys

import clip
import torch
from clip.model import CLIP
from guided_diffusion.script_util import create_model


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)

    unet = create_model(image_size=256, num_channels=256, num_res_blocks=2, channel_mult="", learn_sigma=True,
                        class_cond=False, use_checkpoint=False, attention_resolutions="32,16,8", num_heads=4,
                        num_head_channels=64, num_heads_upsample=-1, use_scale_shift_norm=True, dropout=0.0,
                        resblock_updown=True, use_fp16=False, use_new_attention_order=False)
    with torch.no_grad():
        for p in unet.parameters():
            if not p.any():
                p.normal_(0, 0.02)
    torch.save(unet.state_dict(), os.path.join(out, "256x256_diffusion_uncond.pt"))
    print("256x256_diffusion_uncond.pt:", sum(p.numel() for p in unet.parameters()), "parameters", file=sys.stderr)
    del unet

    vit = CLIP(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=16,
               context_length=77, vocab_size=49408, transformer_width=512, transformer_heads=8, transformer_layers=12)
    torch.save({k: v.half() for k, v in vit.state_dict().items()}, os.path.join(out, "ViT-B-16.pt"))
    print("ViT-B-16.pt:", sum(p.numel() for p in vit.parameters()), "parameters", file=sys.stderr)

    vocab = os.path.join(os.path.dirname(clip.__file__), "bpe_simple_vocab_16e6.txt.gz")
    shutil.copy(vocab, os.path.join(out, "bpe_simple_vocab_16e6.txt.gz"))


if __name__ == "__main__":
    main()
