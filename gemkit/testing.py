"""Test helpers for plugin authors: the tiny model gemkit's own tests use, and conformance checks.

Nothing here downloads anything or needs a GPU::

    from gemkit.testing import check_scorer, make_scoring_inputs

    def test_my_scorer_conforms():
        check_scorer(MyScorer(MyScorer.Config()))

``check_scorer`` and ``check_mapping`` raise ``AssertionError`` with a message that names the
broken rule; they are the same checks gemkit runs on its built-in components (in the spirit of
scikit-learn's ``check_estimator``).
"""
from __future__ import annotations

import copy
import functools
from collections.abc import Sequence
from typing import Any

import torch

from gemkit.ops import logprobs_and_entropies
from gemkit.scoring.base import ScoreResult, ScoringInputs

#: Candidate responses of two prompts (k = 3): mixed lengths, with and without the final-answer marker.
DEFAULT_TEXTS: tuple[str, ...] = (
    "2 + 3 = 5. Final Answer: 5",
    "Two plus three is six. Final Answer: 6",
    "I am not sure.",
    "7 * 6 = 42, so the product is 42. Final Answer: 42",
    "Final Answer: 40",
    "Let me think step by step: 7 * 6 = 7 * 5 + 7 = 42. Final Answer: 42",
)


@functools.lru_cache(maxsize=1)
def tiny_tokenizer() -> Any:
    """The embedded SmolLM2 tokenizer (vocabulary 49,152, real chat template); cached per process."""
    from gemkit.models import load_tokenizer

    return load_tokenizer("random:tiny")


def tiny_bundle(*, seed: int = 0, lora: Any = None) -> Any:
    """A fresh random-initialised tiny Llama (``random:tiny``, ~3 M parameters) in fp32 on CPU.

    The same weights as ``load_model(ModelSpec("random:tiny", seed=seed))``, but the tokenizer is
    the cached :func:`tiny_tokenizer` (loading it is most of the cost). ``lora`` is an optional
    :class:`gemkit.models.LoraSpec`, initialised from the same seed.
    """
    from transformers import AutoModelForCausalLM

    from gemkit.models import ModelBundle, ModelSpec, apply_lora
    from gemkit.models.random_init import random_config

    tokenizer = tiny_tokenizer()
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(random_config("tiny", tokenizer)).to(torch.float32)
    if lora is not None and lora.r > 0:
        model = apply_lora(model, lora)
    spec = ModelSpec(name="random:tiny", device="cpu", dtype="float32", seed=seed)
    return ModelBundle(model, tokenizer, spec, source="random:tiny (gemkit.testing)")


def make_scoring_inputs(
    texts: Sequence[str] = DEFAULT_TEXTS,
    *,
    group_size: int = 3,
    tokenizer: Any = None,
    seed: int = 0,
    logits_scale: float = 3.0,
    with_logits: bool = True,
    answers: Sequence[str | None] | None = None,
) -> ScoringInputs:
    """:class:`ScoringInputs` for ``texts`` (one candidate each) with seeded random logits.

    The texts are tokenised (no special tokens) and right-padded, so rows of different lengths
    leave masked positions at the end — what the group loop hands a scorer. ``token_logps`` and
    ``token_entropies`` are computed from the same logits (0 where masked), so a scorer sees
    consistent values whichever it reads. ``logits`` is ``[n, t, V]`` with V the tokenizer's size.
    """
    if len(texts) % group_size:
        raise ValueError(f"{len(texts)} texts do not split into groups of {group_size}")
    tokenizer = tokenizer or tiny_tokenizer()
    rows = [tokenizer.encode(text, add_special_tokens=False) for text in texts]
    n, width, vocab = len(rows), max(len(r) for r in rows), len(tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    token_ids = torch.full((n, width), pad, dtype=torch.long)
    response_mask = torch.zeros(n, width)
    for i, row in enumerate(rows):
        token_ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
        response_mask[i, :len(row)] = 1.0
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, width, vocab, generator=generator) * logits_scale
    token_logps, token_entropies = logprobs_and_entropies(logits, token_ids)
    return ScoringInputs(
        token_ids=token_ids,
        response_mask=response_mask,
        token_entropies=token_entropies * response_mask,
        token_logps=token_logps * response_mask,
        logits=logits if with_logits else None,
        texts=list(texts),
        tokenizer=tokenizer,
        group_size=group_size,
        answers=list(answers) if answers is not None else None,
    )


def _masked_garbage(inputs: ScoringInputs, seed: int) -> ScoringInputs:
    """A copy of ``inputs`` with every masked (padding) position overwritten by large random values."""
    generator = torch.Generator().manual_seed(seed)
    pad = inputs.response_mask == 0
    out = copy.copy(inputs)

    def scramble(values: torch.Tensor, scale: float) -> torch.Tensor:
        noise = torch.randn(values.shape, generator=generator) * scale
        where = pad if values.dim() == pad.dim() else pad.unsqueeze(-1).expand_as(values)
        return torch.where(where, noise.to(values.dtype), values)

    out.token_entropies = scramble(inputs.token_entropies, 50.0)
    out.token_logps = scramble(inputs.token_logps, 50.0)
    if inputs.logits is not None:
        out.logits = scramble(inputs.logits, 50.0)
    vocab = inputs.logits.shape[-1] if inputs.logits is not None else int(inputs.token_ids.max()) + 1
    random_ids = torch.randint(0, vocab, inputs.token_ids.shape, generator=generator)
    out.token_ids = torch.where(pad, random_ids, inputs.token_ids)
    return out


