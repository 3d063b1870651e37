"""The shared engine: learning, schedule, accumulation, NaN guards, resume and checkpoints.

The objective here is the plainest one possible (negative log-likelihood of ``chosen``), so the
tests exercise the engine itself; every real objective runs through the same loop.
"""
import json
from dataclasses import dataclass

import pytest
import torch

from gemkit.data.records import PreferencePair
from gemkit.errors import DataError, TrainingError
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
    for row_a, row_b in zip(a, b, strict=False):
        assert abs(row_a["loss"] - row_b["loss"]) < 1e-6


def test_full_fine_tuning_trains_every_weight(tmp_path):
    config = _config(tmp_path, lora=LoraSpec(r=0), max_steps=2, lr=1e-3)
    bundle = _bundle(config)
    before = bundle.model.model.embed_tokens.weight.detach().clone()
    train(config, PAIRS, bundle=bundle, objective=ChosenNLL(NLLConfig()), progress=False)
    assert not torch.equal(before, bundle.model.model.embed_tokens.weight)


LONG = PreferencePair("Explain carefully. " * 20 + "What is 2 plus 2?", "2 + 2 = 4. Final Answer: 4", "No idea.",
                      id="long", line=9)


def test_prompts_over_max_length_are_cut_counted_and_reported(tmp_path, tiny_bundle):
    """max_length = the most any short record needs, so the 8 short records fit exactly and only the
    long-prompt record (its prompt repeats 20 sentences) is over: 1 of 9 records truncated. One step
    with all 9 records in the batch encodes prompt + chosen 9 times, and only LONG's is cut:
    the log row says truncated_sequences = 1."""
    from gemkit.data.lengths import record_lengths

    tokenizer = tiny_bundle.tokenizer
    fits = max(p + max(c, r) for p, c, r in (record_lengths(pair, tokenizer) for pair in PAIRS))
    p_long, c_long, r_long = record_lengths(LONG, tokenizer)
    assert p_long + c_long > fits > max(c_long, r_long)
    config = _config(tmp_path, max_steps=1, batch_size=9, max_length=fits)
    result = train(config, [*PAIRS, LONG], bundle=_bundle(config), objective=ChosenNLL(NLLConfig()), progress=False)
    assert result.truncated_records == 1
    (row,) = read_jsonl(result.log_path)
    assert row["truncated_sequences"] == 1
    data = json.loads((tmp_path / "run" / "config.json").read_text())["data"]
    assert (data["records"], data["truncated_records"], data["truncated_ids"]) == (9, 1, ["long"])


def test_truncation_error_and_unfittable_responses_stop_before_anything_is_written(tmp_path, tiny_bundle):
    """Same lengths: with truncation='error' the long record is refused (field prompt, its line 9);
    with max_length = its chosen response's length (no token left for the prompt) it is refused under
    left-prompt too (field chosen). Neither run creates the output directory."""
    from gemkit.data.lengths import record_lengths

    tokenizer = tiny_bundle.tokenizer
    fits = max(p + max(c, r) for p, c, r in (record_lengths(pair, tokenizer) for pair in PAIRS))
    config = _config(tmp_path, max_length=fits, truncation="error")
    with pytest.raises(DataError, match=rf"data\.jsonl, line 9: field 'prompt': max_length={fits} is exceeded by "
                                        r"record 'long'"):
        train(config, [*PAIRS, LONG], bundle=tiny_bundle, objective=ChosenNLL(NLLConfig()), progress=False,
              data_source="data.jsonl")
    _, chosen_tokens, _ = record_lengths(LONG, tokenizer)
    config = _config(tmp_path, max_length=chosen_tokens)
    with pytest.raises(DataError, match=rf"line 9: field 'chosen': max_length={chosen_tokens} leaves no room for "
                                        rf"the prompt of record 'long': its response alone has {chosen_tokens} tokens"):
        train(config, [LONG], bundle=tiny_bundle, objective=ChosenNLL(NLLConfig()), progress=False,
              data_source="data.jsonl")
    assert not (tmp_path / "run").exists()


