#!/usr/bin/env python3
"""PyTorch (CPU) reference timings for the blend tensor engine benchmark.

Times the same operations, under the same names, as the Swift `blend-bench`
executable, so that bench/compare.py can put the two side by side. Every
operation runs in float32 with a fixed seed; each is warmed up and then run
--repeats times, and the median wall-clock time (time.perf_counter) is
reported.

Output: one JSON object per line on stdout,
    {"name": "sgemm_2048", "seconds": 0.123, "runs": 5, "gflops": 139.6}
("gflops" only where the operation has a defined FLOP count). Diagnostics
and progress go to stderr.

Developer-only; needs the venv from scripts/setup-dev-venv.sh.
"""

import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

DTYPE = torch.float32

# Shapes shared by the conv and group norm operations: [N, C, H, W].
FEATURE_SHAPE = (1, 256, 256, 256)
CONV_FLOP = 2 * 256 * 256 * 9 * 256 * 256  # 2 * Cout * Cin * kH*kW * H*W
SGEMM_N = 2048
SGEMM_FLOP = 2 * SGEMM_N**3
ATTN_HEADS, ATTN_TOKENS, ATTN_HEAD_DIM = 8, 1024, 64


def log(message):
    print(message, file=sys.stderr, flush=True)


def randn(*shape, scale=1.0):
    return torch.randn(*shape, dtype=DTYPE) * scale


# Each op builder creates its inputs and returns (run, flop): `run` is the
# zero-argument callable that is timed, `flop` the FLOP count or None.


def op_sgemm_2048():
    a = randn(SGEMM_N, SGEMM_N)
    b = randn(SGEMM_N, SGEMM_N)

    def run():
        with torch.no_grad():
            return a @ b

    return run, SGEMM_FLOP


def conv_inputs():
    n, c, h, w_ = FEATURE_SHAPE
    x = randn(n, c, h, w_)
    w = randn(c, c, 3, 3, scale=1.0 / math.sqrt(c * 9))
    b = randn(c, scale=0.1)
    return x, w, b


def op_conv3x3_256_fwd():
    x, w, b = conv_inputs()

    def run():
        with torch.no_grad():
            return F.conv2d(x, w, b, padding=1)

    return run, CONV_FLOP


def op_conv3x3_256_bwd_input():
    x, w, b = conv_inputs()
    g = randn(*FEATURE_SHAPE)
    check_conv2d_input(x, w, b, g)

    def run():
        with torch.no_grad():
            return torch.nn.grad.conv2d_input(x.shape, w, g, padding=1)

    return run, None


def check_conv2d_input(x, w, b, g):
    """Once, untimed: conv2d_input must equal autograd's gradient w.r.t. x."""
    xr = x.detach().clone().requires_grad_()
    y = F.conv2d(xr, w, b, padding=1)
    (expected,) = torch.autograd.grad(y, xr, g)
    with torch.no_grad():
        got = torch.nn.grad.conv2d_input(x.shape, w, g, padding=1)
    max_err = (got - expected).abs().max().item()
    max_ref = expected.abs().max().item()
    rel = max_err / max(max_ref, 1e-30)
    log(f"check conv2d_input vs autograd: max|diff| = {max_err:.3e} "
        f"(max|ref| = {max_ref:.3e}, relative {rel:.3e})")
    # Independent of autograd: the input gradient is the adjoint of the
    # (bias-free) convolution, so <conv(r), g> == <r, conv2d_input(g)>.
    r = torch.randn_like(x)
    with torch.no_grad():
        lhs = (F.conv2d(r, w, padding=1).double() * g.double()).sum().item()
        rhs = (r.double() * got.double()).sum().item()
    adj = abs(lhs - rhs) / max(abs(lhs), abs(rhs), 1e-30)
    log(f"check conv2d_input adjoint identity: relative difference {adj:.3e}")
    if rel > 1e-4 or adj > 1e-4:
        raise SystemExit("conv2d_input check failed; aborting")


def groupnorm_inputs():
    c = FEATURE_SHAPE[1]
    x = randn(*FEATURE_SHAPE)
    weight = 1.0 + randn(c, scale=0.1)
    bias = randn(c, scale=0.1)
    return x, weight, bias


def op_groupnorm_256_fwd():
    x, weight, bias = groupnorm_inputs()

    def run():
        with torch.no_grad():
            return F.group_norm(x, 32, weight, bias, eps=1e-5)

    return run, None


