#!/usr/bin/env python3
"""Writes the checkpoint-reader fixtures with real PyTorch and safetensors.

Developers only (needs the dev venv: scripts/setup-dev-venv.sh); the OUTPUT is
committed under Tests/BlendCheckpointTests/Fixtures so that neither users nor CI
need Python.

    .venv/bin/python scripts/make-checkpoint-fixtures.py            # rewrite fixtures
    .venv/bin/python scripts/make-checkpoint-fixtures.py --wrapped-only  # only wrapped/
    .venv/bin/python scripts/make-checkpoint-fixtures.py --limits-only   # only hostile/ limit files
    .venv/bin/python scripts/make-checkpoint-fixtures.py --big /tmp/big.pt
        # a ~2.2 GB fp32 state dict (552M random parameters) for measuring load
        # memory with `blend models inspect --load`; never commit it.

Every fixture's expected contents go to expected.json: per file, the tensors in
state_dict order with dtype, shape and float32 bit patterns (integers as
integers), so the Swift tests compare bit for bit.

Hostile files are written as raw bytes or with __reduce__ at pickling time; this
script never unpickles them.
"""
import argparse
import io
import json
import os
import pickle
import shutil
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path

import torch
import safetensors.torch

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "BlendCheckpointTests" / "Fixtures"
DTYPE_NAMES = {
    torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16", torch.float64: "float64",
    torch.int64: "int64", torch.int32: "int32", torch.int16: "int16", torch.int8: "int8", torch.uint8: "uint8",
    torch.bool: "bool",
}


