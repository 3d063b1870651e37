"""The shared engine: learning, schedule, accumulation, NaN guards, resume and checkpoints.

The objective here is the plainest one possible (negative log-likelihood of ``chosen``), so the
tests exercise the engine itself; every real objective runs through the same loop.
"""
from dataclasses import dataclass

import pytest
import torch

from gemkit.data.records import PreferencePair
from gemkit.errors import TrainingError
from gemkit.io import read_jsonl
from gemkit.models import LoraSpec, ModelSpec, load_model
from gemkit.train import LossOutput, Objective, TrainConfig, load_trained, train
from gemkit.train.engine import lr_lambda


@dataclass
class NLLConfig:
    poison_step: int = -1


class ChosenNLL(Objective):
    name = "test-nll"
    description = "Mean token NLL of chosen (test objective)."
    Config = NLLConfig

    def compute_loss(self, ctx, batch):
        scores = ctx.policy_logprobs(ctx.encode([p.prompt for p in batch], [p.chosen for p in batch]))
        loss = -scores.mean().mean()
        if ctx.step == self.config.poison_step:
            loss = loss * float("nan")
        return LossOutput(loss, {"nll": float(loss.detach())}, int(scores.lengths.sum()))


PAIRS = [PreferencePair(f"What is {i} plus {i}?", f"{i} + {i} = {2 * i}. Final Answer: {2 * i}", "No idea.", id=f"p{i}")
         for i in range(8)]


def _config(tmp_path, **overrides):
    base = dict(method="test-nll", model="random:tiny", out=str(tmp_path / "run"), max_steps=6, batch_size=2,
                lr=5e-3, device="cpu", lora=LoraSpec(r=4, alpha=8, target_modules=["q_proj", "v_proj"]), seed=0)
    base.update(overrides)
    return TrainConfig(**base)


def _bundle(config):
    return load_model(ModelSpec(name=config.model, device="cpu", seed=config.seed), lora=config.lora)


def test_training_lowers_loss_and_writes_loadable_checkpoint(tmp_path):
    config = _config(tmp_path, max_steps=8)
    result = train(config, PAIRS, bundle=_bundle(config), objective=ChosenNLL(NLLConfig()), progress=False)
    log = list(read_jsonl(result.log_path))
    assert [row["step"] for row in log] == list(range(1, 9))
    assert log[-1]["loss"] < log[0]["loss"]
    assert {"grad_norm", "lr", "tokens_per_s"} <= set(log[0])
    reloaded = load_trained(result.checkpoint, device="cpu")
    batch_model = _bundle(config).model
    assert reloaded.model.__class__.__name__ == batch_model.__class__.__name__


def test_schedule_warms_up_then_decays_to_zero():
    """10 steps, warm-up 0.2 → 2 warm-up steps with factors 1/2, 2/2; cosine ends at 0."""
    factor = lr_lambda(TrainConfig(max_steps=10, warmup_ratio=0.2, schedule="cosine"))
    assert [factor(0), factor(1), factor(2)] == [0.5, 1.0, 1.0]
    assert abs(factor(10)) < 1e-12
    linear = lr_lambda(TrainConfig(max_steps=10, warmup_ratio=0.0, schedule="linear"))
    assert abs(linear(5) - 0.5) < 1e-12


def test_non_finite_loss_stops_naming_step_batch_and_checkpoint(tmp_path):
    config = _config(tmp_path, save_every=2)
    with pytest.raises(TrainingError) as info:
        train(config, PAIRS, bundle=_bundle(config), objective=ChosenNLL(NLLConfig(poison_step=3)), progress=False)
    message = str(info.value)
    assert "step 4" in message and "batch ids: p" in message and str(tmp_path / "run" / "resume") in message


def test_skip_policy_skips_and_counts(tmp_path):
    config = _config(tmp_path, nan_policy="skip")
    result = train(config, PAIRS, bundle=_bundle(config), objective=ChosenNLL(NLLConfig(poison_step=2)), progress=False)
    assert result.skipped_batches == 1 and result.steps == 6


def test_resume_after_crash_matches_unbroken_run(tmp_path):
    """Crash at step 5 (checkpoint at 4), resume → same metrics as a run that never stopped."""
    unbroken_cfg = _config(tmp_path / "a", save_every=2)
    unbroken = train(unbroken_cfg, PAIRS, bundle=_bundle(unbroken_cfg), objective=ChosenNLL(NLLConfig()),
                     progress=False)
    crashed_cfg = _config(tmp_path / "b", save_every=2)
    with pytest.raises(TrainingError):
        train(crashed_cfg, PAIRS, bundle=_bundle(crashed_cfg), objective=ChosenNLL(NLLConfig(poison_step=4)),
              progress=False)
    resumed = train(crashed_cfg, PAIRS, bundle=_bundle(crashed_cfg), objective=ChosenNLL(NLLConfig()),
                    resume=True, progress=False)
    a, b = list(read_jsonl(unbroken.log_path)), list(read_jsonl(resumed.log_path))
    assert [r["step"] for r in b] == list(range(1, 7))
    for row_a, row_b in zip(a, b):
        assert abs(row_a["loss"] - row_b["loss"]) < 1e-6


def test_full_fine_tuning_trains_every_weight(tmp_path):
    config = _config(tmp_path, lora=LoraSpec(r=0), max_steps=2, lr=1e-3)
    bundle = _bundle(config)
    before = bundle.model.model.embed_tokens.weight.detach().clone()
    train(config, PAIRS, bundle=bundle, objective=ChosenNLL(NLLConfig()), progress=False)
    assert not torch.equal(before, bundle.model.model.embed_tokens.weight)
