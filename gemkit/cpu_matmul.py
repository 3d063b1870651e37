"""A faster CPU matmul for the few-row linear layers of autoregressive decoding.

A decode step feeds each linear layer one row per sequence (4 rows for 4 candidates), and on a
CPU ``F.linear(x, W)`` (``x [n, in] · Wᵀ``) takes a slow BLAS path for such skinny inputs. The
same product written weight-major, ``(W · xᵀ)ᵀ``, runs much faster there. Measured on the 2-core
AMD EPYC CI machine, fp32, torch 2.13 with MKL (one-off timings; the reproducible SEGA step
ratios are in reports/perf.md):

- SmolLM2's vocabulary projection (49 152 × 576) at 4 rows: 18.9 ms → 4.3 ms;
- its 576 × 1536 MLP projections at 4 rows: 0.17 → 0.12 ms;
- ``generate`` of 4 × 64 tokens on smollm2-135m: 6.6 s → 4.3 s.

A single row gains nothing (it is a matrix–vector product either way), so one-row inputs keep
``F.linear``. The maths is the same product; only the order of the fp32 sums may differ (≈ 1e-6).
Applied while sampling only (no grad), on CPU only: GPUs' BLAS picks good kernels for either form.
"""
from __future__ import annotations

import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F


def weight_major_linear(layer: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)`` computed as ``(W · xᵀ)ᵀ + b`` when ``x`` has two or more rows."""
    rows = x.reshape(-1, x.shape[-1])
    if rows.shape[0] < 2:
        return F.linear(x, layer.weight, layer.bias)
    out = (layer.weight @ rows.t()).t()
    if layer.bias is not None:
        out = out + layer.bias
    return out.reshape(*x.shape[:-1], out.shape[-1])


@contextmanager
def weight_major_linears(model: Any) -> Iterator[None]:
    """Run every plain ``nn.Linear`` of ``model`` through :func:`weight_major_linear`, then restore.

    Only modules whose type is exactly ``torch.nn.Linear`` are switched (adapter and quantised
    layers keep their own forward, which calls their plain base layer in turn). The switch is an
    instance attribute removed on exit, so hooks and the class's ``forward`` are untouched.
    """
    layers = [m for m in model.modules() if type(m) is torch.nn.Linear and "forward" not in vars(m)]
    for layer in layers:
        layer.forward = types.MethodType(weight_major_linear, layer)
    try:
        yield
    finally:
        for layer in layers:
            del layer.forward
