"""Data parallelism for the shared engine: one process per device, gradients averaged.

Launch with ``accelerate launch -m gemkit train …`` or ``torchrun --nproc-per-node N -m gemkit train …``;
both set ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``, which :func:`init_from_env` reads. Each rank takes
its own ``batch_size`` slice of every global micro-batch (global batch = world × batch_size),
computes its loss, and the gradients of the trainable parameters are all-reduced (mean) before
clipping, so the update equals single-process training on the global batch. Only rank 0 writes
logs and checkpoints. CPU uses the gloo backend, CUDA uses NCCL.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_from_env(device_type: str = "cpu") -> DistInfo:
    """Join the process group described by the launcher's environment (no-op for one process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size())


def average_gradients(params: list[torch.nn.Parameter], info: DistInfo) -> None:
    """g ← (1/W) Σ_r g_r for every parameter, in one flattened all-reduce."""
    if not info.enabled:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= info.world_size
    offset = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n


def average_scalar(value: float, info: DistInfo) -> float:
    if not info.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return float(tensor.item() / info.world_size)


def any_flag(flag: bool, info: DistInfo) -> bool:
    """True on every rank if any rank raised the flag (keeps ranks in step on a bad batch)."""
    if not info.enabled:
        return flag
    tensor = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item() > 0)
