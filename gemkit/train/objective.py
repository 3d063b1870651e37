"""What an ``objective`` plugin implements and what the engine hands it each micro-batch."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from gemkit.data.encoding import SequenceBatch, collate, encode_sequence
from gemkit.data.records import PreferencePair, Text
from gemkit.gem.group import GroupBatch, score_groups
from gemkit.logprobs import ResponseLogprobs, response_logprobs
from gemkit.train.config import TrainConfig


@dataclass
class LossOutput:
    """The micro-batch loss (a scalar with grad) and detached float metrics to log."""

    loss: torch.Tensor
    metrics: dict[str, float] = field(default_factory=dict)
    num_tokens: int = 0


@dataclass
class StepContext:
    """Everything an objective may use: the policy, its tokenizer, the reference, the config."""

    model: Any
    tokenizer: Any
    config: TrainConfig
    device: torch.device
    step: int = 0
    generator: torch.Generator | None = None
    records: list[PreferencePair] = field(default_factory=list)  # the training set (e.g. to precompute a cache)
    truncated_sequences: int = 0  # sequences :meth:`encode` cut from the left since training began
    _frozen_reference: Any = None

    # -- tokenisation, in one place ------------------------------------------------------------
    def encode(self, prompts: list[Text | list[int]], responses: list[str | list[int]], *,
               side: str = "right") -> SequenceBatch:
        """Prompt + response sequences as a padded batch on the policy's device."""
        sequences = [
            encode_sequence(self.tokenizer, p, r, max_length=self.config.max_length, system=self.config.system_prompt,
                            truncation=getattr(self.config, "truncation", "left-prompt"))
            for p, r in zip(prompts, responses, strict=True)
        ]
        self.truncated_sequences += sum(seq.truncated for seq in sequences)
        return collate(sequences, self.tokenizer.pad_token_id, side=side).to(self.device)  # type: ignore[arg-type]

    def encode_pairs(self, pairs: list[PreferencePair]) -> SequenceBatch:
        """Chosen responses first, then rejected: rows [0, n) chosen, [n, 2n) rejected (one forward)."""
        prompts = [p.prompt for p in pairs] * 2
        responses = [p.chosen for p in pairs] + [p.rejected for p in pairs]
        return self.encode(prompts, responses)

    # -- log-probs -----------------------------------------------------------------------------
    def policy_logprobs(self, batch: SequenceBatch, *, with_entropy: bool = False) -> ResponseLogprobs:
        return response_logprobs(self.model, batch, with_entropy=with_entropy)

    def score_groups(self, prompts: list[Any], **options: Any) -> GroupBatch:
        """:func:`gemkit.gem.group.score_groups` on this step's policy and tokenizer, with the run's
        ``max_length`` and system prompt; its cut sequences join :attr:`truncated_sequences`."""
        group = score_groups(self.model, self.tokenizer, list(prompts), max_length=self.config.max_length,
                             system=self.config.system_prompt, **options)
        self.truncated_sequences += group.truncated
        return group

    @torch.no_grad()
    def reference_logprobs(self, batch: SequenceBatch) -> ResponseLogprobs:
        """log π_ref: the base model with LoRA adapters disabled (no second copy), or a frozen copy
        of the initial weights under full fine-tuning (made on first use)."""
        with self.reference_model() as reference:
            return response_logprobs(reference, batch)

    @contextmanager
    def reference_model(self) -> Iterator[Any]:
        if hasattr(self.model, "disable_adapter"):
            with self.model.disable_adapter():
                yield self.model
            return
        if self._frozen_reference is None:
            raise RuntimeError("full fine-tuning reference requested before the engine froze a copy")
        yield self._frozen_reference


class Objective:
    """Base class of ``objective`` plugins (subclass it, or just match its attributes).

    Class attributes: ``name``, ``description``, ``Config`` (dataclass), ``needs_reference``
    (the engine freezes a reference copy under full fine-tuning only when True), ``model_task``
    ("causal-lm" or "reward"), ``trained_responses`` (the record fields encoded after the prompt;
    ``()`` for objectives that sample their own responses, so only the prompt is checked against
    ``max_length`` before training). ``compute_loss`` is called once per micro-batch of records.

    What a ``gemkit bench`` run needs to know (the runner names no objective): ``bench_steps`` and
    ``bench_batch_size`` (the objective's grid defaults, None: the bench's), ``bench_options``
    (option defaults in a bench run), ``scorer_option`` (the option ``--scorer`` sets, None: the
    objective takes no scorer) and ``trained_dependency`` ((option, objective): when the option is
    empty, the bench cell first trains that objective on the same pairs and passes its checkpoint).
    """

    name: ClassVar[str]
    description: ClassVar[str]
    Config: ClassVar[type]
    needs_reference: ClassVar[bool] = False
    model_task: ClassVar[str] = "causal-lm"
    trained_responses: ClassVar[tuple[str, ...]] = ("chosen", "rejected")
    bench_steps: ClassVar[int | None] = None
    bench_batch_size: ClassVar[int | None] = None
    bench_options: ClassVar[dict[str, Any]] = {}
    scorer_option: ClassVar[str | None] = None
    trained_dependency: ClassVar[tuple[str, str] | None] = None

    def __init__(self, config: Any) -> None:
        self.config = config

    def setup(self, ctx: StepContext) -> None:
        """Called once before the first step (load a reward model, build a value head, …)."""

    def trainable_modules(self) -> list[torch.nn.Module]:
        """Extra modules with parameters the optimiser must update (e.g. a value head)."""
        return []

    def compute_loss(self, ctx: StepContext, batch: list[PreferencePair]) -> LossOutput:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Extra state to checkpoint (e.g. a value head)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def save_extra(self, directory: str, extras: list[dict[str, torch.Tensor]]) -> None:
        """Write files the saved model needs besides the policy's weights (e.g. a value head).

        ``extras`` holds the whole weights of :meth:`trainable_modules`, one state dict per module in
        order, also when the launch sharded them (the engine gathers them first): write these rather
        than the modules' own tensors, which under FSDP or ZeRO-3 are this rank's shards.
        """
