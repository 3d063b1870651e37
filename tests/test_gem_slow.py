"""SEGA on the real embedded SmolLM2-135M: three on-policy steps, the metrics log and a checkpoint reload."""
import json
import math

import pytest
import torch
from _objective_harness import independent_logps, spy_on_groups

from gemkit.data.arithmetic import builtin_train_pairs
from gemkit.data.encoding import collate, encode_sequence
from gemkit.logprobs import response_logprobs
from gemkit.models import LoraSpec, ModelSpec, load_model
from gemkit.train import TrainConfig, load_trained, train


@pytest.mark.slow
def test_three_sega_steps_on_smollm2_log_and_reload(tmp_path, monkeypatch):
    """3 steps × 1 prompt × k=4 candidates of ≤ 48 new tokens (seed 0, LoRA r=8, lr 5e-4), with the
    defaults λ = 1, identity mapping, plain centring (no ÷ std), sequence log-prob = token sum.

    The real ``score_groups`` is spied on (it still runs); at each step, before the update, every
    candidate's log-probs are recomputed by one plain forward per candidate (the harness's own
    log-softmax, not gemkit's batched code). Per step:

    * Eq. 1 is linear, so the means obey it too: score_mean = −h_final_mean + 1.0·fork_entropy_mean;
      identity mapping: reward_mean = score_mean;
    * Eq. 2 written out: A_i = S_i − mean(S), loss = −(1/4)·Σ_i A_i·Σ_t log π(a_i,t) with the
      recomputed log-probs; one group, so advantage_std = score_std_in_group;
    * 0 < response_length ≤ 48 (max_new_tokens holds).

    Update direction: Adam's first step from LoRA B = 0 moves along −sign(gradient), so on step 1's
    candidates the surrogate −(1/4)·Σ A_i·log π(a_i) with the step-2 weights is below its value with
    the step-1 weights (both from the per-candidate forwards).
    Then: the LoRA weights moved, and the saved checkpoint reproduces log π(chosen|q) within 1e-4.

    Checked it can fail: flipping the sign of the SEGA loss in gemkit/builtin/sega.py
    (``loss = (group.advantages * ...)``) fails the loss assertion and the update direction;
    ``-h_final - lam * fork`` in entropy_score fails the Eq. 1 assertion.
    """
    torch.manual_seed(0)
    lora = LoraSpec(r=8)
    bundle = load_model(ModelSpec(name="smollm2-135m", device="cpu", dtype="float32", seed=0), lora=lora)
    config = TrainConfig(method="sega", model="smollm2-135m", out=str(tmp_path), max_steps=3, batch_size=1, lr=5e-4,
                         seed=0, device="cpu", dtype="float32", lora=lora, objective={"k": 4, "max_new_tokens": 48})
    pairs = builtin_train_pairs(8, seed=0)
    groups = spy_on_groups(monkeypatch)
    before: list[list[torch.Tensor]] = []  # per step, each candidate's token log-probs under the step's weights
    step1_after: list[torch.Tensor] = []  # step 1's candidates under the weights after step 1

    def plain_logps(batch):
        was_training = bundle.model.training
        bundle.model.eval()  # the group step runs without dropout; so does this recomputation
        with torch.no_grad():
            out = independent_logps(bundle.model, batch)
        bundle.model.train(was_training)
        return out

    import gemkit.train.objective as objective_module

    spying = objective_module.score_groups

    def recompute(*args, **kwargs):
        if len(groups) == 1:  # step 1 is done: its candidates under the updated weights
            step1_after.extend(plain_logps(groups[0].batch))
        group = spying(*args, **kwargs)
        before.append(plain_logps(group.batch))
        return group

    monkeypatch.setattr(objective_module, "score_groups", recompute)
    result = train(config, pairs, bundle=bundle, progress=False)
    rows = [json.loads(line) for line in result.log_path.read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3] and len(groups) == 3

    step_advantages, step_losses = [], []
    for r, group, logps in zip(rows, groups, before, strict=True):
        assert r["score_mean"] == pytest.approx(-r["h_final_mean"] + 1.0 * r["fork_entropy_mean"], abs=1e-5)
        assert r["reward_mean"] == pytest.approx(r["score_mean"], abs=1e-6)
        scores = group.result.scores.double().tolist()
        mean = sum(scores) / 4
        advantages = [s - mean for s in scores]
        seq_logps = [float(x.double().sum()) for x in logps]
        loss = -sum(a * lp for a, lp in zip(advantages, seq_logps, strict=True)) / 4
        assert r["loss"] == pytest.approx(loss, rel=1e-4, abs=1e-3)  # float32: batched vs per-row forwards
        step_advantages.append(advantages)
        step_losses.append(loss)
        std = math.sqrt(sum(a * a for a in advantages) / 3)
        assert r["advantage_std"] == pytest.approx(std, abs=1e-5)
        assert r["score_std_in_group"] == pytest.approx(std, abs=1e-5)
        assert 0 < r["response_length"] <= 48
        assert r["grad_norm"] > 0 and r["lr"] > 0
    assert max(step_advantages[0]) - min(step_advantages[0]) > 1e-3  # step 1's candidates scored differently
    after = -sum(a * float(x.double().sum()) for a, x in zip(step_advantages[0], step1_after, strict=True)) / 4
    assert after < step_losses[0]

    moved = [float(p.detach().abs().max()) for n, p in bundle.model.named_parameters() if "lora_B" in n]
    assert max(moved) > 0  # LoRA B starts at zero
    seq = encode_sequence(bundle.tokenizer, pairs[0].prompt, pairs[0].chosen)
    batch = collate([seq], bundle.tokenizer.pad_token_id)
    bundle.model.eval()
    with torch.no_grad():
        in_memory = response_logprobs(bundle.model, batch).sum()
        reloaded = response_logprobs(load_trained(result.checkpoint, device="cpu", dtype="float32").model, batch).sum()
    assert torch.allclose(in_memory, reloaded, atol=1e-4)
