"""SimPO and ORPO equal TRL 1.16 on the same random log-probs.

SimPO: ``trl.experimental.cpo.CPOTrainer.cpo_loss`` with ``loss_type="simpo"`` (TRL puts SimPO in
the CPO trainer). ORPO: ``trl.experimental.orpo.ORPOTrainer.odds_ratio_loss`` (the odds-ratio term;
TRL's full loss is ``nll − mean(that)``). Both are called unbound with a stand-in ``self`` holding
the attributes they read. Inputs are token-mean log-probs, as both trainers use. The whole ORPO loss, NLL term included,
is compared with ``ORPOTrainer.get_batch_loss_metrics`` on the tiny model's logits.
"""
from functools import partial
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


def test_orpo_loss_with_nll_equals_trl(tmp_path):
    """The real ``orpo`` objective's loss on 3 arithmetic pairs (tiny model in float64, β = 0.25)
    equals TRL 1.16's full ORPO loss, nll − mean(β·log σ(log OR)), from
    ``ORPOTrainer.get_batch_loss_metrics`` called unbound with a stand-in ``self``; so do the NLL term
    and the mean log odds ratio. TRL's model is a stand-in returning the logits of one plain forward
    of the same model over the same tokens. gemkit takes its log-softmax in float32 (gemkit/ops.py),
    so the NLL (≈ ln 49152 ≈ 10.8 for random weights) and the loss agree to a relative 1e-6 (one
    float32 ulp is 1e-6 there); the odds-ratio part, loss − NLL, and the log odds agree to 1e-6.

    TRL's NLL is the token mean of the cross-entropy over the chosen rows' attended tokens (prompt
    included); gemkit's is over chosen response tokens only (gemkit/builtin/orpo.py, the paper's
    Eq. 2), so TRL is given the response mask as its attention mask: both are then
    −Σ log π(chosen response tokens) / (number of those tokens) over the micro-batch.

    Checked it can fail: ``nll = -means[:n].mean()`` (mean of per-pair token means instead of the
    token-weighted mean) in ORPO.compute_loss fails the loss and NLL assertions.
    """
    from gemkit.builtin.orpo import ORPO, ORPOConfig
    from gemkit.data.arithmetic import builtin_train_pairs
    from gemkit.testing import tiny_bundle
    from gemkit.train import StepContext, TrainConfig

    beta = 0.25
    bundle = tiny_bundle(seed=0)
    model = bundle.model.double().eval()
    config = TrainConfig(method="orpo", model="random:tiny", out=str(tmp_path), device="cpu", max_length=160)
    ctx = StepContext(model=model, tokenizer=bundle.tokenizer, config=config, device=torch.device("cpu"))
    pairs = builtin_train_pairs(3, seed=0)
    mine = ORPO(ORPOConfig(beta=beta)).compute_loss(ctx, pairs)

    encoded = ctx.encode_pairs(pairs)
    n = len(pairs)
    assert encoded.response_mask[:n].sum() != encoded.response_mask[n:].sum()  # chosen and rejected lengths differ
    with torch.no_grad():
        logits = model(input_ids=encoded.input_ids, attention_mask=encoded.attention_mask,
                       position_ids=encoded.position_ids).logits
    response = encoded.response_mask.long()
    labels = torch.where(response == 1, encoded.input_ids, -100)
    batch = {"chosen_input_ids": encoded.input_ids[:n], "chosen_attention_mask": response[:n],
             "chosen_labels": labels[:n], "rejected_input_ids": encoded.input_ids[n:],
             "rejected_attention_mask": response[n:], "rejected_labels": labels[n:]}

    def stand_in_model(input_ids, **kwargs):
        assert torch.equal(input_ids, encoded.input_ids)
        return SimpleNamespace(logits=logits)

    orpo = pytest.importorskip("trl.experimental.orpo.orpo_trainer")
    trainer = orpo.ORPOTrainer
    stand_in = SimpleNamespace(beta=beta, is_encoder_decoder=False, padding_value=0, aux_loss_enabled=False,
                               accelerator=SimpleNamespace(device=torch.device("cpu"), gather_for_metrics=lambda x: x),
                               concatenated_inputs=trainer.concatenated_inputs, get_batch_logps=trainer.get_batch_logps)
    stand_in.concatenated_forward = partial(trainer.concatenated_forward, stand_in)
    stand_in.odds_ratio_loss = partial(trainer.odds_ratio_loss, stand_in)
    theirs, their_metrics = trainer.get_batch_loss_metrics(stand_in, stand_in_model, batch)
    loss, nll = float(mine.loss.detach()), mine.metrics["nll_loss"]
    assert nll == pytest.approx(their_metrics["nll_loss"], rel=1e-6, abs=0)
    assert loss == pytest.approx(float(theirs), rel=1e-6, abs=0)
    assert abs((loss - nll) - (float(theirs) - their_metrics["nll_loss"])) < 1e-6  # β·L_OR
    assert abs(mine.metrics["log_odds_ratio"] - their_metrics["log_odds_chosen"]) < 1e-6


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
