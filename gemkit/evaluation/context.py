"""What every benchmark gets: the model under test, how to reach its reference, batch size, seed, and
the engine that generates (``generator``: hf or vllm), through :meth:`EvalContext.sampling`."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gemkit.generation import SamplingConfig, check_generator
from gemkit.models import ModelBundle


@dataclass
class EvalContext:
    """``bundle``: the policy (or reward model) under test. ``reference``: an explicit reference
    policy (``--ref-model``); without one the reference is the base model with LoRA adapters
    disabled. ``out_dir``: where the benchmark may keep caches (judge responses). ``generator``: the
    engine every generative benchmark decodes with (``gemkit eval --generator``, the bench config's
    ``generator``); a benchmark asks :meth:`sampling` for its :class:`SamplingConfig`, never builds one
    itself, so the choice reaches every benchmark from this one place."""

    bundle: ModelBundle
    reference: ModelBundle | None = None
    batch_size: int = 8
    seed: int = 0
    out_dir: Path | None = None
    generator: str = "hf"
    #: the engine that generated during this evaluation (None: the benchmark only scored); recorded
    #: in the result's conventions by :func:`gemkit.evaluation.evaluate`
    generated_with: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        check_generator(self.generator)

    def sampling(self, **settings: Any) -> SamplingConfig:
        """The decoding settings of a generative benchmark (``max_new_tokens``, ``do_sample``, …) on
        this evaluation's ``generator``."""
        self.generated_with = self.generator
        return SamplingConfig(**settings, generator=self.generator)

    @property
    def is_reward_model(self) -> bool:
        """A sequence-classification model (``task="reward"``): scored by its head, not by log-probs."""
        return getattr(self.bundle.spec, "task", "causal-lm") == "reward"

    @property
    def has_reference(self) -> bool:
        return self.reference is not None or hasattr(self.bundle.model, "disable_adapter")

    @contextmanager
    def reference_model(self) -> Iterator[Any]:
        """The reference policy: an explicit reference bundle, else the base (LoRA adapters disabled), else None."""
        if self.reference is not None:
            yield self.reference.model
        elif hasattr(self.bundle.model, "disable_adapter"):
            with self.bundle.model.disable_adapter():
                yield self.bundle.model
        else:
            yield None
