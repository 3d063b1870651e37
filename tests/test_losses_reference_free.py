"""SimPO and ORPO equal TRL 1.16 on the same random log-probs.

SimPO: ``trl.experimental.cpo.CPOTrainer.cpo_loss`` with ``loss_type="simpo"`` (TRL puts SimPO in
the CPO trainer). ORPO: ``trl.experimental.orpo.ORPOTrainer.odds_ratio_loss`` (the odds-ratio term;
TRL's full loss is ``nll − mean(that)``). Both are called unbound with a stand-in ``self`` holding
the attributes they read. Inputs are token-mean log-probs, as both trainers use.
"""
from types import SimpleNamespace

import pytest
import torch

from gemkit.losses.simpo import log1mexp, orpo_log_odds_ratio, orpo_odds_ratio_loss, simpo_loss

CPU = SimpleNamespace(device=torch.device("cpu"))


def mean_logps(n: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-mean log-probs in (−4, −0.001): the range a real policy produces."""
    g = torch.Generator().manual_seed(seed)
    return (-(torch.rand(n, generator=g, dtype=torch.float64) * 4 + 1e-3),
            -(torch.rand(n, generator=g, dtype=torch.float64) * 4 + 1e-3))


@pytest.mark.parametrize("beta,gamma,eps", [(2.0, 1.0, 0.0), (2.5, 0.5, 0.1), (0.5, 0.0, 0.0)])
def test_simpo_equals_trl_cpo_simpo(beta, gamma, eps):
    chosen, rejected = mean_logps(seed=int(beta * 10))
    stand_in = SimpleNamespace(alpha=0.0, loss_type="simpo", beta=beta, simpo_gamma=gamma, label_smoothing=eps,
                               accelerator=CPU)
    cpo = pytest.importorskip("trl.experimental.cpo.cpo_trainer")  # per test: hand-worked tests run without TRL
    theirs, chosen_rewards, rejected_rewards = cpo.CPOTrainer.cpo_loss(stand_in, chosen, rejected)
    mine = simpo_loss(chosen, rejected, beta=beta, gamma=gamma, label_smoothing=eps)
    assert torch.allclose(mine, theirs, atol=1e-6, rtol=0)
    assert torch.allclose(chosen_rewards, beta * chosen)  # the rewards our objective logs


def test_simpo_by_hand():
    """β = 2, γ = 1, ā_c = −1, ā_r = −2: z = 2·(−1 + 2) − 1 = 1, L = −log σ(1) = 0.313262."""
    assert float(simpo_loss(torch.tensor([-1.0]), torch.tensor([-2.0]), beta=2.0, gamma=1.0)) == \
        pytest.approx(0.313262, abs=1e-6)


def test_orpo_odds_ratio_equals_trl():
    """TRL returns β·log σ(log OR) per pair (to be subtracted); ours is L_OR = −log σ(log OR)."""
    chosen, rejected = mean_logps(seed=3)
    beta = 0.25
    stand_in = SimpleNamespace(beta=beta, accelerator=CPU)
    orpo = pytest.importorskip("trl.experimental.orpo.orpo_trainer")
    theirs, _, _, mean_ratio, mean_log_odds = orpo.ORPOTrainer.odds_ratio_loss(stand_in, chosen, rejected)
    mine = orpo_odds_ratio_loss(chosen, rejected)
    assert torch.allclose(beta * mine, -theirs.double(), atol=1e-6, rtol=0)
    assert float(orpo_log_odds_ratio(chosen, rejected).mean()) == pytest.approx(float(mean_log_odds), abs=1e-6)


def test_orpo_by_hand():
    """P_c = 0.5, P_r = 0.2: odds 1 and 0.25, log OR = log 4 = 1.386294, L_OR = −log σ(1.386294) = log(1.25) = 0.223144."""
    chosen, rejected = torch.log(torch.tensor([0.5])), torch.log(torch.tensor([0.2]))
    assert float(orpo_log_odds_ratio(chosen, rejected)) == pytest.approx(1.386294, abs=1e-5)
    assert float(orpo_odds_ratio_loss(chosen, rejected)) == pytest.approx(0.223144, abs=1e-5)


def test_log1mexp_stable_at_both_ends():
    """log(1 − eˣ): x = −1e−8 ⇒ log(1e−8) = −18.420681; x = −50 ⇒ −e^−50 ≈ −1.9e−22; x = −ln 2 ⇒ −ln 2."""
    x = torch.tensor([-1e-8, -50.0, -0.6931471805599453], dtype=torch.float64)
    out = log1mexp(x)
    assert out[0] == pytest.approx(-18.420681, abs=1e-5)
    assert abs(float(out[1])) < 1e-20
    assert out[2] == pytest.approx(-0.6931471805599453, abs=1e-12)
