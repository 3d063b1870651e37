"""What to load (:class:`ModelSpec`) and what a loader returns (:class:`ModelBundle`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from gemkit.errors import ConfigError

EMBEDDED_MODEL = "smollm2-135m"


@dataclass
class LoraSpec:
    """LoRA adapter settings (peft). ``r=0`` means full fine-tuning."""

    r: int = field(default=16, metadata={"help": "LoRA rank; 0 trains every weight instead."})
    alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator (scale = alpha / r)."})
    dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA branch."})
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        metadata={"help": "Module names that get adapters."},
    )
    layers: list[int] | None = field(default=None, metadata={
        "help": "Indices of the transformer layers that get adapters (None: every layer). Adapters only in the "
                "top layers let back-propagation stop there, which is much cheaper on CPU."})

    def __post_init__(self) -> None:
        if self.r < 0:
            raise ConfigError(f"LoRA rank r must be >= 0, got {self.r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"LoRA dropout must be in [0, 1), got {self.dropout}")
        if self.layers is not None and (not self.layers or min(self.layers) < 0):
            raise ConfigError(f"LoRA layers must be a non-empty list of layer indices >= 0 (or None for all), got {self.layers}")


@dataclass
class ModelSpec:
    """A model to load: hub id, local directory, ``smollm2-135m`` or ``random:<size>``."""

    name: str = field(default=EMBEDDED_MODEL, metadata={"help": "Hub id, local dir, smollm2-135m, random:tiny|135m|1b|8b."})
    dtype: str = field(default="auto", metadata={"help": "auto (bf16 on capable CUDA, else fp32), float32, bfloat16, float16."})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda, cuda:N."})
    task: Literal["causal-lm", "reward"] = field(default="causal-lm", metadata={"help": "causal-lm or reward (sequence-classification head)."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Run code shipped with a hub model; only with this flag."})
    revision: str | None = field(default=None, metadata={"help": "Hub revision (branch, tag or commit)."})
    seed: int = field(default=0, metadata={"help": "Seed for random-initialised models."})

    def __post_init__(self) -> None:
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise ConfigError(f"dtype must be auto, float32, bfloat16 or float16, got {self.dtype!r}")


@dataclass
class ModelBundle:
    """A loaded model with its tokenizer and where it lives."""

    model: Any
    tokenizer: Any
    spec: ModelSpec
    source: str = ""
    cache_path: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> Any:
        return next(self.model.parameters()).dtype
