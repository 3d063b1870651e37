"""rm-ppo's real ``PPO.compute_loss`` on the tiny model: clipped surrogate, value loss and GAE.

The reward model is replaced by fixed scores (tests/_objective_harness.py's FixedScorer, S = [3, 1, 0, 2]
per group of k = 4, two prompts) and the candidates end after 1, 3, 5 (cut, no EOS) and 2 sampled
tokens, so with the end-of-turn token the response lengths are T = [2, 4, 5, 3] (28 tokens in all).
Everything else is the real objective: sampling, the forward pass, the value head on the LM head's
input, GAE, whitening, the surrogate and the value loss.

Checked on purpose: these tests fail when gemkit/builtin/ppo.py multiplies the loss by −7, flips the
surrogate's sign, passes λ = 1 instead of cfg.gae_lambda to GAE, or puts the score on the first instead of
the last response token; and when gemkit/losses/policy_gradient.py drops γλ from GAE's recursion.
Not covered: a wrong clip ε. rm-ppo makes one update per rollout (μ = 1), so ρ = 1 and V = V_old at
the update and neither clip can act (passing clip = 0 left these tests green); the clip arithmetic
itself is checked by tests/test_losses_ranking_rl.py::test_clipped_surrogate_by_hand.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from _objective_harness import (
    PROMPTS,
    FixedScorer,
    independent_logps,
    lora_context,
    spy_on_groups,
    stop_early,
)

from gemkit.builtin import ppo as ppo_module
from gemkit.data.records import PreferencePair
from gemkit.registry import registry

SCORES = [3.0, 1.0, 0.0, 2.0]
CUTS = [1, 3, None, 2]
RECORDS = [PreferencePair(prompt, "-", "+", id=f"p{i}") for i, prompt in enumerate(PROMPTS)]


def run(tmp_path, monkeypatch, options, *, weight_std: float, bias: float):
    """``PPO.compute_loss`` with the fixed scores and a value head V = w·h + b (w ~ N(0, weight_std²))."""
    (tmp_path / "rm").mkdir()
    (tmp_path / "rm" / "gemkit.json").write_text("{}")  # PPOConfig checks only that it is a checkpoint
    monkeypatch.setattr("gemkit.train.checkpoint.load_trained",
                        lambda *a, **k: SimpleNamespace(model=torch.nn.Linear(1, 1)))
    monkeypatch.setattr(ppo_module, "RewardModelScorer", lambda *a, **k: FixedScorer(SCORES))
    ctx = lora_context(tmp_path, "rm-ppo")
    objective = registry("objective").get("rm-ppo").build(
        {"reward_model": str(tmp_path / "rm"), "k": 4, "max_new_tokens": 5, "temperature": 1.0, **options})
    objective.setup(ctx)
    torch.manual_seed(5)
    with torch.no_grad():
        objective.value_head.weight.normal_(0.0, weight_std)
        objective.value_head.bias.fill_(bias)
    groups = spy_on_groups(monkeypatch, ppo_module)
    stop_early(monkeypatch, CUTS)
    torch.manual_seed(0)
    output = objective.compute_loss(ctx, RECORDS)
    return ctx, objective, output, groups[0]


def grads(loss, params):
    return torch.autograd.grad(loss, params, retain_graph=True)


def test_gae_and_value_loss_worked_by_hand(tmp_path, monkeypatch):
    """kl_coef = 0, value head w = 0, b = 0.5 (V_t = 0.5), γ = 1, gae_lambda λ = 0.5, c_v = 0.5.

    Rewards are the score on the last token only, so δ_t = 0 before it and δ_T = S − 0.5, and
    Â_t = λ^(T−t)·(S − 0.5) (GAE, Schulman et al. 2016, Eq. 16). Per group:
      T=2, S−½ = 2.5:  Â = [1.25, 2.5]                        Σ = 3.75,     ΣÂ² = 7.8125
      T=4, S−½ = 0.5:  Â = [0.0625, 0.125, 0.25, 0.5]         Σ = 0.9375,   ΣÂ² = 0.33203125
      T=5, S−½ = −0.5: Â = −[0.03125, 0.0625, 0.125, 0.25, 0.5] Σ = −0.96875, ΣÂ² = 0.3330078125
      T=3, S−½ = 1.5:  Â = [0.375, 0.75, 1.5]                 Σ = 2.625,    ΣÂ² = 2.953125
    Two groups: ΣÂ = 12.6875, ΣÂ² = 22.861328125 over N = 28 tokens.
    Returns R = Â + V, so the value loss ½·mean((V − R)²) = ½·22.861328125/28 = 0.408238002232.
    Whitened advantages have mean 0, so at ρ = 1 the surrogate's value is 0 and
    loss = 0 + 0.5·0.408238002232 = 0.204119001116; ∂loss/∂b = c_v·mean(V − R) = −0.5·12.6875/28
    = −0.2265625. The surrogate's gradient is −(1/N)·Σ Ã_t·∇log π_t with Ã = (Â − 0.453125)/σ,
    σ² = 22.861328125/28 − 0.453125² = 0.611153738839 (population variance, + 10⁻⁸).
    """
    ctx, objective, output, group = run(tmp_path, monkeypatch,
                                        {"kl_coef": 0.0, "gamma": 1.0, "gae_lambda": 0.5, "value_coef": 0.5},
                                        weight_std=0.0, bias=0.5)
    policy = independent_logps(ctx.model, group.batch)
    assert [len(row) for row in policy] == [2, 4, 5, 3] * 2
    assert output.metrics["value_loss"] == pytest.approx(0.408238002232, abs=1e-7)
    assert output.metrics["policy_loss"] == pytest.approx(0.0, abs=1e-6)
    assert float(output.loss) == pytest.approx(0.204119001116, abs=1e-7)
    (bias_grad,) = grads(output.loss, [objective.value_head.bias])
    assert float(bias_grad) == pytest.approx(-0.2265625, abs=1e-7)

    per_group = [[2.5 * 0.5 ** (1 - t) for t in range(2)], [0.5 * 0.5 ** (3 - t) for t in range(4)],
                 [-0.5 * 0.5 ** (4 - t) for t in range(5)], [1.5 * 0.5 ** (2 - t) for t in range(3)]]
    sigma = (0.611153738839 + 1e-8) ** 0.5
    whitened = [torch.tensor([(a - 0.453125) / sigma for a in row]) for row in per_group * 2]
    surrogate = -sum((w * torch.exp(p - p.detach())).sum() for w, p in zip(whitened, policy, strict=True)) / 28
    params = [p for p in ctx.model.parameters() if p.requires_grad]
    want = grads(surrogate, params)
    assert any(float(w.abs().max()) > 1e-4 for w in want)
    for got, expected in zip(grads(output.loss, params), want, strict=True):
        assert torch.allclose(got, expected, atol=1e-6)


def lm_head_inputs(model, batch):
    """Per candidate, the LM head's input at the positions that predict its response tokens (one
    plain forward per row, read with our own hook)."""
    captured, out = [], []
    handle = model.get_output_embeddings().register_forward_pre_hook(lambda module, args: captured.append(args[0]))
    try:
        with torch.no_grad():
            for ids, attention, response in zip(batch.input_ids, batch.attention_mask, batch.response_mask,
                                                strict=True):
                real = attention.bool()
                model(input_ids=ids[real][None])
                positions = response[real].bool().nonzero().squeeze(-1)
                out.append(captured[-1][0, positions - 1].float())
    finally:
        handle.remove()
    return out


def test_full_loss_with_kl_shaped_rewards_and_a_learned_value_head(tmp_path, monkeypatch):
    """kl_coef = 0.2, γ = 0.9, λ = 0.8, c_v = 0.3, V = w·h + 0.1 with w ~ N(0, 0.05²). Rebuilt here
    with plain Python loops: r_t = −0.2·(log π_θ − log π_ref)_t + [t = T]·S, δ_t = r_t + γ·V_{t+1} − V_t
    (V_{T+1} = 0), Â_T = δ_T, Â_t = δ_t + γλ·Â_{t+1}, R = Â + V; Ã = whiten(Â) over all 28 tokens;
    loss = −(1/28)·Σ Ã_t·ρ_t + 0.3·½·mean((V − R)²), ρ = exp(log π_θ − sg log π_θ). Value, the logged
    policy and value losses, and the LoRA and value-head gradients agree at 1e-5."""
    gamma, lam, beta, coef = 0.9, 0.8, 0.2, 0.3
    ctx, objective, output, group = run(tmp_path, monkeypatch,
                                        {"kl_coef": beta, "gamma": gamma, "gae_lambda": lam, "value_coef": coef},
                                        weight_std=0.05, bias=0.1)
    policy = independent_logps(ctx.model, group.batch)
    with torch.no_grad(), ctx.model.disable_adapter():
        reference = independent_logps(ctx.model, group.batch)
    head = objective.value_head
    values = [head(h).squeeze(-1) for h in lm_head_inputs(ctx.model, group.batch)]
    advantages, returns = [], []
    for j, (p, r, v) in enumerate(zip(policy, reference, values, strict=True)):
        rewards = (-beta * (p - r)).detach().tolist()
        rewards[-1] += SCORES[j % 4]
        v_list = v.detach().tolist()
        row, running = [0.0] * len(rewards), 0.0
        for t in reversed(range(len(rewards))):
            next_value = v_list[t + 1] if t + 1 < len(rewards) else 0.0
            running = rewards[t] + gamma * next_value - v_list[t] + gamma * lam * running
            row[t] = running
        advantages.append(row)
        returns.append(torch.tensor([a + b for a, b in zip(row, v_list, strict=True)]))
    flat = [a for row in advantages for a in row]
    mean = sum(flat) / len(flat)
    std = (sum((a - mean) ** 2 for a in flat) / len(flat) + 1e-8) ** 0.5
    surrogate = -sum((torch.tensor([(a - mean) / std for a in row]) * torch.exp(p - p.detach())).sum()
                     for row, p in zip(advantages, policy, strict=True)) / len(flat)
    value_loss = 0.5 * sum(((v - ret) ** 2).sum() for v, ret in zip(values, returns, strict=True)) / len(flat)
    expected = surrogate + coef * value_loss
    assert len(flat) == 28 and float(value_loss) > 0.1
    assert output.metrics["value_loss"] == pytest.approx(float(value_loss), abs=1e-5)
    assert float(output.loss) == pytest.approx(float(expected), abs=1e-5)
    params = [p for p in ctx.model.parameters() if p.requires_grad] + list(head.parameters())
    for got, want in zip(grads(output.loss, params), grads(expected, params), strict=True):
        assert torch.allclose(got, want, atol=1e-5)