def op_groupnorm_256_bwd_input():
    x, weight, bias = groupnorm_inputs()
    g = randn(*FEATURE_SHAPE)
    x.requires_grad_()
    # Forward once, outside the timer; only the backward is timed.
    y = F.group_norm(x, 32, weight, bias, eps=1e-5)

    def run():
        return torch.autograd.grad(y, x, g, retain_graph=True)

    return run, None


def attention(q, k, v):
    """softmax(q k^T / sqrt(d)) v, written out as the diffusion UNet does."""
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    return torch.softmax(scores, dim=-1) @ v


def attention_inputs():
    shape = (ATTN_HEADS, ATTN_TOKENS, ATTN_HEAD_DIM)
    return randn(*shape), randn(*shape), randn(*shape)


def op_attention_1024x512_fwd():
    q, k, v = attention_inputs()

    def run():
        with torch.no_grad():
            return attention(q, k, v)

    return run, None


def op_attention_1024x512_fwd_bwd():
    q, k, v = attention_inputs()
    g = randn(ATTN_HEADS, ATTN_TOKENS, ATTN_HEAD_DIM)
    for t in (q, k, v):
        t.requires_grad_()

    def run():
        out = attention(q, k, v)
        return torch.autograd.grad((out * g).sum(), (q, k, v))

    return run, None


def adm256_uncond():
    """guided-diffusion's full-size 256x256 unconditional UNet with random weights (fp32)."""
    from guided_diffusion.unet import UNetModel

    model = UNetModel(image_size=256, in_channels=3, model_channels=256, out_channels=6,
                      num_res_blocks=2, attention_resolutions=(8, 16, 32), dropout=0.0,
                      channel_mult=(1, 1, 2, 2, 4, 4), num_head_channels=64,
                      use_scale_shift_norm=True, resblock_updown=True).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def op_unet_adm256_fwd():
    model = adm256_uncond()
    x = randn(1, 3, 256, 256)
    t = torch.tensor([500.0])

    def run():
        with torch.no_grad():
            return model(x, t)

    return run, None


def op_unet_adm256_fwd_bwd():
    model = adm256_uncond()
    x = randn(1, 3, 256, 256)
    t = torch.tensor([500.0])

    def run():
        xl = x.clone().requires_grad_()
        return torch.autograd.grad(model(xl, t).sum(), xl)

    return run, None


def op_clip_vitb16_b8_fwd_bwd():
    """OpenAI CLIP ViT-B/16's image tower, random weights, float32: 8 views forward + backward."""
    from clip.model import CLIP

    model = CLIP(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=16,
                 context_length=77, vocab_size=49408, transformer_width=512, transformer_heads=8,
                 transformer_layers=12).float().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    images = randn(8, 3, 224, 224)

    def run():
        x = images.clone().requires_grad_()
        return torch.autograd.grad(model.encode_image(x).sum(), x)

    return run, None


def op_edit_step_adm256():
    """One guided DDPM step of Blended Diffusion the way the reference runs it (random weights):
    p_sample evaluates the UNet without gradients, then cond_fn evaluates it again with
    gradients, embeds 8 views (kornia RandomAffine + RandomPerspective) with CLIP ViT-B/16 and
    backpropagates through both; then the blend with the noised source."""
    import kornia.augmentation as K
    from clip.model import CLIP
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
    from reference_guidance import make_cond_fn, spaced_diffusion

    unet = adm256_uncond()
    clip_model = CLIP(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=16,
                      context_length=77, vocab_size=49408, transformer_width=512, transformer_heads=8,
                      transformer_layers=12).float().eval().requires_grad_(False)
    diffusion = spaced_diffusion("100")
    warps = torch.nn.Sequential(K.RandomAffine(degrees=15, translate=0.1, p=0.7, padding_mode="border"),
                                K.RandomPerspective(0.7, p=0.7))
    text = torch.nn.functional.normalize(randn(1, 512), dim=-1)
    source = randn(1, 3, 256, 256).clamp(-1, 1)
    mask = torch.zeros(1, 1, 256, 256)
    mask[..., 64:192, 64:192] = 1
    x = randn(1, 3, 256, 256)
    t_index = 74

    def views(masked):
        resized = F.adaptive_avg_pool2d(masked, (224, 224))
        return torch.cat([resized, warps(resized.repeat(7, 1, 1, 1))])

    cond_fn = make_cond_fn(diffusion, unet, clip_model, text, mask, views)

    def run():
        t = torch.tensor([t_index])
        with torch.no_grad():
            out = diffusion.p_sample(unet, x, t, clip_denoised=False, cond_fn=cond_fn, model_kwargs={})
            background = diffusion.q_sample(source, t)
            return out["sample"] * mask + background * (1 - mask)

    return run, None


