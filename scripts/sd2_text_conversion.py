"""diffusers' conversion of a Stable Diffusion 2.x text tower, shared by the SD fixture scripts
(dev-only; needs the venv from scripts/setup-dev-venv.sh)."""
from transformers import CLIPTextConfig, CLIPTextModel
from diffusers.loaders.single_file_utils import convert_open_clip_checkpoint


def diffusers_sd2_text_encoder(compvis, layers, width, heads, vocab, bos, eos):
    """The CLIPTextModel that diffusers' own single-file converter makes of an OpenCLIP text
    tower saved in the CompVis names (`cond_stage_model.model.*`, `layers` blocks): one block
    shorter, as diffusers stores SD 2.x (it reads the penultimate block), erf GELU, pad id 0.
    diffusers' ignore list names SD 2's real last block (23); the tiny tower's last block is
    dropped the same way. Asserts that nothing but the position_ids buffer is missing."""
    config = CLIPTextConfig(vocab_size=vocab, hidden_size=width, intermediate_size=4 * width, num_hidden_layers=layers - 1,
                            num_attention_heads=heads, max_position_embeddings=77, hidden_act="gelu",
                            bos_token_id=bos, eos_token_id=eos, pad_token_id=0)
    model = CLIPTextModel(config).eval()
    last = f"cond_stage_model.model.transformer.resblocks.{layers - 1}."
    converted = convert_open_clip_checkpoint(model, {k: v for k, v in compvis.items() if not k.startswith(last)})
    converted.pop("text_projection.weight", None)
    missing, unexpected = model.load_state_dict(converted, strict=False)
    assert not unexpected and all("position_ids" in k for k in missing), (missing, unexpected)
    return model
