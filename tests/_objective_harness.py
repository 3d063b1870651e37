"""Run a group objective's real ``compute_loss`` on the tiny model with scores we choose.

The objective samples its own candidates; :class:`FixedScorer` gives them the scores and
``finished`` flags the test names, and :func:`spy_on_groups` records the real
:func:`gemkit.gem.group.score_groups` result so the test can recompute the expected loss from the
sampled ids with :func:`independent_logps` — one plain forward per candidate and a hand-written
log-softmax, not gemkit's batched log-prob code.
"""
from __future__ import annotations

from typing import Any

import torch

from gemkit.models import LoraSpec
from gemkit.scoring import ScoreResult, ScoringInputs
from gemkit.testing import tiny_bundle
from gemkit.train import StepContext, TrainConfig

PROMPTS = ["What is 2 + 3?", "What is 7 times 6?"]


class FixedScorer:
    """Scores ``scores[j]`` and ``finished[j]`` for candidate j of every group."""

    name = "fixed"

    def __init__(self, scores: list[float], finished: list[bool] | None = None) -> None:
        self.scores, self.finished = scores, finished or [True] * len(scores)

    def score(self, inputs: ScoringInputs) -> ScoreResult:
        groups = len(inputs.texts) // inputs.group_size
        return ScoreResult(scores=torch.tensor(self.scores * groups, dtype=torch.float32),
                           finished=torch.tensor(self.finished * groups))


def lora_context(tmp_path: Any, method: str, *, seed: int = 0, device: str = "cpu") -> StepContext:
    """A LoRA tiny model whose adapters are moved off zero, so π_θ ≠ π_ref (adapters disabled)."""
    lora = LoraSpec(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"])
    bundle = tiny_bundle(seed=seed, lora=lora)
    torch.manual_seed(seed + 1)
    with torch.no_grad():
        for name, param in bundle.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.2)
    config = TrainConfig(method=method, model="random:tiny", out=str(tmp_path), device="cpu", dtype="float32",
                         max_length=160, seed=seed, lora=lora)
    return StepContext(model=bundle.model.to(device), tokenizer=bundle.tokenizer, config=config,
                       device=torch.device(device))


def spy_on_groups(monkeypatch: Any, module: Any = None) -> list[Any]:
    """Wrap the ``score_groups`` that every objective reaches through ``ctx.score_groups`` (the real
    one still runs); returns the list its results go to. ``module`` is the objective's module, kept
    for the callers: the group step is no longer imported there."""
    import gemkit.train.objective as module
    seen: list[Any] = []
    real = module.score_groups

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(real(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(module, "score_groups", spy)
    return seen


def independent_logps(model: Any, batch: Any) -> list[torch.Tensor]:
    """Per candidate, the log-probs of its response tokens from a forward over that row alone."""
    out = []
    for ids, attention, response in zip(batch.input_ids, batch.attention_mask, batch.response_mask, strict=True):
        real = attention.bool()
        ids, response = ids[real], response[real].bool()
        logits = model(input_ids=ids[None]).logits[0].float()
        positions = response.nonzero().squeeze(-1)
        log_softmax = logits[positions - 1] - torch.logsumexp(logits[positions - 1], dim=-1, keepdim=True)
        out.append(log_softmax.gather(-1, ids[positions][:, None]).squeeze(-1))
    return out


def k3(policy: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """exp(Δ) − Δ − 1 with Δ = log π_ref − log π_θ, per token."""
    delta = reference - policy
    return torch.exp(delta) - delta - 1
