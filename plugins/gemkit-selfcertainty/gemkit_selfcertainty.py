"""Self-certainty scorer for gemkit: how far each next-token distribution is from uniform.

Kang et al. (2025), "Scalable Best-of-N Selection for Large Language Models via Self-Certainty",
define the self-certainty of a response as the mean over its tokens of KL(U || p_t), the KL
divergence from the uniform distribution U over the vocabulary to the model's distribution p_t:

    SC_t = Σ_v (1/V) log((1/V) / p_t(v)) = −log V − (1/V) Σ_v log p_t(v)

With logits z_t and log p_t(v) = z_t(v) − logsumexp(z_t) this is

    SC_t = logsumexp(z_t) − mean_v z_t(v) − log V        (≥ 0; 0 iff p_t is uniform)

so it needs two reductions over V and no softmax tensor. Score = mean of SC_t over response
tokens; higher means more confident, and SEGA rewards the more confident candidates of a group.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

import gemkit
from gemkit import FINAL_ANSWER_MARKER, ConfigError, GemkitError, ScoreResult, ScoringInputs

__version__ = "0.1.0"


@gemkit.hookimpl
def register_scorers(register):
    register(SelfCertaintyScorer, aliases=("self-certainty",))


@dataclass
class SelfCertaintyConfig:
    chunk_tokens: int = field(
        default=256,
        metadata={"help": "Token positions per logsumexp chunk: the one temporary is [chunk_tokens, V] in fp32."},
    )

    def __post_init__(self) -> None:
        if self.chunk_tokens < 1:
            raise ConfigError(f"selfcertainty: chunk_tokens must be >= 1, got {self.chunk_tokens}")


def token_self_certainty(logits: torch.Tensor, *, chunk_tokens: int = 256) -> torch.Tensor:
    """SC_t = logsumexp(z_t) − mean_v z_t − log V for ``logits[..., V]``; returns ``[...]`` in fp32.

    Positions are processed ``chunk_tokens`` at a time on a flattened view, so besides the input
    the only ``V``-wide buffer is one ``[chunk_tokens, V]`` fp32 temporary (bf16/fp16 logits are
    up-cast chunk by chunk, never as a whole).
    """
    vocab = logits.shape[-1]
    flat = logits.reshape(-1, vocab)  # a view for the contiguous tensors the loop produces
    out = torch.empty(flat.shape[0], dtype=torch.float32, device=logits.device)
    log_vocab = math.log(vocab)
    for start in range(0, flat.shape[0], chunk_tokens):
        z = flat[start:start + chunk_tokens].float()
        out[start:start + chunk_tokens] = torch.logsumexp(z, dim=-1) - z.mean(dim=-1) - log_vocab
    return out.reshape(logits.shape[:-1])


class SelfCertaintyScorer:
    """Mean self-certainty KL(U || p_t) over response tokens (Kang et al., 2025). Higher is better."""

    name = "selfcertainty"
    description = "Mean KL(uniform || p_t) over response tokens (Kang et al. 2025); higher = more confident."
    Config = SelfCertaintyConfig
    needs_logits = True

    def __init__(self, config: SelfCertaintyConfig | None = None) -> None:
        self.config = config or SelfCertaintyConfig()

    @torch.no_grad()
    def score(self, inputs: ScoringInputs) -> ScoreResult:
        """``inputs.logits[n, t, V]`` and ``inputs.response_mask[n, t]`` -> ``scores[n]``."""
        if inputs.logits is None:
            raise GemkitError("scorer 'selfcertainty' needs raw logits, but ScoringInputs.logits is None; "
                              "the caller must honour the scorer's needs_logits = True")
        per_token = token_self_certainty(inputs.logits, chunk_tokens=self.config.chunk_tokens)
        mask = inputs.response_mask > 0
        # where(), not multiply: padding logits may be anything, even inf, and inf * 0 is nan.
        per_token = torch.where(mask, per_token, torch.zeros((), dtype=per_token.dtype, device=per_token.device))
        counts = mask.sum(-1)
        scores = per_token.sum(-1) / counts.clamp_min(1).to(per_token.dtype)
        finished = torch.tensor([FINAL_ANSWER_MARKER.search(text) is not None for text in inputs.texts], dtype=torch.bool)
        lengths = counts.tolist()
        return ScoreResult(
            scores=scores,
            finished=finished.to(scores.device),
            final_span=[(0, int(length)) for length in lengths],
            details={"self_certainty": scores.clone(), "num_tokens": counts.to(torch.float32)},
        )
