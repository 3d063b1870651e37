"""Every DPO-family loss equals TRL 1.16's ``trl.trainer.dpo_trainer.DPOTrainer._compute_loss``.

TRL computes the loss inside ``_compute_loss`` from the per-token log-probs a (fused-head) model
returns. We call it unbound with a stand-in ``self`` (the attributes it reads) and a stand-in model
that returns fixed random per-token log-probs, with ``precompute_ref_logps=True`` so the reference
log-probs come from the batch. Our side goes through the real ``dpo`` objective's reduction
(sum or token mean) and loss classes, on the same numbers, in float64.
"""
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from gemkit.builtin.dpo import DPO, DPOConfig
from gemkit.losses.dpo import DPO_LOSSES
from gemkit.train.reference_cache import SequenceLogps


def random_batch(n: int = 5, width: int = 12, seed: int = 0):
    """2n rows [chosen; rejected] of per-token log-probs with prompt prefixes and right padding."""
    g = torch.Generator().manual_seed(seed)
    completion_mask = torch.zeros(2 * n, width, dtype=torch.long)
    for row in range(2 * n):
        prompt = int(torch.randint(1, 4, (1,), generator=g))
        length = int(torch.randint(2, width - prompt, (1,), generator=g))
        completion_mask[row, prompt:prompt + length] = 1
    shifted = completion_mask[:, 1:].double()
    policy = -torch.rand(2 * n, width - 1, generator=g, dtype=torch.float64) * 3 * shifted
    reference = -torch.rand(2 * n, width - 1, generator=g, dtype=torch.float64) * 3 * shifted
    return completion_mask, policy, reference


class _FusedOutputs(SimpleNamespace):
    pass


def trl_dpo_loss(loss_type: str, completion_mask, policy, reference, *, beta: float, label_smoothing: float = 0.0):
    n = policy.shape[0] // 2
    width = completion_mask.shape[1]
    policy = policy.clone().requires_grad_(True)

    def model(**kwargs):
        zeros = torch.zeros_like(policy)
        return _FusedOutputs(log_probs=policy, entropy=zeros, mean_logits=zeros, is_top1=zeros.bool())

    model.training = True
    accelerator = SimpleNamespace(device=torch.device("cpu"), gather=lambda x: x, gather_for_metrics=lambda x: x,
                                  unwrap_model=lambda m: m)
    ref_sums = reference.sum(-1)
    stand_in = SimpleNamespace(
        model=model, accelerator=accelerator, aux_loss_enabled=False, ld_alpha=None, precompute_ref_logps=True,
        f_divergence_type="reverse_kl", loss_types=[loss_type], loss_weights=[1.0], beta=beta,
        label_smoothing=label_smoothing, use_weighting=False, _metrics=defaultdict(lambda: defaultdict(list)),
        _total_train_tokens=0, _tp_size=1, args=SimpleNamespace(gradient_checkpointing_kwargs=None, discopop_tau=0.05),
    )
    inputs = {"input_ids": torch.zeros(2 * n, width, dtype=torch.long), "attention_mask": torch.ones(2 * n, width),
              "completion_mask": completion_mask, "ref_chosen_logps": ref_sums[:n], "ref_rejected_logps": ref_sums[n:]}
    trl_dpo = pytest.importorskip("trl.trainer.dpo_trainer")  # per test: the hand-worked tests run without TRL
    loss = trl_dpo.DPOTrainer._compute_loss(stand_in, model, inputs, return_outputs=False)
    return loss, stand_in._metrics["train"]


def ours(loss: str, completion_mask, policy, reference, *, beta: float, label_smoothing: float = 0.0):
    objective = DPO(DPOConfig(beta=beta, loss=loss, label_smoothing=label_smoothing))
    lengths = completion_mask[:, 1:].sum(-1).double()
    losses, metrics = objective.pair_losses(SequenceLogps(policy.sum(-1), lengths),
                                            SequenceLogps(reference.sum(-1), lengths))
    return losses.mean(), metrics


# Every variant TRL 1.16 implements under the same name.
SHARED = ["sigmoid", "sigmoid_norm", "ipo", "hinge", "robust", "bco_pair", "sppo_hard", "nca_pair"]


@pytest.mark.parametrize("loss_type", SHARED)
@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_dpo_loss_equals_trl(loss_type, beta):
    """Our loss and TRL's on the same random per-token log-probs agree to 1e-6 (and so do the rewards)."""
    label_smoothing = 0.2 if loss_type == "robust" else 0.0
    data = random_batch(seed=SHARED.index(loss_type) + int(beta * 10))
    theirs, their_metrics = trl_dpo_loss(loss_type, *data, beta=beta, label_smoothing=label_smoothing)
    mine, my_metrics = ours(loss_type, *data, beta=beta, label_smoothing=label_smoothing)
    assert abs(float(mine.detach()) - float(theirs.detach())) < 1e-6
    for key in ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen",
                "logps/rejected"):
        assert abs(my_metrics[key] - their_metrics[key][-1]) < 1e-6, key


