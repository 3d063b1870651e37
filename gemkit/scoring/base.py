"""The contract between the group loop and ``scorer`` plugins.

The loop runs one forward pass over the k candidates of each prompt and hands every scorer the
same detached per-token tensors from that pass; a scorer never runs the model itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class ScoringInputs:
    """Detached per-token views of ``n`` candidates over a window of ``t`` response positions.

    - ``token_ids[n, t]``: the sampled response tokens (padding where ``response_mask`` is 0);
    - ``response_mask[n, t]``: 1 on real response tokens — EOS excluded, padding excluded;
    - ``token_entropies[n, t]``: H_t from raw logits at temperature 1 (0 where masked);
    - ``token_logps[n, t]``: log π(a_t | q, a_<t) of the sampled token (0 where masked);
    - ``logits[n, t, V]``: the raw logits those come from (for scorers that need more);
    - ``texts``: the decoded responses; ``group_size``: k (candidates of one prompt are adjacent);
    - ``answers``: the gold answer of each candidate's prompt where the data has one.

    ``logits`` is filled only for scorers whose class sets ``needs_logits = True``.
    """

    token_ids: torch.Tensor
    response_mask: torch.Tensor
    token_entropies: torch.Tensor
    token_logps: torch.Tensor
    logits: torch.Tensor | None
    texts: list[str]
    tokenizer: Any
    group_size: int
    answers: list[str | None] | None = None


@dataclass
class ScoreResult:
    """One score per candidate (higher is better) and what went into it.

    ``final_span[i] = (start, end)`` in response-token positions, ``finished[i]`` whether the
    final-answer marker was found, ``details`` named per-candidate tensors (e.g. ``h_final``).
    """

    scores: torch.Tensor
    finished: torch.Tensor
    final_span: list[tuple[int, int]] = field(default_factory=list)
    details: dict[str, torch.Tensor] = field(default_factory=dict)
