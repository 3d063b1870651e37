"""LoRA adapters folded into their base weights for a while (decoding, pushing weights to vLLM)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch


@contextmanager
def merged_lora(model: Any) -> Iterator[None]:
    """Fold LoRA adapters into their base weights while decoding, then restore the base exactly.

    Each decode step on a CPU is bound by per-operator overhead, and an unmerged adapter adds two
    matmuls, a dropout and an add to every adapted linear layer; merged, a step costs what the base
    model costs. The base weights are copied before merging and copied back afterwards, so the
    frozen base (the reference model under LoRA) never drifts by merge/unmerge rounding.
    """
    layers = [m for m in model.modules() if hasattr(m, "merge") and hasattr(m, "lora_A") and not getattr(m, "merged", False)]
    saved = [layer.get_base_layer().weight.detach().clone() for layer in layers]
    for layer in layers:
        layer.merge()
    try:
        yield
    finally:
        with torch.no_grad():
            for layer, weight in zip(layers, saved, strict=True):
                layer.merged_adapters = []
                layer.get_base_layer().weight.copy_(weight)
