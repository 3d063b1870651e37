"""Throughput columns of every log row: tokens/s, model FLOP utilisation (MFU) and peak memory.

MFU = achieved model FLOP/s ÷ the device's peak FLOP/s (Chowdhery et al. 2022, PaLM, App. B), with
the model FLOPs counted from the parameter count, not measured:

- a forward pass costs 2·N FLOPs per token (one multiply-add per weight);
- the backward pass costs 2·N per token for the activation gradients (through every weight,
  frozen or not) plus 2·N_trainable for the weight gradients.

So full fine-tuning costs 6·N per trained token (Kaplan et al. 2020, §2.1), and LoRA costs
4·N_total + 2·N_trainable per trained token: the frozen base still needs activation gradients
(every adapter sits between frozen layers), but only the adapters' weight gradients. No-grad
forwards (the reference, the scoring pass of sampled candidates) cost 2·N per token. Attention's
sequence-squared term is left out (small next to 6·N at these lengths, and the usual convention);
autoregressive decoding is not counted either, since it is memory-bound and its tokens are not in
the trained batch. Peak FLOP/s is the dense (non-sparse) tensor-core figure of the vendor
datasheet for known GPUs, and a measured fp32 matmul rate on CPU.
"""
from __future__ import annotations

import functools
import re
import resource
import sys
import time

import torch

#: dense bf16/fp16 tensor-core peak TFLOP/s by GPU name fragment, from NVIDIA's datasheets (H100/H200
#: SXM 989.4, H100 PCIe 756, H100 NVL 835, A100 312, L40S 362, L40 181, L4 121, A10 125, RTX 4090 165.2,
#: V100 125 (fp16)). The first fragment found as whole words in the device name wins (H100 NVL/PCIe before H100).
GPU_PEAK_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H200", 989.4), ("H100 NVL", 835.0), ("H100 PCIe", 756.0), ("H100", 989.4), ("GH200", 989.4),
    ("A100", 312.0), ("A800", 312.0), ("L40S", 362.0), ("L40", 181.0), ("L4", 121.0), ("A10", 125.0), ("RTX 4090", 165.2),
    ("V100", 125.0),
)
#: fp32 training on these GPUs runs its matmuls in TF32 at half the bf16 rate (same datasheets)
TF32_FRACTION = 0.5


def training_flops(trained_tokens: int, no_grad_tokens: int, total_params: int, trainable_params: int) -> float:
    """(4·N + 2·N_trainable)·trained + 2·N·no_grad; equals 6·N·trained for full fine-tuning."""
    return (4 * total_params + 2 * trainable_params) * trained_tokens + 2 * total_params * no_grad_tokens


def gpu_peak_flops(name: str, dtype: torch.dtype) -> float | None:
    """The datasheet peak of a GPU named ``name`` for ``dtype`` matmuls, or None if not in the table."""
    for fragment, tflops in GPU_PEAK_TFLOPS:
        # Whole words only: "A10" must not match "A100" or "A10G" (a different part).
        if re.search(rf"(?<!\w){re.escape(fragment)}(?!\w)", name, flags=re.IGNORECASE):
            return tflops * 1e12 * (TF32_FRACTION if dtype == torch.float32 else 1.0)
    return None


@functools.cache
def measured_cpu_peak_flops(size: int = 1024, repeats: int = 5) -> float:
    """Best fp32 matmul FLOP/s of ``size``² × ``size``² products on this CPU (2·size³ FLOPs each),
    measured once per process with the current torch thread count. The operands come from a private
    generator: drawing them from the global one would shift a seeded run's sampling depending on
    whether an earlier run in the same process had already measured (bench cells, resume)."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator)
    b = torch.randn(size, size, generator=generator)
    torch.mm(a, b)  # warm-up: first call picks the kernel
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * size ** 3 / best


def device_peak_flops(device: torch.device, dtype: torch.dtype) -> float | None:
    """Peak FLOP/s of ``device`` for ``dtype`` matmuls: table for GPUs, measured on CPU, else None."""
    if device.type == "cuda":
        return gpu_peak_flops(torch.cuda.get_device_name(device), dtype)
    if device.type == "cpu":
        return measured_cpu_peak_flops()
    return None


#: log-row keys that measure the machine, not the training: excluded when two runs are compared
TIMING_KEYS = frozenset({"tokens_per_s", "step_time_s", "tflops", "mfu", "peak_memory_gb"})


def peak_memory_gb(device: torch.device) -> float:
    """Most memory held so far: CUDA tensors allocated on a GPU, the process's resident set on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 30
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (2 ** 30 if sys.platform == "darwin" else 2 ** 20)  # bytes on macOS, KiB on Linux


def throughput_row(*, tokens: int, trained_tokens: int, no_grad_tokens: int, seconds: float, total_params: int,
                   trainable_params: int, peak_flops: float | None, device: torch.device) -> dict[str, float]:
    """``tokens_per_s`` (the objective's trained response tokens), ``mfu`` (NaN when the device's peak
    is unknown), ``tflops`` achieved and ``peak_memory_gb`` for one optimiser step on this rank."""
    flops = training_flops(trained_tokens, no_grad_tokens, total_params, trainable_params)
    achieved = flops / seconds
    return {"tokens_per_s": tokens / seconds, "tflops": achieved / 1e12,
            "mfu": achieved / peak_flops if peak_flops else float("nan"), "peak_memory_gb": peak_memory_gb(device)}
