"""Drawing the next token: temperature, then top-k, then top-p (nucleus), then one categorical draw.

The same distribution as transformers' sampling warpers followed by ``torch.multinomial`` over
the vocabulary, at a fraction of the cost on a CPU: their nucleus sorts all V logits of every row
at every step and the draw walks all V probabilities (≈ 8 ms a step for 4 rows of SmolLM2's
49 152-token vocabulary, on top of a ≈ 90 ms decode forward). Here the nucleus is looked for among
the ``CANDIDATES`` most likely tokens first (``topk``, ≈ 1 ms) and the draw is over those only.
This is exact, not a truncation: if the candidates hold at least ``top_p`` of the mass, every
token outside them is outside the nucleus; a row whose candidates hold less falls back to the
whole sorted vocabulary.

Used as the last logits processor of a greedy ``generate``: it returns scores that are −inf
everywhere but at the drawn token, so the greedy pick takes the draw, and ``output_logits`` stays
the model's raw logits.
"""
from __future__ import annotations

import torch

CANDIDATES = 1024


def nucleus_keep(sorted_probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Which of the descending ``sorted_probs [b, n]`` are in the top-p nucleus.

    Token i is kept when the mass strictly above it is below ``top_p`` (the smallest prefix whose
    mass reaches ``top_p``; transformers' ``TopPLogitsWarper`` rule), and the most likely token
    always is.
    """
    above = sorted_probs.cumsum(-1) - sorted_probs
    keep = above < top_p
    keep[:, 0] = True
    return keep


def draw(logits: torch.Tensor, *, temperature: float, top_p: float, top_k: int | None) -> torch.Tensor:
    """One token id per row of ``logits [b, V]``, drawn from the tempered top-k/top-p distribution."""
    scaled = logits.float() / temperature
    vocab = scaled.shape[-1]
    ids = None
    if top_k is not None and top_k < vocab:
        # Top-k first: the nucleus is then taken of the renormalised top-k distribution.
        values, ids = scaled.topk(top_k, dim=-1)
        probs = values.softmax(-1)
    elif top_p < 1.0:
        probs_all = scaled.softmax(-1)
        probs, ids = probs_all.topk(min(CANDIDATES, vocab), dim=-1)
        if bool((probs.sum(-1) < top_p).any()):
            probs, ids = probs_all.sort(dim=-1, descending=True)
    else:
        probs = scaled.softmax(-1)
    if top_p < 1.0:
        probs = probs * nucleus_keep(probs, top_p)
    picked = torch.multinomial(probs, 1)
    return (picked if ids is None else ids.gather(1, picked)).squeeze(1)


class NucleusSampler:
    """A transformers logits processor that draws the next token (see the module docstring)."""

    def __init__(self, *, temperature: float, top_p: float, top_k: int | None) -> None:
        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        tokens = draw(scores, temperature=self.temperature, top_p=self.top_p, top_k=self.top_k)
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, tokens.unsqueeze(1), 0.0)
        return out