def test_float16_overflow_is_named_as_a_precision_problem(tmp_path):
    """lm_head scaled by 1e6 makes fp16 logits overflow (|logit| > 65504 → inf, then NaN in the
    log-softmax): training stops at step 1 naming float16 and suggesting float32."""
    config = _config(tmp_path, dtype="float16")
    bundle = load_model(ModelSpec(name=config.model, device="cpu", dtype="float16", seed=config.seed),
                        lora=config.lora)
    with torch.no_grad():
        bundle.model.get_output_embeddings().weight.mul_(1e6)
    with pytest.raises(TrainingError) as info:
        train(config, PAIRS, bundle=bundle, objective=ChosenNLL(NLLConfig()), progress=False)
    message = str(info.value)
    assert "step 1" in message and "float16 precision overflow" in message and "--dtype float32" in message


def test_float32_failure_has_no_precision_hint():
    from gemkit.train.engine import precision_hint

    assert precision_hint(torch.nn.Linear(2, 2)) == ""
    assert "bfloat16 precision overflow" in precision_hint(torch.nn.Linear(2, 2).to(torch.bfloat16))


def test_a_kill_mid_swap_leaves_the_previous_state_which_resume_puts_back(tmp_path):
    """save_model moves resume/ to .resume.old, then renames the new copy in. Killed in between,
    only .resume.old (complete) and a temp copy .resume-XXXX (maybe partial) exist: recover_dir
    restores the former and removes the latter; with resume/ present it changes nothing."""
    from gemkit.train.checkpoint import recover_dir

    (tmp_path / ".resume.old").mkdir()
    (tmp_path / ".resume.old" / "trainer_state.pt").write_text("step 4")
    (tmp_path / ".resume-k3j2").mkdir()
    recover_dir(tmp_path / "resume")
    assert (tmp_path / "resume" / "trainer_state.pt").read_text() == "step 4"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resume"]
    recover_dir(tmp_path / "resume")
    assert (tmp_path / "resume" / "trainer_state.pt").read_text() == "step 4"


def test_only_the_responses_an_objective_trains_on_are_measured(tiny_bundle):
    """A record whose rejected answer alone fills max_length: dpo (chosen and rejected) refuses it,
    sft (chosen only) and sega (samples its own; prompt only) accept it untruncated."""
    from gemkit.data.lengths import check_lengths, record_lengths
    from gemkit.registry import registry

    record = PreferencePair("What is 2 plus 2?", "4", "I do not know. " * 10, id="r", line=1)
    p, c, r = record_lengths(record, tiny_bundle.tokenizer)
    limit = r  # the rejected answer alone fills it; prompt + chosen fits
    assert p + c <= limit
    dpo, sft, sega = (registry("objective").get(name).cls for name in ("dpo", "sft", "sega"))
    with pytest.raises(DataError, match="field 'rejected'"):
        check_lengths([record], tiny_bundle.tokenizer, limit, responses=dpo.trained_responses)
    for objective in (sft, sega):
        assert check_lengths([record], tiny_bundle.tokenizer, limit, responses=objective.trained_responses).truncated == []


def test_gradient_checkpointing_and_bf16_autocast_train_like_plain_fp32(tmp_path):
    """Recomputing activations changes memory, not maths: 3 steps with gradient checkpointing log the
    plain run's losses and grad norms to 1e-5. bf16 autocast (fp32 weights) rounds every matmul
    input to 8 mantissa bits (relative error ~2^-8 ≈ 0.4 %), so its losses (~10.8 nats) agree to 0.1."""
    rows = {}
    for name, extra in [("plain", {}), ("checkpointed", {"gradient_checkpointing": True}),
                        ("bf16", {"mixed_precision": "bf16"})]:
        config = _config(tmp_path / name, max_steps=3, **extra)
        bundle = _bundle(config)
        result = train(config, PAIRS, bundle=bundle, objective=ChosenNLL(NLLConfig()), progress=False)
        rows[name] = list(read_jsonl(result.log_path))
        if name == "checkpointed":
            assert bundle.model.is_gradient_checkpointing
    for a, b, c in zip(rows["plain"], rows["checkpointed"], rows["bf16"], strict=True):
        assert abs(a["loss"] - b["loss"]) < 1e-5 and abs(a["grad_norm"] - b["grad_norm"]) < 1e-5
        assert abs(a["loss"] - c["loss"]) < 0.1
    assert json.loads((tmp_path / "bf16" / "run" / "config.json").read_text())["launch"]["mixed_precision"] == "bf16"
