"""GRPO's loss equals TRL 1.16's ``GRPOTrainer._compute_loss`` for every aggregation, β = 0 and β > 0.

TRL's side is its real trainer: a ``GRPOTrainer`` built around the tiny random model, whose
``_compute_loss`` is fed prepared inputs (prompt and completion ids with ragged masks, old and
reference per-token log-probs, advantages). It computes the policy's per-token log-probs itself;
gemkit's :func:`gemkit.losses.grpo.grpo_loss` gets the log-probs of TRL's own
``_get_per_token_logps_and_entropies`` on the same ids, so both sides see the same numbers. The old
log-probs differ from the current ones, so ratios spread over [0.5, 1.6] and both clip bounds act.

Checked on purpose: with the surrogate's sign flipped, with ``clip_high`` ignored, with the KL
left out, with the KL's ratio weight dropped, and with ``dr_grpo`` dividing by the token count instead of b·L_max, these tests fail.
"""
from __future__ import annotations

import pytest
import torch

from gemkit.losses.grpo import AGGREGATIONS, grpo_loss

MAX_COMPLETION = 8
ROWS = 4


@pytest.fixture(scope="module")
def trainer(tmp_path_factory):
    """A real TRL GRPOTrainer (β = 0 at construction: TRL would otherwise load a reference from the Hub;
    β is set on the instance before each call, which is the attribute ``_compute_loss`` reads)."""
    pytest.importorskip("trl")
    datasets = pytest.importorskip("datasets")
    from trl import GRPOConfig, GRPOTrainer

    from gemkit.testing import tiny_bundle

    bundle = tiny_bundle(seed=3)
    args = GRPOConfig(output_dir=str(tmp_path_factory.mktemp("trl-grpo")), per_device_train_batch_size=ROWS,
                      num_generations=ROWS, beta=0.0, max_completion_length=MAX_COMPLETION, report_to=[],
                      use_cpu=True, temperature=1.0, logging_strategy="no", save_strategy="no")
    built = GRPOTrainer(model=bundle.model, reward_funcs=lambda completions, **kw: [0.0] * len(completions), args=args,
                        train_dataset=datasets.Dataset.from_dict({"prompt": ["a"] * ROWS}),
                        processing_class=bundle.tokenizer)
    built.current_gradient_accumulation_steps = 1  # set by TRL's training loop; one micro-batch per step here
    built.model.train()
    return built


def prepared_inputs(seed: int) -> dict[str, torch.Tensor]:
    """Left-padded prompts of 3–5 tokens, completions of 2..8 tokens (ragged masks), log-probs near the model's."""
    g = torch.Generator().manual_seed(seed)
    prompt_ids = torch.randint(5, 500, (ROWS, 5), generator=g)
    prompt_mask = torch.ones(ROWS, 5, dtype=torch.long)
    prompt_mask[0, :2] = 0
    prompt_mask[2, :1] = 0
    completion_ids = torch.randint(5, 500, (ROWS, MAX_COMPLETION), generator=g)
    lengths = torch.tensor([2, 8, 5, 3])
    completion_mask = (torch.arange(MAX_COMPLETION)[None, :] < lengths[:, None]).long()
    return {"prompt_ids": prompt_ids, "prompt_mask": prompt_mask, "completion_ids": completion_ids,
            "completion_mask": completion_mask, "advantages": torch.randn(ROWS, generator=g) * 1.5,
            "num_items_in_batch": completion_mask.sum()}


def policy_logps(trainer, inputs):
    ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
    attention = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
    logps, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, attention, MAX_COMPLETION)
    return logps