def expected_entry(name, t):
    t = t.detach()
    entry = {"name": name, "dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape)}
    if t.is_floating_point():
        flat = t.float().contiguous().reshape(-1)
        entry["f32bits"] = flat.view(torch.int32).tolist()
        entry["f32bits"] = [b & 0xFFFFFFFF for b in entry["f32bits"]]
    else:
        entry["ints"] = t.reshape(-1).to(torch.int64).tolist()
    return entry


def flatten(obj, prefix=""):
    """Dotted names for the tensors in nested dicts/lists, as the Swift reader names them."""
    out = []
    if isinstance(obj, torch.Tensor):
        out.append((prefix or "tensor", obj))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(k, (str, int)) and not isinstance(k, bool):
                out += flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out += flatten(v, f"{prefix}.{i}" if prefix else str(i))
    return out


def state_dict_fixture():
    g = torch.Generator().manual_seed(1234)

    def randn(*shape):
        return torch.randn(*shape, generator=g)

    base = randn(4, 6)
    shared = randn(8)
    sd = OrderedDict()
    sd["f32"] = randn(3, 4)
    sd["f16"] = randn(2, 3).half()
    sd["bf16"] = randn(5).bfloat16()
    sd["f64"] = randn(2, 2).double()
    sd["i64"] = torch.arange(-3, 3, dtype=torch.int64) * 1_000_000_007
    sd["i32"] = torch.tensor([[-2**31, 2**31 - 1], [0, 7]], dtype=torch.int32)
    sd["u8"] = torch.tensor([0, 255, 7], dtype=torch.uint8)
    sd["flags"] = torch.tensor([True, False, True])
    sd["transposed"] = base.t()                        # stride (1, 6)
    sd["strided"] = base[1::2, 1::3]                   # offset 7, stride (12, 3)
    sd["shared_whole"] = shared                        # two tensors, one storage
    sd["shared_view"] = shared[2:6].view(2, 2)         # offset 2 into the same storage
    sd["scalar"] = torch.tensor(3.25)                  # 0-d
    sd["empty"] = torch.zeros(0, 3)
    sd["expanded"] = randn(3, 1).expand(3, 4)          # stride 0
    sd["f16_special"] = torch.tensor([0.0, -0.0, float("inf"), float("-inf"), float("nan"), 6e-8, 6.1e-5, 65504.0],
                                     dtype=torch.float16)
    sd["bf16_transposed"] = randn(4, 3).bfloat16().t()
    sd["param"] = torch.nn.Parameter(randn(2))
    sd["nested"] = {"inner": {"weight": randn(2, 2)}, "list": [randn(2), randn(1)], 3: randn(1)}
    sd["step"] = 7                                     # not a tensor: skipped
    sd["note"] = "fixture"
    return sd


class Scripted(torch.nn.Module):
    """Half-precision layers, a buffer, a plain tensor attribute (not in state_dict),
    an Optional bias left None, a ModuleList, and two differently sized copies of one
    class (TorchScript mangles their names)."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(99)
        self.proj = torch.nn.Linear(3, 2).half()
        self.conv = torch.nn.Conv2d(2, 2, 1, bias=False)
        self.blocks = torch.nn.ModuleList([torch.nn.Linear(2, 2), torch.nn.Linear(2, 4)])
        self.register_buffer("running", torch.randn(2, generator=g))
        self.scale = torch.nn.Parameter(torch.randn(1, generator=g).half())
        self.mask = torch.full((2, 2), float("-inf")).triu(1)  # plain attribute, like CLIP's attn_mask

    def forward(self, x):
        y = self.proj(x.half()).float() + self.running
        for block in self.blocks:
            y = block(y[..., :2])
        return y * self.scale.float() + self.mask.sum()


# ---------------------------------------------------------------- hostile files

class OsSystem:
    """Pickles as GLOBAL 'os system' + REDUCE; dumping it runs nothing."""

    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/blend-pwned",))


class Popen:
    def __reduce__(self):
        import subprocess
        return (subprocess.Popen, (["touch", "/tmp/blend-pwned"],))


def torch_zip(path, data_pkl, storages, prefix="archive"):
    """A zip laid out like torch.save's, written with zipfile (stored members)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(f"{prefix}/data.pkl", data_pkl)
        z.writestr(f"{prefix}/byteorder", "little")
        for key, raw in storages.items():
            z.writestr(f"{prefix}/data/{key}", raw)
        z.writestr(f"{prefix}/version", "3\n")


class FakeStorage:
    def __init__(self, key, numel, storage_type=torch.FloatStorage):
        self.key, self.numel, self.storage_type = key, numel, storage_type


class FakeTensor:
    """Pickles like a tensor (through _rebuild_tensor_v2) with any size/stride/offset."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2,
                (self.storage, self.offset, tuple(self.size), tuple(self.stride), False, OrderedDict()))


def fake_state_dict_pickle(obj):
    buf = io.BytesIO()
    p = pickle.Pickler(buf, protocol=2)
    p.persistent_id = lambda o: (("storage", o.storage_type, o.key, "cpu", o.numel)
                                 if isinstance(o, FakeStorage) else None)
    p.dump(obj)
    return buf.getvalue()


def write_hostile(expected_zip):
    out = OUT / "hostile"
    out.mkdir(parents=True, exist_ok=True)
    floats = struct.pack("<4f", 1, 2, 3, 4)

    # A state dict whose only value calls os.system when torch.load (without weights_only) reads it.
    evil = pickle.dumps({"weight": OsSystem()}, protocol=2)
    assert b"cos\nsystem\n" in evil or b"cposix\nsystem\n" in evil
    torch_zip(out / "os_system.pt", evil, {})

    # Protocol 4 uses STACK_GLOBAL: the name comes from two strings on the stack.
    evil4 = pickle.dumps(OrderedDict(w=Popen()), protocol=4)
    torch_zip(out / "stack_global_popen.pt", evil4, {})

    # The same attack in a legacy (non-zip) stream.
    legacy = io.BytesIO()
    pickle.dump(0x1950A86A20F9469CFC6C, legacy, protocol=2)
    pickle.dump(1001, legacy, protocol=2)
    pickle.dump({"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}},
                legacy, protocol=2)
    legacy.write(pickle.dumps({"weight": OsSystem()}, protocol=2))
    (out / "legacy_os_system.pth").write_bytes(legacy.getvalue())

    # A legacy stream whose magic number is off by one.
    good_legacy = (OUT / "state_dict_legacy.pt").read_bytes()
    magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    assert good_legacy.startswith(magic)
    wrong = pickle.dumps(0x1950A86A20F9469CFC6D, protocol=2)
    (out / "wrong_magic.pt").write_bytes(wrong + good_legacy[len(magic):])

    # Truncated archives: an interrupted download.
    data = (OUT / expected_zip).read_bytes()
    (out / "truncated.pt").write_bytes(data[: len(data) // 2])
    (out / "truncated_legacy.pt").write_bytes(good_legacy[: len(good_legacy) - 40])

    # Sizes no real tensor has: overflow of size x stride.
    absurd = fake_state_dict_pickle({"w": FakeTensor(FakeStorage("0", 4), 0, [2**40, 2**40], [2**40, 1])})
    torch_zip(out / "absurd_size.pt", absurd, {"0": floats})
    # A storage declaring 2**60 elements.
    huge_storage = fake_state_dict_pickle({"w": FakeTensor(FakeStorage("0", 2**60), 0, [4], [1])})
    torch_zip(out / "absurd_storage.pt", huge_storage, {"0": floats})
    # A 4x4 tensor on a 4-element storage.
    short = fake_state_dict_pickle({"w": FakeTensor(FakeStorage("0", 4), 0, [4, 4], [4, 1])})
    torch_zip(out / "storage_too_short.pt", short, {"0": floats})
    # A storage whose record holds fewer bytes than the pickle declares.
    short_record = fake_state_dict_pickle({"w": FakeTensor(FakeStorage("0", 16), 0, [16], [1])})
    torch_zip(out / "record_too_short.pt", short_record, {"0": floats})
    # A storage key with no record.
    missing = fake_state_dict_pickle({"w": FakeTensor(FakeStorage("7", 4), 0, [4], [1])})
    torch_zip(out / "missing_storage.pt", missing, {"0": floats})

    write_hostile_limits()

    # safetensors: two tensors sharing bytes [8, 16).
    def safetensors_file(name, header, payload):
        h = json.dumps(header).encode()
        (out / name).write_bytes(struct.pack("<Q", len(h)) + h + payload)

    safetensors_file("overlap.safetensors", {
        "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
        "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]},
    }, bytes(24))
    safetensors_file("offsets_past_end.safetensors", {
        "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
        "b": {"dtype": "F32", "shape": [1000], "data_offsets": [16, 4016]},
    }, bytes(32))
    safetensors_file("shape_mismatch.safetensors", {
        "a": {"dtype": "F16", "shape": [3, 3], "data_offsets": [0, 16]},
    }, bytes(16))
    safetensors_file("unknown_dtype.safetensors", {
        "a": {"dtype": "C64", "shape": [2], "data_offsets": [0, 16]},
    }, bytes(16))
    # A header length of 2**62 bytes.
    (out / "huge_header.safetensors").write_bytes(struct.pack("<Q", 2**62) + b"{}")


# ---------------------------------------------------------------- training checkpoints

class TinyNet(torch.nn.Module):
    """Parameters and buffers (BatchNorm's running statistics and its integer counter)."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 2)
        self.norm = torch.nn.BatchNorm1d(2)

    def forward(self, x):
        return self.norm(self.linear(x))


def write_wrapped():
    """Weights as training code saves them, for Checkpoint.modelWeights(): values are
    arange-based so the tests can tell the raw weights (w) from their EMA (w + 100)."""
    out = OUT / "wrapped"
    out.mkdir(parents=True, exist_ok=True)
    net = TinyNet()
    with torch.no_grad():
        for i, p in enumerate(net.parameters()):
            p.copy_(torch.arange(p.numel(), dtype=torch.float32).reshape(p.shape) + 10 * i)
        net.norm.running_mean.fill_(0.5)
        net.norm.running_var.fill_(2.0)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    net(torch.ones(4, 3)).pow(2).sum().backward()  # a training step, so the optimizer has state
    saved = {k: v.clone() for k, v in net.state_dict().items()}
    optimizer.step()
    with torch.no_grad():
        net.load_state_dict(saved)  # keep the arange values the tests expect
    raw = net.state_dict()
    # DistributedDataParallel prefixes every name with `module.`; the EMA (parameters only, as
    # torch.optim.swa_utils and many training loops keep it) is of the bare network.
    ddp = OrderedDict((f"module.{k}", v) for k, v in raw.items())
    ema = OrderedDict((k, p.detach() + 100) for k, p in net.named_parameters())
    torch.save({"model": ddp, "ema": ema, "optimizer": optimizer.state_dict(), "step": 10, "epoch": torch.tensor(3)},
               out / "training_ddp_ema.pt")
    # PyTorch Lightning: the LightningModule holds the network as `self.model`.
    torch.save({"epoch": 2, "global_step": 7, "pytorch-lightning_version": "2.4.0",
                "state_dict": OrderedDict((f"model.{k}", v) for k, v in raw.items()),
                "optimizer_states": [optimizer.state_dict()], "lr_schedulers": [],
                "hyper_parameters": {"lr": 1e-3}}, out / "lightning.ckpt")
    # Two sets of weights with nothing to prefer either, and optimizer state alone.
    torch.save({"model": raw, "state_dict": raw}, out / "two_models.pt")
    torch.save({"optimizer": optimizer.state_dict(), "step": 10}, out / "optimizer_only.pt")


def write_hostile_limits():
    """Files within every per-tensor bound that would still exhaust memory or time."""
    out = OUT / "hostile"
    out.mkdir(parents=True, exist_ok=True)
    one = struct.pack("<f", 1)
    # Ten 4096x4096 views with stride 0 of one float: each is allowed on its own (expanded
    # views exist), together 640 MiB from a file of a few hundred bytes.
    views = {f"w{i}": FakeTensor(FakeStorage("0", 1), 0, [4096, 4096], [0, 0]) for i in range(10)}
    torch_zip(out / "expanded_views.pt", fake_state_dict_pickle(views), {"0": one})
    # One tensor reached through 4**30 paths: lists of four references to one shared list.
    level = [FakeTensor(FakeStorage("0", 1), 0, [1], [1])]
    for _ in range(30):
        level = [level] * 4
    torch_zip(out / "shared_lists.pt", fake_state_dict_pickle({"w": level}), {"0": one})


def write_architecture_key_lists():
    """Names and shapes (no values) of the real networks, built on the meta device,
    for the architecture recogniser's tests: one `name dims` line per tensor."""
    out = OUT / "architectures"
    out.mkdir(parents=True, exist_ok=True)

    def write(name, state_dict):
        lines = [f"{k} {'x'.join(map(str, v.shape)) or '-'}" for k, v in state_dict.items()]
        (out / f"{name}.txt").write_text("\n".join(lines) + "\n")

    from guided_diffusion.script_util import create_model
    import clip.model
    import torchvision
    with torch.device("meta"):
        # The configurations the guided-diffusion README gives for its released models.
        common = dict(num_channels=256, num_res_blocks=2, learn_sigma=True, attention_resolutions="32,16,8",
                      num_head_channels=64, use_scale_shift_norm=True, resblock_updown=True)
        write("guided_diffusion_256_uncond", create_model(256, class_cond=False, **common).state_dict())
        write("guided_diffusion_512_cond", create_model(512, class_cond=True, **common).state_dict())
        # Upsampling by convolution instead of ResBlocks, 3 res blocks, no learned sigma.
        write("guided_diffusion_64_conv_resample",
              create_model(64, 128, 3, attention_resolutions="16,8", resblock_updown=False).state_dict())
        # clip.model.CLIP(embed_dim, image_resolution, vision_layers, vision_width, vision_patch_size,
        #                 context_length, vocab_size, transformer_width, transformer_heads, transformer_layers)
        write("clip_vit_b32", clip.model.CLIP(512, 224, 12, 768, 32, 77, 49408, 512, 8, 12).state_dict())
        write("clip_vit_b16", clip.model.CLIP(512, 224, 12, 768, 16, 77, 49408, 512, 8, 12).state_dict())
        write("clip_vit_l14", clip.model.CLIP(768, 224, 24, 1024, 14, 77, 49408, 768, 12, 12).state_dict())
        write("torchvision_vgg16", torchvision.models.vgg16(weights=None).state_dict())
    import lpips
    vgg_lin = Path(lpips.__file__).parent / "weights" / "v0.1" / "vgg.pth"
    write("lpips_vgg_lin", torch.load(vgg_lin, map_location="cpu", weights_only=True))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--big", help="write a ~2.2 GB random fp32 state dict here instead (not a fixture)")
    ap.add_argument("--wrapped-only", action="store_true", help="write only the training-checkpoint fixtures (wrapped/)")
    ap.add_argument("--limits-only", action="store_true", help="write only the resource-limit hostile files")
    args = ap.parse_args()

    if args.limits_only:
        write_hostile_limits()
        return

    if args.wrapped_only:
        torch.manual_seed(2024)
        write_wrapped()
        return

    if args.big:
        g = torch.Generator().manual_seed(0)
        # 552M parameters, as in guided-diffusion's 256x256 unconditional model, in a handful of tensors.
        sd = OrderedDict((f"block{i}.weight", torch.randn(6900, 10000, generator=g)) for i in range(8))
        torch.save(sd, args.big)
        print(f"wrote {args.big}: {sum(t.numel() for t in sd.values())} parameters, {os.path.getsize(args.big)} bytes")
        return

    torch.manual_seed(2024)  # default initialisers (the scripted module's layers) draw from it
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    expected = {}

    sd = state_dict_fixture()
    torch.save(sd, OUT / "state_dict_zip.pt")
    torch.save(sd, OUT / "state_dict_legacy.pt", _use_new_zipfile_serialization=False)
    entries = [expected_entry(n, t) for n, t in flatten(sd)]
    expected["state_dict_zip.pt"] = {"format": "torch.save zip archive", "entries": entries}
    expected["state_dict_legacy.pt"] = {"format": "legacy torch.save stream", "entries": entries}

    # A real module's state_dict: an OrderedDict carrying `_metadata` (pickled with BUILD)
    # and BatchNorm's 0-d int64 counter.
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(4, 2))
    torch.save(net.state_dict(), OUT / "module_state_dict.pt")
    expected["module_state_dict.pt"] = {"format": "torch.save zip archive",
                                        "entries": [expected_entry(n, t) for n, t in net.state_dict().items()]}

    module = torch.jit.script(Scripted())
    torch.jit.save(module, OUT / "scripted.pt")
    expected["scripted.pt"] = {"format": "TorchScript archive",
                               "entries": [expected_entry(n, t) for n, t in module.state_dict().items()]}

    g = torch.Generator().manual_seed(7)
    tensors = OrderedDict()
    tensors["embed.weight"] = torch.randn(4, 3, generator=g)
    tensors["half"] = torch.randn(3, 2, generator=g).half()
    tensors["brain"] = torch.randn(5, generator=g).bfloat16()
    tensors["ids"] = torch.tensor([[1, -2], [2**40, 3]], dtype=torch.int64)
    tensors["scalar"] = torch.tensor(0.5)
    safetensors.torch.save_file(tensors, OUT / "tensors.safetensors", metadata={"format": "pt", "source": "fixture"})
    # safetensors orders tensors by data offset; read the header to list them in that order.
    raw = (OUT / "tensors.safetensors").read_bytes()
    header = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
    order = sorted((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"])
    expected["tensors.safetensors"] = {"format": "safetensors", "metadata": header["__metadata__"],
                                       "entries": [expected_entry(k, tensors[k]) for k in order]}

    # PyTorch's own float32 -> float16/bfloat16 rounding, for checking the writer's.
    g = torch.Generator().manual_seed(11)
    exponents = torch.randint(-30, 20, (4096,), generator=g).float()
    inputs = torch.randn(4096, generator=g) * torch.pow(2.0, exponents)
    inputs[:8] = torch.tensor([0.0, -0.0, float("inf"), float("-inf"), 65504.0, 65520.0, 2.0**-25, 1 + 2.0**-11])
    safetensors.torch.save_file({"input": inputs, "half": inputs.half(), "bfloat16": inputs.bfloat16()},
                                OUT / "rounding.safetensors")

    write_hostile("state_dict_zip.pt")
    write_architecture_key_lists()
    torch.manual_seed(2024)
    write_wrapped()
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"wrote {OUT} ({total} bytes)")


if __name__ == "__main__":
    main()
