"""Every baseline objective trains 5 steps on the tiny model through the one engine, without NaN,
logs the metrics issue 4 asks for, and saves a checkpoint that ``load_trained`` reloads.

(The DPO loss variants themselves are checked against TRL in ``test_losses_dpo.py``; here the
objectives run end to end.)
"""
import math

import pytest
import torch

from gemkit.data.records import PreferencePair
from gemkit.io import read_jsonl
from gemkit.models import LoraSpec, ModelSpec, load_model
from gemkit.train import TrainConfig, load_trained, train
from gemkit.train.objective import StepContext

PAIRS = [PreferencePair(f"What is {i} + {i + 1}?", f"{i} + {i + 1} = {2 * i + 1}. Final Answer: {2 * i + 1}",
                        f"Final Answer: {2 * i}", id=f"p{i}", answer=str(2 * i + 1)) for i in range(8)]
PAIR_METRICS = {"loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen",
                "logps/rejected", "grad_norm", "lr", "tokens_per_s"}
CASES = [("dpo", {}), ("dpo", {"loss": "bco_pair_delta"}), ("ipo", {}), ("simpo", {}), ("orpo", {}), ("kto", {}),
         ("pro", {})]


def config(tmp_path, method, options, **overrides):
    base = dict(method=method, model="random:tiny", out=str(tmp_path / method), max_steps=5, batch_size=2, lr=1e-3,
                device="cpu", dtype="float32", max_length=96, seed=0, objective=options,
                lora=LoraSpec(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"]))
    base.update(overrides)
    return TrainConfig(**base)


def sequence_logps(model, tokenizer, pairs):
    ctx = StepContext(model=model.eval(), tokenizer=tokenizer, config=TrainConfig(max_length=96), device=torch.device("cpu"))
    with torch.no_grad():
        return ctx.policy_logprobs(ctx.encode_pairs(pairs)).sum()


@pytest.mark.parametrize("method,options", CASES, ids=[f"{m}{'-' + o['loss'] if o else ''}" for m, o in CASES])
def test_objective_trains_five_steps_and_reloads(tmp_path, method, options):
    result = train(config(tmp_path, method, options), PAIRS, progress=False)
    log = list(read_jsonl(result.log_path))
    assert [row["step"] for row in log] == [1, 2, 3, 4, 5]
    assert all(math.isfinite(v) for row in log for v in row.values())
    assert PAIR_METRICS <= set(log[-1])
    bundle = load_trained(result.checkpoint, device="cpu")
    trained = sequence_logps(bundle.model, bundle.tokenizer, PAIRS[:2])
    with bundle.model.disable_adapter():
        untrained = sequence_logps(bundle.model, bundle.tokenizer, PAIRS[:2])
    assert not torch.allclose(trained, untrained)  # the trained adapter came back, not a fresh one


def test_reward_model_checkpoint_restores_the_trained_score_head(tmp_path):
    """Under LoRA the ``score`` head is trained too; the reloaded rewards equal the in-memory model's."""
    from gemkit.logprobs import classifier_rewards as sequence_rewards

    cfg = config(tmp_path, "rm", {"center_coef": 0.01})
    bundle = load_model(ModelSpec(name="random:tiny", device="cpu", dtype="float32", task="reward", seed=0), lora=cfg.lora)
    result = train(cfg, PAIRS, bundle=bundle, progress=False)
    log = list(read_jsonl(result.log_path))
    assert len(log) == 5 and all(math.isfinite(row["loss"]) for row in log)
    assert {"rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"} <= set(log[-1])
    ctx = StepContext(model=bundle.model, tokenizer=bundle.tokenizer, config=cfg, device=torch.device("cpu"))
    batch = ctx.encode_pairs(PAIRS[:2])
    with torch.no_grad():
        in_memory = sequence_rewards(bundle.model.eval(), batch)
        reloaded = sequence_rewards(load_trained(result.checkpoint, device="cpu").model.eval(), batch)
        fresh = load_model(ModelSpec(name="random:tiny", device="cpu", dtype="float32", task="reward", seed=0))
        untrained = sequence_rewards(fresh.model.eval(), batch)
    assert torch.allclose(reloaded, in_memory, atol=1e-5)
    assert not torch.allclose(reloaded, untrained, atol=1e-4)


def test_full_finetune_rm_loads_with_plain_transformers(tmp_path):
    """The full fine-tuning checkpoint is a plain ``AutoModelForSequenceClassification`` directory: one label,
    the pad id that last-token pooling needs, and the trained in-memory model's rewards (within 1e-5)."""
    from transformers import AutoModelForSequenceClassification

    from gemkit.logprobs import classifier_rewards as sequence_rewards

    cfg = config(tmp_path, "rm", {}, max_steps=2, lora=LoraSpec(r=0))
    bundle = load_model(ModelSpec(name="random:tiny", device="cpu", dtype="float32", task="reward", seed=0))
    result = train(cfg, PAIRS, bundle=bundle, progress=False)
    model = AutoModelForSequenceClassification.from_pretrained(result.checkpoint).eval()
    assert model.config.num_labels == 1 and model.config.pad_token_id == bundle.tokenizer.pad_token_id
    ctx = StepContext(model=model, tokenizer=bundle.tokenizer, config=cfg, device=torch.device("cpu"))
    batch = ctx.encode_pairs(PAIRS[:4])
    assert batch.attention_mask.sum(-1).unique().numel() > 1  # rows of different lengths: padding is present
    with torch.no_grad():
        plain = sequence_rewards(model, batch)
        in_memory = sequence_rewards(bundle.model.eval(), batch)
    assert torch.allclose(plain, in_memory, atol=1e-5)


def test_dpo_full_finetune_reference_cache_equals_frozen_copy(tmp_path):
    """Full fine-tuning: the on-disk cache replaces the frozen copy (none is made), gives the same first-step
    loss as the frozen copy (same initial weights ⇒ same reference), and a second run reuses the file."""
    full = LoraSpec(r=0)
    frozen = train(config(tmp_path / "a", "dpo", {}, max_steps=1, lora=full), PAIRS, progress=False)
    cache_dir = tmp_path / "refcache"
    cached = train(config(tmp_path / "b", "dpo", {"reference_cache": str(cache_dir)}, max_steps=1, lora=full), PAIRS,
                   progress=False)
    first = lambda r: list(read_jsonl(r.log_path))[0]  # noqa: E731
    assert first(cached)["loss"] == pytest.approx(first(frozen)["loss"], abs=1e-5)
    files = list(cache_dir.rglob("*.pt"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    train(config(tmp_path / "c", "dpo", {"reference_cache": str(cache_dir)}, max_steps=1, lora=full), PAIRS,
          progress=False)
    assert list(cache_dir.rglob("*.pt")) == files and files[0].stat().st_mtime_ns == stamp
