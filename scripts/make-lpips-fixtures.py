#!/usr/bin/env python3
"""Writes the LPIPS-VGG parity fixtures (dev-only; needs the venv from scripts/setup-dev-venv.sh).

The reference is the `lpips` package's LPIPS(net="vgg", version="0.1"). Its VGG16 trunk has
14.7M parameters — far too many to commit — so the trunk gets weights from a formula that the
Swift test reproduces exactly (`formula_weights` below, `LPIPSParityTests.formulaWeights` in
Swift). The five lin layers are random non-negative weights saved with the *legacy*
(non-zip) torch.save format, as the package's own vgg.pth is. Inputs, distances and the
gradient of sum(d * r) with respect to the first image go to a safetensors file.

    .venv/bin/python scripts/make-lpips-fixtures.py
"""
import math
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file
import lpips

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "BlendModelsTests", "Fixtures")
CONV_INDICES = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]


def formula_weights(shape, key_seed, fan_in):
    """Deterministic uniform weights with variance 1/fan_in from a 32-bit integer hash."""
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.uint64)
    h = (i * np.uint64(2654435761) + np.uint64(key_seed * 40503 + 12345)) & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(1274126177)) & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(16)
    u = h.astype(np.float64) / 2.0**32
    return torch.from_numpy(((u * 2 - 1) * math.sqrt(3.0 / fan_in)).astype(np.float32)).reshape(shape)


def main():
    torch.manual_seed(0)
    model = lpips.LPIPS(pretrained=False, net="vgg", version="0.1", pnet_rand=True, verbose=False).eval()
    slices = [model.net.slice1, model.net.slice2, model.net.slice3, model.net.slice4, model.net.slice5]
    modules = {}
    for s in slices:
        for name, m in s.named_children():
            modules[int(name)] = m
    with torch.no_grad():
        for index in CONV_INDICES:
            conv = modules[index]
            fan_in = conv.weight[0].numel()
            conv.weight.copy_(formula_weights(tuple(conv.weight.shape), 2 * index, fan_in))
            conv.bias.copy_(formula_weights(tuple(conv.bias.shape), 2 * index + 1, fan_in))
        lins = {}
        for k, lin in enumerate(model.lins):
            w = torch.rand_like(lin.model[1].weight) * 0.1
            lin.model[1].weight.copy_(w)
            lins[f"lin{k}.model.1.weight"] = w.clone()
    torch.save(lins, os.path.join(OUT, "lpips_lin_legacy.pth"), _use_new_zipfile_serialization=False)

    in0 = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_()
    in1 = torch.rand(2, 3, 32, 32) * 2 - 1
    d = model(in0, in1)
    r = torch.randn_like(d)
    (grad,) = torch.autograd.grad((d * r).sum(), in0)
    save_file({"in0": in0.detach(), "in1": in1, "distance": d.detach().reshape(-1), "r": r.reshape(-1),
               "grad_in0": grad}, os.path.join(OUT, "lpips_io.safetensors"))
    print("lpips distances:", d.detach().reshape(-1).tolist(), file=sys.stderr)


if __name__ == "__main__":
    main()
