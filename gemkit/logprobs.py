"""Response log-probs (and optionally entropies) of a padded batch in one forward pass."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from gemkit.data.encoding import SequenceBatch
from gemkit.ops import logprobs_and_entropies, masked_mean


@dataclass
class ResponseScores:
    """Per-token values over the kept window; ``mask[b, w]`` is 1 on response tokens only."""

    token_logps: torch.Tensor
    token_entropies: torch.Tensor | None
    mask: torch.Tensor
    labels: torch.Tensor
    logits: torch.Tensor | None = None

    @property
    def lengths(self) -> torch.Tensor:
        return self.mask.sum(-1)

    def sum(self) -> torch.Tensor:
        """log π(a|q) = Σ_t log π(a_t | q, a_<t) over response tokens, ``[b]``."""
        return (self.token_logps * self.mask).sum(-1)

    def mean(self) -> torch.Tensor:
        """Length-normalised log-prob, ``[b]``."""
        return masked_mean(self.token_logps, self.mask)


def response_logprobs(model: Any, batch: SequenceBatch, *, with_entropy: bool = False,
                      keep_logits: bool = False) -> ResponseScores:
    """One forward pass; the LM head runs only from the earliest response position on.

    Token t is predicted by the logits at t−1, so the window starts one position before the first
    response token of any row (``logits_to_keep``), which keeps the ``[b, t, V]`` logits small when
    prompts are long. Position ids follow the attention mask, so left and right padding give the
    same values. ``keep_logits`` also returns the detached logits window ``[b, w, V]``.
    """
    width = batch.input_ids.shape[1]
    first_response = int(batch.response_mask.float().argmax(-1).min()) if batch.response_mask.any() else width - 1
    keep = width - max(first_response - 1, 0)
    outputs = model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        logits_to_keep=keep,
        use_cache=False,
    )
    logits = outputs.logits[:, :-1]  # position p predicts token p+1
    labels = batch.input_ids[:, width - keep + 1:]
    mask = batch.response_mask[:, width - keep + 1:].float()
    token_logps, token_entropies = logprobs_and_entropies(logits, labels, with_entropy=with_entropy)
    return ResponseScores(token_logps * mask, None if token_entropies is None else token_entropies * mask, mask,
                          labels, logits.detach() if keep_logits else None)