def _tensors(inputs: ScoringInputs) -> dict[str, torch.Tensor]:
    return {k: v for k, v in vars(inputs).items() if isinstance(v, torch.Tensor)}


def _score(scorer: Any, inputs: ScoringInputs) -> ScoreResult:
    result = scorer.score(inputs)
    name = getattr(scorer, "name", type(scorer).__name__)
    assert isinstance(result, ScoreResult), (
        f"scorer '{name}'.score() must return gemkit.scoring.ScoreResult, got {type(result).__name__}")
    return result


def check_scorer(scorer: Any, inputs: ScoringInputs | None = None, *, atol: float = 1e-6) -> ScoreResult:
    """Assert the scorer contract on ``inputs`` (default: :func:`make_scoring_inputs`).

    Checked: ``scores`` and ``finished`` have shape ``[n]``; scores are floating and finite; two
    calls give identical scores; the result carries no autograd graph even under grad mode; the
    inputs are not modified; values at masked positions (logits, entropies, log-probs, token ids)
    do not change any score. Returns the first result, for further assertions.
    """
    name = getattr(scorer, "name", type(scorer).__name__)
    if inputs is None:
        inputs = make_scoring_inputs(with_logits=bool(getattr(scorer, "needs_logits", True)))
    n = inputs.token_ids.shape[0]
    before = {k: v.clone() for k, v in _tensors(inputs).items()}
    with torch.enable_grad():
        first = _score(scorer, inputs)
    scores = first.scores
    assert isinstance(scores, torch.Tensor), f"scorer '{name}': scores must be a tensor, got {type(scores).__name__}"
    assert tuple(scores.shape) == (n,), f"scorer '{name}': scores must have shape [{n}], got {list(scores.shape)}"
    assert scores.is_floating_point(), f"scorer '{name}': scores must be floating point, got {scores.dtype}"
    assert bool(torch.isfinite(scores).all()), f"scorer '{name}': non-finite scores {scores.tolist()}"
    assert tuple(first.finished.shape) == (n,), (
        f"scorer '{name}': finished must have shape [{n}], got {list(first.finished.shape)}")
    assert not scores.requires_grad and scores.grad_fn is None, (
        f"scorer '{name}': scores carry an autograd graph; compute them under torch.no_grad() or .detach()")
    for key, tensor in _tensors(inputs).items():
        assert torch.equal(tensor, before[key]), f"scorer '{name}' modified inputs.{key} in place"
    second = _score(scorer, inputs)
    assert torch.equal(second.scores, scores), (
        f"scorer '{name}' is not deterministic: {scores.tolist()} then {second.scores.tolist()}")
    masked = _score(scorer, _masked_garbage(inputs, seed=1234))
    assert torch.allclose(masked.scores, scores, atol=atol, rtol=0), (
        f"scorer '{name}' reads masked (padding) positions: scores {scores.tolist()} became "
        f"{masked.scores.tolist()} when only positions with response_mask == 0 changed")
    return first


def check_mapping(mapping: Any, scores: torch.Tensor | None = None, *, monotone: bool = False) -> torch.Tensor:
    """Assert the reward-mapping contract: ``scores[b, k] -> rewards[b, k]``.

    Checked: same shape; floating and finite (also for a group of tied scores and for large
    magnitudes); deterministic; no autograd graph; input not modified; groups are independent
    (changing one group's scores leaves the other groups' rewards alone). With ``monotone=True``
    a higher score never gets a lower reward within its group. Returns the rewards.
    """
    name = getattr(mapping, "name", type(mapping).__name__)
    if scores is None:
        scores = torch.tensor([[0.5, -1.0, 2.0, 0.0], [3.0, 3.0, 3.0, 3.0], [-40.0, 80.0, 0.0, 1e-3]])
    before = scores.clone()
    with torch.enable_grad():
        rewards = mapping(scores)
    assert isinstance(rewards, torch.Tensor), f"mapping '{name}' must return a tensor, got {type(rewards).__name__}"
    assert rewards.shape == scores.shape, (
        f"mapping '{name}': rewards must have the scores' shape {list(scores.shape)}, got {list(rewards.shape)}")
    assert rewards.is_floating_point(), f"mapping '{name}': rewards must be floating point, got {rewards.dtype}"
    assert bool(torch.isfinite(rewards).all()), f"mapping '{name}': non-finite rewards {rewards.tolist()}"
    assert not rewards.requires_grad and rewards.grad_fn is None, f"mapping '{name}': rewards carry an autograd graph"
    assert torch.equal(scores, before), f"mapping '{name}' modified its input in place"
    assert torch.equal(mapping(scores), rewards), f"mapping '{name}' is not deterministic"
    if scores.shape[0] > 1:
        changed = scores.clone()
        changed[0] = changed[0] * 2.0 + 1.0
        assert torch.equal(mapping(changed)[1:], rewards[1:]), (
            f"mapping '{name}': changing group 0 changed the rewards of other groups")
    if monotone:
        order = scores.argsort(dim=-1)
        sorted_rewards = rewards.gather(-1, order)
        assert bool((sorted_rewards[..., 1:] >= sorted_rewards[..., :-1] - 1e-6).all()), (
            f"mapping '{name}' is not monotone: scores {scores.tolist()} gave rewards {rewards.tolist()}")
    return rewards