@pytest.mark.parametrize("eps", [0.1, 0.3])
def test_cdpo_is_trl_sigmoid_mixed_with_flipped_labels(eps):
    """TRL 1.16's ``sigmoid`` has no label smoothing, so cDPO is checked against its definition:
    L_cDPO = (1−ε)·L_TRL(c ≻ r) + ε·L_TRL(r ≻ c), the TRL loss on the pairs with labels flipped
    (rows [0,n) and [n,2n) swapped) weighted by ε."""
    mask, policy, reference = random_batch(seed=7)
    n = policy.shape[0] // 2
    flip = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    straight, _ = trl_dpo_loss("sigmoid", mask, policy, reference, beta=0.3)
    flipped, _ = trl_dpo_loss("sigmoid", mask[flip], policy[flip], reference[flip], beta=0.3)
    for name in ("cdpo", "sigmoid"):
        mine, _ = ours(name, mask, policy, reference, beta=0.3, label_smoothing=eps)
        assert abs(float(mine) - float((1 - eps) * straight + eps * flipped)) < 1e-6


def test_losses_by_hand():
    """One pair, β = 0.5: π_c = −2, π_r = −4, ρ_c = −3, ρ_r = −3 ⇒ u = 1, v = −1, h = 2.

    sigmoid: −log σ(0.5·2) = −log σ(1) = 0.313262;  hinge: max(0, 1 − 1) = 0;
    ipo: (2 − 1/(2·0.5))² = (2 − 1)² = 1;  sppo_hard: (1 − 1)² + (−1 + 1)² = 0;
    nca_pair: r_c = 0.5, r_r = −0.5: −log σ(0.5) − ½ log σ(−0.5) − ½ log σ(0.5)
              = 0.474077 + ½·0.974077 + ½·0.474077 = 1.198154;
    bco_pair: −log σ(0.5) − log σ(0.5) = 0.948154.
    """
    pc, pr, rc, rr = (torch.tensor([x]) for x in (-2.0, -4.0, -3.0, -3.0))
    expected = {"sigmoid": 0.313262, "hinge": 0.0, "ipo": 1.0, "sppo_hard": 0.0, "nca_pair": 1.198154,
                "bco_pair": 0.948154}
    for name, value in expected.items():
        assert float(DPO_LOSSES[name]()(pc, pr, rc, rr, beta=0.5)) == pytest.approx(value, abs=1e-5), name


def test_bco_pair_delta_is_running_mean_of_rewards():
    """β = 1. Batch 1: rewards r_c = 1, r_r = −3 ⇒ δ = (1 − 3)/2 = −1, L = −log σ(2) − log σ(2) = 0.253856.
    Batch 2: r_c = 3, r_r = 1 ⇒ δ = (−1·2 + 3 + 1)/4 = 0.5, L = −log σ(2.5) − log σ(−0.5) = 0.079 + 0.974 = 1.053."""
    loss = DPO_LOSSES["bco_pair_delta"]()
    zero = torch.zeros(1)
    first = loss(torch.tensor([1.0]), torch.tensor([-3.0]), zero, zero, beta=1.0)
    assert loss.delta == pytest.approx(-1.0) and float(first) == pytest.approx(-2 * F.logsigmoid(torch.tensor(2.0)))
    second = loss(torch.tensor([3.0]), torch.tensor([1.0]), zero, zero, beta=1.0)
    assert loss.delta == pytest.approx(0.5)
    assert float(second) == pytest.approx(float(-F.logsigmoid(torch.tensor(2.5)) - F.logsigmoid(torch.tensor(-0.5))))


def test_bad_options_are_reported_together():
    from gemkit.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        DPOConfig(loss="sigmod", beta=0)
    assert len(info.value.problems) == 2 and "sigmoid" in str(info.value)


def test_bco_pair_delta_equals_trl_bco_pair_shifted_by_the_running_mean():
    """``bco_pair_delta`` over three successive batches of 5, 3 and 4 pairs (β = 0.3) against TRL 1.16.

    TRL 1.16's ``bco_pair`` is L = −log σ(βu) − log σ(−βv) with no δ (it dropped the RunningMoments
    of TRL < 1.0), so δ is folded into its inputs: adding δ/β to both reference log-probs turns βu
    into βu − δ and βv into βv − δ, which is Jung et al.'s Eq. 9. δ is worked out here, as
    gemkit/losses/dpo.py documents it: the mean of every implicit reward β·u, β·v seen so far, this
    batch's included. The batches differ in size, so this is the count-weighted mean, not the mean of
    batch means that TRL < 1.0 fed its RunningMoments (the two agree only for equal batch sizes).

    Checked it can fail: ``self.delta = float(rewards.mean())`` (this batch only) in BCOPairDelta
    fails at the second batch.
    """
    beta = 0.3
    objective = DPO(DPOConfig(beta=beta, loss="bco_pair_delta"))
    seen: list[float] = []
    for step, n in enumerate((5, 3, 4)):
        mask, policy, reference = random_batch(n=n, seed=20 + step)
        lengths = mask[:, 1:].sum(-1).double()
        losses, _ = objective.pair_losses(SequenceLogps(policy.sum(-1), lengths),
                                          SequenceLogps(reference.sum(-1), lengths))
        seen += (beta * (policy.sum(-1) - reference.sum(-1))).tolist()
        delta = sum(seen) / len(seen)
        assert objective.loss_fn.delta == pytest.approx(delta, abs=1e-12)
        shifted = reference.clone()
        shifted[:, 0] += delta / beta  # TRL sums the row, so one column carries the shift
        theirs, _ = trl_dpo_loss("bco_pair", mask, policy, shifted, beta=beta)
        assert abs(float(losses.mean()) - float(theirs.detach())) < 1e-6, step
