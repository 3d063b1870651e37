"""SEGA's documented options (docs/gem.md) through the real ``sega`` objective on the tiny model.

Every test runs ``Sega.compute_loss`` with scores we choose (tests/_objective_harness.py), 2 prompts
× k = 4, S = [3, 1, 0, 2] per group and ``finished`` = [T, F, T, T] where a rule reads it, and
recomputes the loss by hand from one plain forward per sampled candidate:
L = mean over prompts of −(1/4) Σ_i A_i · s_i (+ β·KL).

Checked on purpose: each of these fails when the option is ignored in gemkit/gem/advantages.py or
gemkit/builtin/sega.py (drop skipped, penalty not applied, trim and pairing skipped, ``mean``
treated as ``sum``, the KL term left out or not scaled by kl_coef).
"""
from __future__ import annotations

import pytest
import torch
from _objective_harness import PROMPTS, FixedScorer, independent_logps, k3, lora_context, spy_on_groups

from gemkit.builtin import sega as sega_module
from gemkit.registry import registry

SCORES, FINISHED = [3.0, 1.0, 0.0, 2.0], [True, False, True, True]


def run(tmp_path, monkeypatch, options):
    ctx = lora_context(tmp_path, "sega")
    objective = registry("objective").get("sega").build({"k": 4, "max_new_tokens": 5, "temperature": 1.0, **options})
    objective.scorer = FixedScorer(SCORES, FINISHED)
    groups = spy_on_groups(monkeypatch, sega_module)
    torch.manual_seed(0)
    output = objective.compute_loss(ctx, PROMPTS)
    return ctx, output, groups[0]


@pytest.mark.parametrize("options,advantages", [
    # drop: the unfinished candidate leaves the group: r̄ = (3+0+2)/3 = 5/3 ⇒ A = [4/3, 0, −5/3, 1/3].
    ({"unfinished": "drop"}, [4 / 3, 0.0, -5 / 3, 1 / 3]),
    # penalise (1.0): S = [3, 0, 0, 2], r̄ = 5/4 ⇒ A = [1.75, −1.25, −1.25, 0.75].
    ({"unfinished": "penalise", "unfinished_penalty": 1.0}, [1.75, -1.25, -1.25, 0.75]),
    # trim_bottom 1: the lowest (S = 0) leaves: r̄ = (3+1+2)/3 = 2 ⇒ A = [1, −1, 0, 0].
    ({"trim_bottom": 1}, [1.0, -1.0, 0.0, 0.0]),
    # pair_top_bottom: only S = 3 and S = 0 stay: r̄ = 1.5 ⇒ A = [1.5, 0, −1.5, 0].
    ({"pair_top_bottom": True}, [1.5, 0.0, -1.5, 0.0]),
])
def test_group_rules_through_the_objective(tmp_path, monkeypatch, options, advantages):
    """Advantages as worked out per case; the loss still divides by k = 4 (dropped candidates count 0)."""
    ctx, output, group = run(tmp_path, monkeypatch, options)
    expected_advantages = torch.tensor(advantages * 2)
    assert torch.allclose(group.advantages.reshape(-1), expected_advantages, atol=1e-6)
    sums = torch.stack([row.sum() for row in independent_logps(ctx.model, group.batch)])
    expected = -(expected_advantages * sums).view(2, 4).sum(-1).div(4).mean()
    assert float(output.loss) == pytest.approx(float(expected), abs=1e-5)


def test_logprob_mean_uses_the_token_mean(tmp_path, monkeypatch):
    """logprob=mean: s_i = (1/|a_i|) Σ_t log π(a_i,t); A = [1.5, −0.5, −1.5, 0.5] (keep: all count).
    The value and every gradient equal the hand-built loss at 1e-5."""
    ctx, output, group = run(tmp_path, monkeypatch, {"logprob": "mean"})
    advantages = torch.tensor([1.5, -0.5, -1.5, 0.5] * 2)
    means = torch.stack([row.mean() for row in independent_logps(ctx.model, group.batch)])
    expected = -(advantages * means).view(2, 4).sum(-1).div(4).mean()
    assert float(output.loss) == pytest.approx(float(expected), abs=1e-5)
    params = [p for p in ctx.model.parameters() if p.requires_grad]
    for got, want in zip(torch.autograd.grad(output.loss, params), torch.autograd.grad(expected, params), strict=True):
        assert torch.allclose(got, want, atol=1e-5)


def test_kl_coef_adds_beta_times_the_k3_kl(tmp_path, monkeypatch):
    """kl_coef = 0.5: L = PG + 0.5·KL with KL = Σ_tokens [exp(Δ) − Δ − 1] / N_tokens, Δ = log π_ref − log π_θ,
    π_ref the same model with its (perturbed) LoRA adapters disabled, both from plain per-candidate
    forwards. KL > 0 here, the logged ``kl`` equals it, and value and gradients match at 1e-5."""
    ctx, output, group = run(tmp_path, monkeypatch, {"kl_coef": 0.5})
    policy = independent_logps(ctx.model, group.batch)
    with torch.no_grad(), ctx.model.disable_adapter():
        reference = independent_logps(ctx.model, group.batch)
    tokens = sum(len(row) for row in policy)
    kl = sum(k3(p, r).sum() for p, r in zip(policy, reference, strict=True)) / tokens
    advantages = torch.tensor([1.5, -0.5, -1.5, 0.5] * 2)
    pg = -(advantages * torch.stack([row.sum() for row in policy])).view(2, 4).sum(-1).div(4).mean()
    expected = pg + 0.5 * kl
    assert float(kl) > 1e-4
    assert output.metrics["kl"] == pytest.approx(float(kl), abs=1e-6)
    assert float(output.loss) == pytest.approx(float(expected), abs=1e-5)
    params = [p for p in ctx.model.parameters() if p.requires_grad]
    for got, want in zip(torch.autograd.grad(output.loss, params), torch.autograd.grad(expected, params), strict=True):
        assert torch.allclose(got, want, atol=1e-5)
