"""GRPO's glue: the real ``GRPO.compute_loss`` on the tiny model equals its loss rebuilt by hand.

tests/test_grpo_parity.py checks :func:`gemkit.losses.grpo.grpo_loss` against TRL; this file checks
what the objective feeds it. Two prompts × k = 4 candidates get the scores S = [3, 1, 0, 2]
(tests/_objective_harness.py) and end after 1, 3, 5 (cut, no EOS) and 2 sampled tokens, so
with the end-of-turn token |o| = [2, 4, 5, 3] and the aggregations differ; per group r̄ = 1.5 and the unbiased std is
√((1.5² + 0.5² + 1.5² + 0.5²)/3) = √(5/3) = 1.290994, so

    Â = (S − 1.5) / (1.290994 + 10⁻⁴) = [1.161911, −0.387304, −1.161911, 0.387304]   (paper, Eq. 3)
    (scale_by_std: false ⇒ Â = [1.5, −0.5, −1.5, 0.5]).

With μ = 1 the ratio is ρ_t = exp(log π_θ − sg(log π_θ)) = 1 in value, so per token
ℓ_{i,t} = −ρ_t·Â_i + β·k3_t, where log π comes from one plain forward per sampled candidate
(the harness's own log-softmax) and k3_t = exp(Δ) − Δ − 1, Δ = log π_ref − log π_θ, π_ref the same
LoRA model with its adapters disabled. The aggregations are then written out here:
grpo = mean_i (Σ_t ℓ_{i,t} / |o_i|), bnpo = Σ ℓ / Σ|o_i|, dr_grpo = Σ ℓ / (8 · max_new_tokens).
Value and every LoRA gradient must agree at 1e-5.

Checked on purpose: a case fails when gemkit/builtin/grpo.py passes the advantages with the wrong
sign, drops ``std_eps`` (10⁻⁴ → 0) or ``scale_by_std`` from the AdvantageRule, ignores
``aggregation`` (always ``grpo``), passes ``beta`` as 0, or when gemkit/gem/group.py leaves the
end-of-turn token out of the sequences.
"""
from __future__ import annotations

import pytest
import torch
from _objective_harness import (
    PROMPTS,
    FixedScorer,
    independent_logps,
    k3,
    lora_context,
    spy_on_groups,
    stop_early,
)

from gemkit.builtin import grpo as grpo_module
from gemkit.registry import registry

SCORES = [3.0, 1.0, 0.0, 2.0]
MAX_NEW = 5
STD = (5 / 3) ** 0.5  # unbiased std of [3, 1, 0, 2]
CUTS = [1, 3, None, 2]  # candidates end after 1, 3, 5 (unfinished), 2 tokens: |o| = [2, 4, 5, 3] with EOS


def run(tmp_path, monkeypatch, options):
    ctx = lora_context(tmp_path, "grpo")
    objective = registry("objective").get("grpo").build({"k": 4, "max_new_tokens": MAX_NEW, "temperature": 1.0,
                                                         "reward": "entropy", **options})
    objective.reward = FixedScorer(SCORES)
    groups = spy_on_groups(monkeypatch, grpo_module)
    stop_early(monkeypatch, CUTS)
    torch.manual_seed(0)
    output = objective.compute_loss(ctx, PROMPTS)
    return ctx, output, groups[0]


@pytest.mark.parametrize("aggregation", ["grpo", "bnpo", "dr_grpo"])
@pytest.mark.parametrize("beta,scale_by_std", [(0.0, True), (0.3, True), (0.3, False)])
def test_compute_loss_equals_the_loss_rebuilt_by_hand(tmp_path, monkeypatch, aggregation, beta, scale_by_std):
    """See the module docstring for Â and the three aggregations."""
    ctx, output, group = run(tmp_path, monkeypatch,
                             {"aggregation": aggregation, "beta": beta, "scale_by_std": scale_by_std})
    centred = torch.tensor(SCORES) - 1.5
    advantages = (centred / (STD + 1e-4) if scale_by_std else centred).repeat(2)
    assert torch.allclose(group.advantages.reshape(-1), advantages, atol=1e-6)

    policy = independent_logps(ctx.model, group.batch)
    with torch.no_grad(), ctx.model.disable_adapter():
        reference = independent_logps(ctx.model, group.batch)
    per_candidate = []
    for a, p, r in zip(advantages, policy, reference, strict=True):
        ratio = torch.exp(p - p.detach())
        per_candidate.append(-ratio * a + beta * k3(p, r))
    if aggregation == "grpo":
        expected = torch.stack([row.mean() for row in per_candidate]).mean()
    elif aggregation == "bnpo":
        expected = torch.cat(per_candidate).sum() / sum(len(row) for row in per_candidate)
    else:
        expected = torch.cat(per_candidate).sum() / (len(per_candidate) * MAX_NEW)
    assert [len(row) for row in policy] == [2, 4, 5, 3] * 2
    if beta > 0:
        assert float(torch.cat([k3(p, r) for p, r in zip(policy, reference, strict=True)]).mean()) > 1e-4
    assert float(output.loss) == pytest.approx(float(expected), abs=1e-5)
    params = [p for p in ctx.model.parameters() if p.requires_grad]
    got, want = torch.autograd.grad(output.loss, params), torch.autograd.grad(expected, params)
    assert any(float(w.abs().max()) > 1e-4 for w in want)  # the gradient is not trivially zero
    for g, w in zip(got, want, strict=True):
        assert torch.allclose(g, w, atol=1e-5)
