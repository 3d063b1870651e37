"""A trained checkpoint as the ``--model`` of another run (SFT → DPO, the usual pipeline), on random:tiny.

A LoRA checkpoint is merged into its base and gets a fresh LoRA on top, so the new run's reference
(adapter disabled) is the SFT model; a full checkpoint is loaded as plain weights.
"""
import json

import pytest
import torch

from gemkit.cli import main
from gemkit.data.arithmetic import builtin_train_pairs
from gemkit.errors import ModelLoadError
from gemkit.models import LoraSpec, ModelSpec, load_model
from gemkit.train import TrainConfig, load_trained, train
from gemkit.train.objective import StepContext

PAIRS = builtin_train_pairs(4, seed=0)
LORA = LoraSpec(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"])
CLI = ["--device", "cpu", "--dtype", "float32", "--quiet", "--train", "builtin:arithmetic?n=4", "--steps", "2",
       "--batch-size", "2", "--lr", "1e-2"]


def config(out, method, model, lora=LORA):
    return TrainConfig(method=method, model=model, out=str(out), max_steps=2, batch_size=2, lr=1e-2, device="cpu",
                       dtype="float32", max_length=256, seed=0, lora=lora)


def sequence_logps(model, tokenizer):
    """Summed response log-probs of the first two pairs' chosen and rejected answers, ``[4]``."""
    ctx = StepContext(model=model.eval(), tokenizer=tokenizer, config=TrainConfig(max_length=256), device=torch.device("cpu"))
    with torch.no_grad():
        return ctx.policy_logprobs(ctx.encode_pairs(PAIRS[:2])).sum()


@pytest.mark.parametrize("sft_lora", [LORA, LoraSpec(r=0)], ids=["lora-sft", "full-sft"])
def test_dpo_on_an_sft_checkpoint_uses_the_sft_model_as_reference(tmp_path, sft_lora):
    """SFT 2 steps (lr 1e-2, so it moves), then DPO 2 steps with model = the SFT checkpoint directory.

    The DPO run's reference log-probs (its fresh LoRA disabled) equal the SFT model's within 1e-5,
    and differ from the untouched random:tiny base by more than 1e-3 (so the SFT weights really are
    the starting point); the DPO policy itself moved away from its reference.
    """
    sft = train(config(tmp_path / "sft", "sft", "random:tiny", sft_lora), PAIRS, progress=False)
    sft_bundle = load_trained(sft.checkpoint, device="cpu", dtype="float32")
    sft_logps = sequence_logps(sft_bundle.model, sft_bundle.tokenizer)
    base = load_model(ModelSpec(name="random:tiny", device="cpu", dtype="float32", seed=0))
    base_logps = sequence_logps(base.model, base.tokenizer)
    assert (sft_logps - base_logps).abs().max() > 1e-3

    dpo_config = config(tmp_path / "dpo", "dpo", str(sft.checkpoint))
    bundle = load_model(ModelSpec(name=str(sft.checkpoint), device="cpu", dtype="float32"), lora=dpo_config.lora)
    result = train(dpo_config, PAIRS, bundle=bundle, progress=False)
    ctx = StepContext(model=bundle.model.eval(), tokenizer=bundle.tokenizer, config=dpo_config, device=torch.device("cpu"))
    batch = ctx.encode_pairs(PAIRS[:2])
    reference = ctx.reference_logprobs(batch).sum()
    with torch.no_grad():
        policy = ctx.policy_logprobs(batch).sum()
    assert torch.allclose(reference, sft_logps, atol=1e-5)
    assert (policy - reference).abs().max() > 1e-4

    # The DPO checkpoint records the SFT directory as its base, so it reloads on its own.
    reloaded = load_trained(result.checkpoint, device="cpu", dtype="float32")
    assert torch.allclose(sequence_logps(reloaded.model, reloaded.tokenizer), policy, atol=1e-5)
    with reloaded.model.disable_adapter():
        assert torch.allclose(sequence_logps(reloaded.model, reloaded.tokenizer), sft_logps, atol=1e-5)


def test_sft_then_dpo_through_the_cli_with_a_relative_checkpoint_path(tmp_path, monkeypatch):
    """``gemkit train --method dpo --model sft/checkpoint`` (relative to the cwd) works, the run records the
    absolute path as its base, and the DPO checkpoint's reference is the SFT model (within 1e-5)."""
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--method", "sft", "--model", "random:tiny", "--out", "sft", "--lora-r", "4", *CLI]) == 0
    assert main(["train", "--method", "dpo", "--model", "sft/checkpoint", "--out", "dpo", "--lora-r", "4", *CLI]) == 0
    recorded = json.loads((tmp_path / "dpo" / "checkpoint" / "gemkit.json").read_text())["base_model"]
    assert recorded == str(tmp_path / "sft" / "checkpoint")
    sft = load_trained(tmp_path / "sft" / "checkpoint", device="cpu", dtype="float32")
    dpo = load_trained(tmp_path / "dpo" / "checkpoint", device="cpu", dtype="float32")
    with dpo.model.disable_adapter():
        reference = sequence_logps(dpo.model, dpo.tokenizer)
    assert torch.allclose(reference, sequence_logps(sft.model, sft.tokenizer), atol=1e-5)


def test_a_reward_checkpoint_cannot_start_a_policy_run(tmp_path):
    rm = train(config(tmp_path / "rm", "rm", "random:tiny"), PAIRS, progress=False)
    with pytest.raises(ModelLoadError, match="reward-model checkpoint .* needs a policy checkpoint"):
        load_model(ModelSpec(name=str(rm.checkpoint), device="cpu", dtype="float32"), lora=LORA)
