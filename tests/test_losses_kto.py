"""KTO equals TRL 1.16's ``trl.trainer.kto_trainer.KTOTrainer._compute_loss`` on the same random log-probs.

TRL's ``_compute_loss`` is called unbound with a stand-in ``self`` (the attributes it reads), a
stand-in model returning fixed per-token log-probs, ``precompute_ref_logps=True`` (reference
log-probs from the batch) and ``_compute_kl_logps`` returning fixed log-probs of the mismatched
rows. Our side is the ``kto`` objective's ``example_losses`` on the same sequence sums.
"""
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from gemkit.builtin.kto import KTO, KTOConfig
from gemkit.losses.kto import kto_loss, kto_reference_point


def trl_kto(policy_tokens, reference_sums, kl_policy, kl_reference, completion_mask, labels, *, beta, wd, wu):
    kto_trainer = pytest.importorskip("trl.trainer.kto_trainer")  # per test: the hand-worked test runs without TRL
    rows, width = completion_mask.shape

    def model(**kwargs):
        zeros = torch.zeros_like(policy_tokens)
        return SimpleNamespace(log_probs=policy_tokens, entropy=zeros, mean_logits=zeros)

    model.training = True
    stand_in = SimpleNamespace(
        model=model, calculate_KL=True, precompute_ref_logps=True, loss_type="kto", beta=beta, desirable_weight=wd,
        undesirable_weight=wu, aux_loss_enabled=False, _metrics=defaultdict(lambda: defaultdict(list)),
        _total_train_tokens=0, _tp_size=1, _compute_kl_logps=lambda model, batch: kl_policy,
        accelerator=SimpleNamespace(device=torch.device("cpu"), gather_for_metrics=lambda x: x, unwrap_model=lambda m: m),
    )
    batch = {"input_ids": torch.zeros(rows, width, dtype=torch.long), "attention_mask": torch.ones(rows, width),
             "completion_mask": completion_mask, "label": labels, "ref_logps": reference_sums, "ref_KL_logps": kl_reference}
    loss = kto_trainer.KTOTrainer._compute_loss(stand_in, model, batch, return_outputs=False)
    return loss, stand_in._metrics["train"]


@pytest.mark.parametrize("beta,wd,wu,kl_shift", [(0.1, 1.0, 1.0, 0.5), (0.5, 1.33, 1.0, -2.0), (1.0, 1.0, 0.7, 0.1)])
def test_kto_equals_trl(beta, wd, wu, kl_shift):
    """n = 4 pairs ⇒ 8 examples (4 desirable then 4 undesirable) and 8 mismatched KL rows.
    ``kl_shift`` moves the KL rows' policy log-probs so z_ref is positive or clamped to 0."""
    g = torch.Generator().manual_seed(int(beta * 100))
    n, width = 4, 10
    mask = torch.zeros(2 * n, width, dtype=torch.long)
    for row in range(2 * n):
        mask[row, 2:2 + int(torch.randint(2, 8, (1,), generator=g))] = 1
    tokens = -torch.rand(2 * n, width - 1, generator=g, dtype=torch.float64) * mask[:, 1:]
    reference = -torch.rand(2 * n, generator=g, dtype=torch.float64) * 5
    kl_reference = -torch.rand(2 * n, generator=g, dtype=torch.float64) * 5
    kl_policy = kl_reference + kl_shift + 0.1 * torch.randn(2 * n, generator=g, dtype=torch.float64)
    labels = torch.tensor([True] * n + [False] * n)
    theirs, their_metrics = trl_kto(tokens, reference, kl_policy, kl_reference, mask, labels, beta=beta, wd=wd, wu=wu)

    objective = KTO(KTOConfig(beta=beta, desirable_weight=wd, undesirable_weight=wu))
    losses, metrics = objective.example_losses(torch.cat([tokens.sum(-1), kl_policy]),
                                               torch.cat([reference, kl_reference]), n)
    assert abs(float(losses.mean()) - float(theirs)) < 1e-6
    assert abs(metrics["kl"] - their_metrics["kl"][-1]) < 1e-6
    for key in ("rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen", "logps/rejected"):
        assert abs(metrics[key] - their_metrics[key][-1]) < 1e-6, key


def test_kto_by_hand():
    """β = 1, z_ref = max(0, mean([1, 3] − [0, 0])) = 2. Desirable r = 2 ⇒ 1 − σ(0) = 0.5;
    undesirable r = 4 ⇒ 1 − σ(2 − 4) = 1 − σ(−2) = 0.880797; with λ_U = 2 ⇒ 1.761594."""
    z = kto_reference_point(torch.tensor([1.0, 3.0]), torch.zeros(2))
    assert float(z) == 2.0
    assert float(kto_reference_point(torch.tensor([-1.0]), torch.zeros(1))) == 0.0  # clamped at 0
    out = kto_loss(torch.tensor([2.0, 4.0]), torch.zeros(2), torch.tensor([True, False]), z, beta=1.0,
                   undesirable_weight=2.0)
    assert out.tolist() == pytest.approx([0.5, 1.761594], abs=1e-6)