def sd15_unet():
    """Stable Diffusion 1.5's UNet (runwayml/stable-diffusion-v1-5 unet/config.json), random weights."""
    from diffusers import UNet2DConditionModel

    model = UNet2DConditionModel(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                                 block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768,
                                 attention_head_dim=8, norm_num_groups=32, norm_eps=1e-5,
                                 down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                                 up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3).eval()
    return model.requires_grad_(False)


def sd15_vae():
    """Stable Diffusion 1.5's AutoencoderKL (vae/config.json), random weights."""
    from diffusers import AutoencoderKL

    model = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
                          block_out_channels=(128, 256, 512, 512), sample_size=512,
                          down_block_types=("DownEncoderBlock2D",) * 4,
                          up_block_types=("UpDecoderBlock2D",) * 4).eval()
    return model.requires_grad_(False)


def op_sd15_unet_cfg_step():
    """One classifier-free-guidance step as diffusers' StableDiffusionPipeline runs it: the UNet on
    the latent twice (batch 2) with the unconditional and the prompt's context, then the guidance."""
    unet = sd15_unet()
    latent = randn(1, 4, 64, 64)
    context = randn(2, 77, 768)
    t = torch.tensor(500)

    def run():
        with torch.no_grad():
            eps = unet(torch.cat([latent, latent]), t, encoder_hidden_states=context).sample
            uncond, cond = eps.chunk(2)
            return uncond + 7.5 * (cond - uncond)

    return run, None


def op_sd15_vae_encode_512():
    vae = sd15_vae()
    image = randn(1, 3, 512, 512).clamp(-1, 1)

    def run():
        with torch.no_grad():
            return vae.encode(image).latent_dist.mean

    return run, None


def op_sd15_vae_decode_512():
    vae = sd15_vae()
    z = randn(1, 4, 64, 64)

    def run():
        with torch.no_grad():
            return vae.decode(z).sample

    return run, None


def op_sd15_text_encoder():
    """CLIP ViT-L/14's text tower (SD 1.5 text_encoder/config.json), random weights, batch 2 x 77."""
    model = sd15_text_encoder()
    tokens = torch.randint(0, 49408, (2, 77))

    def run():
        with torch.no_grad():
            return model(tokens).last_hidden_state

    return run, None


def sd15_text_encoder():
    """CLIP ViT-L/14's text tower (SD 1.5 text_encoder/config.json), random weights."""
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                            num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
                            projection_dim=768)
    return CLIPTextModel(config).eval().requires_grad_(False)


def op_sd15_edit_default():
    """A whole default one-sample Blended Latent Diffusion edit at 512^2 on diffusers, the work of
    blend-bench's sd15_edit_default: both prompts through the text encoder, the VAE encode (posterior
    mean x 0.18215), the source latent noised to the first step that runs, DPM-Solver++(2M) with 25
    steps of which strength 0.75 runs the last 18 (img2img's rule), each step a classifier-free-guidance
    UNet call on batch 2 (scale 7.5), the scheduler step, then the latent kept inside the mask and
    replaced outside by the source latent noised to the level the step reached (Avrahami et al. 2023,
    section 3: the same noise level; the clean source after the last step), the VAE decode, and the
    decoded image composited over the source with the pixel mask. Random weights, float32."""
    from diffusers import DPMSolverMultistepScheduler

    unet, vae, encoder = sd15_unet(), sd15_vae(), sd15_text_encoder()
    # diffusers' defaults otherwise: dpmsolver++, order 2, midpoint, lower_order_final, linspace spacing.
    scheduler = DPMSolverMultistepScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                                            beta_schedule="scaled_linear")
    steps, strength, guidance, scaling = 25, 0.75, 7.5, 0.18215
    image = randn(1, 3, 512, 512).clamp(-1, 1)
    mask = torch.zeros(1, 1, 512, 512)
    mask[..., 128:384, 128:384] = 1
    latent_mask = (F.interpolate(mask, size=(64, 64), mode="nearest") >= 0.5).float()
    generator = torch.Generator().manual_seed(78)
    prompt = torch.tensor([[49406] + torch.randint(0, 49000, (5,), generator=generator).tolist() + [49407] * 71])
    empty = torch.tensor([[49406] + [49407] * 76])
    alphas_cumprod = scheduler.alphas_cumprod

    def noised(x0, noise, alpha_bar):
        return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise

    def run():
        with torch.no_grad():
            noise = torch.Generator().manual_seed(404)
            context = torch.cat([encoder(empty).last_hidden_state, encoder(prompt).last_hidden_state])
            source = vae.encode(image).latent_dist.mean * scaling
            scheduler.set_timesteps(steps)
            timesteps = scheduler.timesteps
            start = steps - min(int(steps * strength), steps)
            scheduler.set_begin_index(start)
            x = noised(source, torch.randn(source.shape, generator=noise), alphas_cumprod[timesteps[start]])
            for i in range(start, steps):
                t = timesteps[i]
                eps = unet(torch.cat([x, x]), t, encoder_hidden_states=context).sample
                uncond, cond = eps.chunk(2)
                x = scheduler.step(uncond + guidance * (cond - uncond), t, x).prev_sample
                level = alphas_cumprod[timesteps[i + 1]] if i + 1 < steps else torch.tensor(1.0)
                background = noised(source, torch.randn(source.shape, generator=noise), level)
                x = x * latent_mask + background * (1 - latent_mask)
            edited = vae.decode(x / scaling).sample
            return edited * mask + image * (1 - mask)

    return run, None


