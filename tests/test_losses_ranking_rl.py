"""PRO, Bradley–Terry (vs TRL 1.16 ``trl.trainer.reward_trainer.RewardTrainer.compute_loss``), GAE,
PPO clipping and the k3 KL estimator, with their arithmetic worked by hand."""
import math
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from gemkit.losses.policy_gradient import (
    clipped_surrogate,
    clipped_value_loss,
    generalised_advantages,
    k3_kl,
    whiten,
)
from gemkit.losses.ranking import bradley_terry_loss, pro_loss


def test_pro_three_candidates_by_hand():
    """s = [2, 1, 0] ranked best first:
    k=1: −log(e²/(e²+e¹+e⁰)) = −2 + log(7.389056+2.718282+1) = −2 + 2.407606 = 0.407606
    k=2: −log(e¹/(e¹+e⁰)) = −1 + log(3.718282) = 0.313262;  L = 0.720868."""
    assert float(pro_loss(torch.tensor([[2.0, 1.0, 0.0]]))) == pytest.approx(0.720868, abs=1e-5)


def test_pro_of_a_pair_is_dpo_shaped_and_masks_missing_candidates():
    """n = 2: L = −log σ(s_1 − s_2). A masked middle candidate drops out: [3, x, 1] with x invalid ⇒ −log σ(2);
    a masked last candidate leaves nothing to rank below the second: [3, 1, x] ⇒ −log(e³/(e³+e¹)) = −log σ(2)."""
    scores = torch.tensor([[0.3, -0.4]])
    assert float(pro_loss(scores)) == pytest.approx(float(-F.logsigmoid(torch.tensor(0.7))), abs=1e-6)
    expected = float(-F.logsigmoid(torch.tensor(2.0)))
    valid = torch.tensor([[True, False, True], [True, True, False]])
    out = pro_loss(torch.tensor([[3.0, 99.0, 1.0], [3.0, 1.0, 99.0]]), valid)
    assert out.tolist() == pytest.approx([expected, expected], abs=1e-6)


@pytest.mark.parametrize("center", [None, 0.01])
def test_bradley_terry_equals_trl_reward_trainer(center):
    """Same random rewards (as the model's logits) and margins through TRL's compute_loss and ours."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(12, 1, generator=g, dtype=torch.float64)
    margin = torch.rand(6, generator=g, dtype=torch.float64)
    model = lambda **kwargs: SimpleNamespace(logits=logits)  # noqa: E731
    model.training = True
    stand_in = SimpleNamespace(
        model=model, args=SimpleNamespace(center_rewards_coefficient=center), _metrics=defaultdict(lambda: defaultdict(list)),
        _total_train_tokens=0, _tp_size=1,
        accelerator=SimpleNamespace(gather_for_metrics=lambda x: x, gather=lambda x: x))
    trl_rm = pytest.importorskip("trl.trainer.reward_trainer")
    inputs = {"input_ids": torch.zeros(12, 3, dtype=torch.long), "attention_mask": torch.ones(12, 3), "margin": margin}
    theirs = trl_rm.RewardTrainer.compute_loss(stand_in, model, inputs)
    rewards = logits.squeeze(-1)
    mine = bradley_terry_loss(rewards[:6], rewards[6:], margin=margin, center_coef=center or 0.0)
    assert abs(float(mine) - float(theirs)) < 1e-6


def test_bradley_terry_by_hand():
    """r_c = 1, r_r = 0, m = 0.5, η = 0.1: −log σ(0.5) + 0.1·(1 + 0)² = 0.474077 + 0.1 = 0.574077."""
    assert float(bradley_terry_loss(torch.tensor([1.0]), torch.tensor([0.0]), margin=0.5, center_coef=0.1)) == \
        pytest.approx(0.574077, abs=1e-6)


def test_gae_by_hand():
    """γ = 0.9, λ = 0.5, rewards [0, 0, 1], values [0.5, 0.4, 0.2], V_3 = 0 (end):
    δ_2 = 1 + 0 − 0.2 = 0.8;  δ_1 = 0 + 0.9·0.2 − 0.4 = −0.22;  δ_0 = 0 + 0.9·0.4 − 0.5 = −0.14
    Â_2 = 0.8;  Â_1 = −0.22 + 0.45·0.8 = 0.14;  Â_0 = −0.14 + 0.45·0.14 = −0.077
    returns = Â + V = [0.423, 0.54, 1.0]. A second row with one padded position keeps zeros there."""
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    values = torch.tensor([[0.5, 0.4, 0.2], [0.5, 0.4, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    adv, ret = generalised_advantages(rewards, values, mask, gamma=0.9, gae_lambda=0.5)
    assert adv[0].tolist() == pytest.approx([-0.077, 0.14, 0.8], abs=1e-6)
    assert ret[0].tolist() == pytest.approx([0.423, 0.54, 1.0], abs=1e-6)
    # Row 2: δ_1 = 1 − 0.4 = 0.6 (no value past the end); δ_0 = 0.9·0.4 − 0.5 = −0.14; Â_0 = −0.14 + 0.45·0.6 = 0.13.
    assert adv[1].tolist() == pytest.approx([0.13, 0.6, 0.0], abs=1e-6)


def test_clipped_surrogate_by_hand():
    """ε = 0.2. Token 1: ρ = e^0.5 = 1.648721, Â = 1 ⇒ min(1.648721, 1.2) = 1.2 ⇒ ℓ = −1.2 (clipped).
    Token 2: ρ = e^−0.5 = 0.606531, Â = 1 ⇒ min(0.606531, 0.8) = 0.606531 ⇒ ℓ = −0.606531.
    Token 3: ρ = e^−0.5, Â = −1 ⇒ min(−0.606531, −0.8) = −0.8 ⇒ ℓ = 0.8 (clipped). Token 4 masked."""
    logps = torch.tensor([[0.5, -0.5, -0.5, 3.0]])
    per_token, clipped = clipped_surrogate(logps, torch.zeros(1, 4), torch.tensor([[1.0, 1.0, -1.0, 1.0]]),
                                           torch.tensor([[1.0, 1.0, 1.0, 0.0]]), clip=0.2)
    assert per_token[0].tolist() == pytest.approx([-1.2, -0.606531, 0.8, 0.0], abs=1e-6)
    assert float(clipped) == pytest.approx(2 / 3)


def test_value_clipping_and_k3_by_hand():
    """V = 2, V_old = 1, R = 3, ε = 0.5: unclipped (2−3)² = 1, clipped V = 1.5 ⇒ (1.5−3)² = 2.25 ⇒ ½·2.25 = 1.125.
    k3 at Δ = log π_ref − log π = ln 2: 2 − ln 2 − 1 = 0.306853; at Δ = 0 it is 0."""
    loss = clipped_value_loss(torch.tensor([[2.0]]), torch.tensor([[1.0]]), torch.tensor([[3.0]]), torch.ones(1, 1),
                              clip=0.5)
    assert float(loss) == pytest.approx(1.125)
    kl = k3_kl(torch.tensor([0.0, -1.0]), torch.tensor([math.log(2.0), -1.0]))
    assert kl.tolist() == pytest.approx([0.306853, 0.0], abs=1e-6)


def test_whiten_over_mask():
    """Values [1, 3, 100(masked)] ⇒ mean 2, std 1 over the mask ⇒ [−1, 1, 0]."""
    out = whiten(torch.tensor([[1.0, 3.0, 100.0]]), torch.tensor([[1.0, 1.0, 0.0]]))
    assert out[0].tolist() == pytest.approx([-1.0, 1.0, 0.0], abs=1e-4)
