"""Settings shared by every training method: one optimiser, schedule, precision and logging."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from gemkit.errors import ConfigError
from gemkit.models.spec import LoraSpec


@dataclass
class TrainConfig:
    """How the shared engine trains, whatever the objective."""

    method: str = field(default="sega", metadata={"help": "Objective plugin name (sega, sft, dpo, …)."})
    model: str = field(default="smollm2-135m", metadata={"help": "Model spec: hub id, directory, smollm2-135m, random:<size>."})
    out: str = field(default="runs/train", metadata={"help": "Output directory (checkpoint, metrics log, config)."})
    max_steps: int = field(default=20, metadata={"help": "Optimiser steps."})
    batch_size: int = field(default=4, metadata={"help": "Records (pairs or prompts) per micro-batch."})
    grad_accum: int = field(default=1, metadata={"help": "Micro-batches per optimiser step."})
    lr: float = field(default=1e-4, metadata={"help": "Peak learning rate (AdamW)."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    warmup_ratio: float = field(default=0.1, metadata={"help": "Fraction of steps with linear warm-up."})
    schedule: Literal["cosine", "linear", "constant"] = field(default="cosine", metadata={"help": "Decay after warm-up."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm (0 disables)."})
    max_length: int = field(default=512, metadata={"help": "Max prompt+response tokens (see truncation)."})
    truncation: Literal["left-prompt", "error"] = field(default="left-prompt", metadata={
        "help": "Over max_length: left-prompt cuts the prompt from the left (counted and reported), error refuses."})
    seed: int = field(default=0, metadata={"help": "Seed for data order, sampling and initialisation."})
    dtype: str = field(default="auto", metadata={"help": "auto (fp32 on CPU, bf16 on capable CUDA), float32, bfloat16."})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda, cuda:N."})
    mixed_precision: Literal["no", "bf16", "fp16"] | None = field(default=None, metadata={
        "help": "Autocast on fp32 weights: no, bf16, fp16 (with loss scaling); unset: the accelerate config's."})
    gradient_checkpointing: bool = field(default=False, metadata={
        "help": "Recompute activations in the backward pass: less memory, about one more forward of time."})
    lora: LoraSpec = field(default_factory=LoraSpec, metadata={"help": "LoRA settings; r=0 for full fine-tuning."})
    log_every: int = field(default=1, metadata={"help": "Steps between metric log lines."})
    save_every: int = field(default=0, metadata={"help": "Steps between resumable checkpoints (0: only at the end)."})
    nan_policy: Literal["stop", "skip"] = field(default="stop", metadata={"help": "On a non-finite loss or gradient: stop, or skip the batch and count it."})
    max_skipped: int = field(default=10, metadata={"help": "With nan_policy=skip, stop after this many skipped batches."})
    system_prompt: str | None = field(default=None, metadata={"help": "System message prepended to every prompt."})
    tensorboard: bool = field(default=False, metadata={"help": "Also write TensorBoard event files under OUT/tb."})
    objective: Any = field(default_factory=dict, metadata={
        "help": "The objective's Config, built (as the CLI hands it on) or as a dict of its options."})

    def __post_init__(self) -> None:
        problems = []
        if self.max_steps < 1:
            problems.append(f"max_steps must be >= 1, got {self.max_steps}")
        if self.batch_size < 1 or self.grad_accum < 1:
            problems.append(f"batch_size and grad_accum must be >= 1, got {self.batch_size} and {self.grad_accum}")
        if self.lr <= 0:
            problems.append(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            problems.append(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.max_length < 8:
            problems.append(f"max_length must be >= 8, got {self.max_length}")
        if self.truncation not in ("left-prompt", "error"):
            problems.append(f"truncation must be left-prompt or error, got {self.truncation!r}")
        if self.mixed_precision not in (None, "no", "bf16", "fp16"):
            problems.append(f"mixed_precision must be no, bf16 or fp16, got {self.mixed_precision!r}")
        if isinstance(self.lora, dict):
            self.lora = LoraSpec(**self.lora)
        if problems:
            raise ConfigError(problems)