# Long-running ops: only when named with --only (as on the Swift side).
LONG_OPS = {
    "edit_step_adm256": op_edit_step_adm256,
    "clip_vitb16_b8_fwd_bwd": op_clip_vitb16_b8_fwd_bwd,
    "unet_adm256_fwd": op_unet_adm256_fwd,
    "unet_adm256_fwd_bwd": op_unet_adm256_fwd_bwd,
    "sd15_unet_cfg_step": op_sd15_unet_cfg_step,
    "sd15_vae_encode_512": op_sd15_vae_encode_512,
    "sd15_vae_decode_512": op_sd15_vae_decode_512,
    "sd15_text_encoder": op_sd15_text_encoder,
    "sd15_edit_default": op_sd15_edit_default,
}

OPS = {
    "sgemm_2048": op_sgemm_2048,
    "conv3x3_256_fwd": op_conv3x3_256_fwd,
    "conv3x3_256_bwd_input": op_conv3x3_256_bwd_input,
    "groupnorm_256_fwd": op_groupnorm_256_fwd,
    "groupnorm_256_bwd_input": op_groupnorm_256_bwd_input,
    "attention_1024x512_fwd": op_attention_1024x512_fwd,
    "attention_1024x512_fwd_bwd": op_attention_1024x512_fwd_bwd,
}


def time_op(name, builder, repeats, warmup, autocast_bf16=False):
    torch.manual_seed(0)  # same inputs whatever --only selects
    run, flop = builder()
    if autocast_bf16:
        # PyTorch's mixed precision on the CPU: eligible ops (convolutions, matmuls, linear)
        # in bfloat16, the rest in float32 -- the counterpart of blend's --precision bf16.
        plain = run

        def run():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return plain()

        name += "_bf16"
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    result = {"name": name, "seconds": seconds, "runs": repeats, "peak_rss_gib": peak_gib}
    if flop is not None:
        result["gflops"] = flop / seconds / 1e9
    log(f"{name}: median {seconds:.4f} s over {repeats} runs "
        f"(min {min(times):.4f}, max {max(times):.4f})")
    return result


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed runs per op; the median is reported (default 5)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed warm-up runs per op (default 1)")
    parser.add_argument("--only", default=None, metavar="NAME[,NAME]",
                        help="comma-separated op names; default all of: "
                        + ", ".join(OPS))
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                        help="bf16: run each op under torch.autocast(\"cpu\", bfloat16); "
                        "the op names get \"_bf16\" appended (default fp32)")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch.set_num_threads (default 2)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in OPS and n not in LONG_OPS]
        if unknown:
            parser.error(f"unknown op(s): {', '.join(unknown)}; "
                         f"known: {', '.join(list(OPS) + list(LONG_OPS))}")
        args.names = names
    else:
        args.names = list(OPS)
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_default_dtype(DTYPE)
    log(f"torch {torch.__version__}; threads {torch.get_num_threads()}; "
        f"mkldnn available {torch.backends.mkldnn.is_available()}")
    for name in args.names:
        result = time_op(name, OPS.get(name) or LONG_OPS[name], args.repeats, args.warmup,
                         autocast_bf16=args.precision == "bf16")
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
