#!/usr/bin/env python3
"""Writes the parts that complete the tiny Stable Diffusion UNet/VAE fixtures of
scripts/make-sd-fixtures.py into whole SD models for the pipeline's end-to-end tests
(dev-only; needs the venv from scripts/setup-dev-venv.sh: transformers 4.57, diffusers 0.35,
open_clip_torch 3.x). Tiny random weights built from configs; nothing is downloaded.

Tests/BlendPipelineTests/Fixtures/sd/:
  - text_sd1_compvis.safetensors: a CLIPTextModel (QuickGELU) 16 wide, the tiny SD 1.x UNet's
    context width, under the CompVis names (cond_stage_model.transformer.text_model.*);
  - text_sd2_compvis.safetensors: an OpenCLIP text tower (erf GELU) 24 wide, the tiny SD 2.x
    UNet's context width, under the CompVis names (cond_stage_model.model.*);
  - sd1_diffusers/, sd2_diffusers/: the same encoders as diffusers stores them (text_encoder/;
    SD 2.x's converted by diffusers' single-file converter, one block shorter), with
    tokenizer/special_tokens_map.json (the pad token) and scheduler/scheduler_config.json
    (SD 1.5's published config; SD 2.1's, v-prediction, for the sd2 set);
  - vocab_86_merges.txt.gz: the head (header + first 86 merges) of CLIP's BPE vocabulary
    (from Tests/BlendModelsTests/Fixtures/clip_vocab_head.txt.gz), whose 600 ids fit these
    encoders: the vocabulary the pipeline's end-to-end latent edits tokenize with.
The tests copy these beside the UNet and VAE fixtures (a merged single file, a whole folder).

    .venv/bin/python scripts/make-sd-pipeline-fixtures.py
"""
import gzip
import json
import os

import torch
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel
from open_clip.transformer import TextTransformer
from sd2_text_conversion import diffusers_sd2_text_encoder

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "BlendPipelineTests", "Fixtures", "sd")
VOCAB, HEADS = 600, 2
BOS, EOS = VOCAB - 2, VOCAB - 1

SD15_SCHEDULER = {
    "_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "beta_start": 0.00085, "clip_sample": False, "num_train_timesteps": 1000, "set_alpha_to_one": False,
    "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
}
SD21_SCHEDULER = {
    "_class_name": "DDIMScheduler", "_diffusers_version": "0.8.0", "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "beta_start": 0.00085, "clip_sample": False, "num_train_timesteps": 1000, "prediction_type": "v_prediction",
    "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
}


def randomise(module, generator):
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("norm.weight") or name.endswith("ln_1.weight") or name.endswith("ln_2.weight") \
                    or name.endswith("ln_final.weight") or ("layer_norm" in name and name.endswith("weight")):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=generator))
            else:
                p.copy_(0.3 * torch.randn(p.shape, generator=generator))


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def extras(folder, pad_token, scheduler):
    write_json(os.path.join(folder, "tokenizer", "special_tokens_map.json"),
               {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": pad_token,
                "unk_token": "<|endoftext|>"})
    write_json(os.path.join(folder, "scheduler", "scheduler_config.json"), scheduler)


def write_vocabulary():
    head = os.path.join(OUT, "..", "..", "..", "BlendModelsTests", "Fixtures", "clip_vocab_head.txt.gz")
    with gzip.open(head, "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    assert len(lines[1:87]) == VOCAB - 512 - 2
    with open(os.path.join(OUT, "vocab_86_merges.txt.gz"), "wb") as f:
        f.write(gzip.compress(("\n".join(lines[:87]) + "\n").encode(), mtime=0))


def main():
    os.makedirs(OUT, exist_ok=True)
    write_vocabulary()
    g = torch.Generator().manual_seed(23)

    # SD 1.x: 16 wide (the tiny UNet's cross_attention_dim), 2 layers.
    cfg1 = CLIPTextConfig(vocab_size=VOCAB, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
                          num_attention_heads=HEADS, max_position_embeddings=77, hidden_act="quick_gelu",
                          bos_token_id=BOS, eos_token_id=EOS, pad_token_id=EOS)
    m1 = CLIPTextModel(cfg1).eval()
    randomise(m1, g)
    sd = {"cond_stage_model.transformer." + k: v.contiguous() for k, v in m1.state_dict().items()}
    save_file(sd, os.path.join(OUT, "text_sd1_compvis.safetensors"))
    folder1 = os.path.join(OUT, "sd1_diffusers")
    m1.save_pretrained(os.path.join(folder1, "text_encoder"), safe_serialization=True)
    extras(folder1, "<|endoftext|>", SD15_SCHEDULER)

    # SD 2.x: an OpenCLIP tower 24 wide with 3 blocks; SD reads the penultimate one.
    layers = 3
    tower = TextTransformer(context_length=77, vocab_size=VOCAB, width=24, heads=HEADS, layers=layers, output_dim=8).eval()
    randomise(tower, g)
    sd = {"cond_stage_model.model." + k: v.contiguous() for k, v in tower.state_dict().items()}
    sd["cond_stage_model.model.logit_scale"] = torch.tensor(4.6052)
    save_file(sd, os.path.join(OUT, "text_sd2_compvis.safetensors"))
    m2 = diffusers_sd2_text_encoder(sd, layers=layers, width=24, heads=HEADS, vocab=VOCAB, bos=BOS, eos=EOS)
    tokens = torch.tensor([[BOS, 5, 9, EOS] + [0] * 73])
    with torch.no_grad():
        x = tower.token_embedding(tokens) + tower.positional_embedding
        for r in tower.transformer.resblocks[:-1]:
            x = r(x, attn_mask=tower.attn_mask)
        expected = tower.ln_final(x)
        err = (m2(tokens).last_hidden_state - expected).abs().max() / expected.abs().max()
    assert err < 1e-5, err
    folder2 = os.path.join(OUT, "sd2_diffusers")
    m2.save_pretrained(os.path.join(folder2, "text_encoder"), safe_serialization=True)
    extras(folder2, "!", SD21_SCHEDULER)


if __name__ == "__main__":
    main()