@pytest.mark.parametrize("aggregation", sorted(AGGREGATIONS))
@pytest.mark.parametrize("beta", [0.0, 0.04])
@pytest.mark.parametrize("clip_high,correction", [(None, False), (0.28, True)])
def test_grpo_loss_and_gradient_equal_trl(trainer, aggregation, beta, clip_high, correction):
    """Value at 1e-6 and every parameter gradient at 1e-6, TRL's ``loss_type`` = gemkit's aggregation,
    TRL's ``use_bias_correction_kl`` = gemkit's ``kl_ratio_correction``."""
    inputs = prepared_inputs(seed=7)
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        current = policy_logps(trainer, inputs)
    # log ρ ∈ [−0.7, 0.5]: ρ from 0.50 to 1.65, beyond both 0.8 and 1.2 / 1.28.
    inputs["old_per_token_logps"] = current - (torch.rand(current.shape, generator=g) * 1.2 - 0.7)
    inputs["ref_per_token_logps"] = current + torch.randn(current.shape, generator=g) * 0.3
    trainer.loss_type, trainer.beta = aggregation, beta
    trainer.args.use_bias_correction_kl = correction
    trainer.epsilon_low, trainer.epsilon_high = 0.2, 0.2 if clip_high is None else clip_high
    params = [p for p in trainer.model.parameters() if p.requires_grad]

    theirs = trainer._compute_loss(trainer.model, inputs)
    their_grads = torch.autograd.grad(theirs, params)
    logps = policy_logps(trainer, inputs)
    ours, stats = grpo_loss(logps, inputs["old_per_token_logps"], inputs["advantages"], inputs["completion_mask"],
                            reference_logps=inputs["ref_per_token_logps"], beta=beta, clip_low=0.2,
                            clip_high=clip_high, aggregation=aggregation, max_completion_length=MAX_COMPLETION,
                            kl_ratio_correction=correction)
    our_grads = torch.autograd.grad(ours, params)

    assert abs(float(ours.detach()) - float(theirs.detach())) < 1e-6
    assert abs(float(ours.detach())) > 1e-3  # a real value, not two zeros
    for mine, other in zip(our_grads, their_grads, strict=True):
        assert torch.allclose(mine, other, atol=1e-6, rtol=0)
    assert 0 < stats["clip_fraction"] < 1


def test_aggregations_by_hand():
    """Two candidates, ρ = 1 (old = current), β = 0, so ℓ_{i,t} = −Â_i on every response token.
    Â = [1, −2], lengths 1 and 3 (L_max = 4):
      grpo    = mean(−1/1·1, +2·3/3) = mean(−1, 2) = 0.5
      bnpo    = dapo = (−1 + 2·3) / 4 = 1.25
      dr_grpo = (−1 + 6) / (2·4) = 0.625
    With β = 0.5 and log π_ref − log π_θ = ln 2 on every token, KL_k3 = 2 − ln 2 − 1 = 0.306853, added
    per token before averaging, so every aggregation above except dr_grpo grows by 0.5·0.306853 =
    0.153426, and dr_grpo by 0.5·0.306853·4/8 = 0.076713."""
    logps = torch.zeros(2, 3)
    mask = torch.tensor([[1.0, 0, 0], [1, 1, 1]])
    advantages = torch.tensor([1.0, -2.0])
    expected = {"grpo": 0.5, "bnpo": 1.25, "dapo": 1.25, "dr_grpo": 0.625}
    kl = 2 - torch.log(torch.tensor(2.0)).item() - 1
    for name, value in expected.items():
        plain, _ = grpo_loss(logps, logps, advantages, mask, aggregation=name, max_completion_length=4)
        assert float(plain) == pytest.approx(value, abs=1e-6), name
        with_kl, stats = grpo_loss(logps, logps, advantages, mask, aggregation=name, max_completion_length=4,
                                   reference_logps=logps + torch.log(torch.tensor(2.0)), beta=0.5)
        shift = 0.5 * kl * (0.5 if name == "dr_grpo" else 1.0)
        assert float(with_kl) == pytest.approx(value + shift, abs=1e-6), name
        assert stats["kl"] == pytest.approx(kl, abs=1e-6)


def test_unknown_aggregation_is_refused():
    from gemkit.builtin.grpo import GRPOConfig
    from gemkit.errors import ConfigError

    with pytest.raises(ConfigError, match="aggregation must be one of bnpo, dapo, dr_grpo, grpo"):
        GRPOConfig(aggregation="token")
