"""SEGA on the real embedded SmolLM2-135M: three on-policy steps, the metrics log and a checkpoint reload."""
import json

import pytest
import torch

from gemkit.data.arithmetic import builtin_train_pairs
from gemkit.data.encoding import collate, encode_sequence
from gemkit.logprobs import response_logprobs
from gemkit.models import LoraSpec, ModelSpec, load_model
from gemkit.train import TrainConfig, load_trained, train


@pytest.mark.slow
def test_three_sega_steps_on_smollm2_log_and_reload(tmp_path):
    """3 steps × 1 prompt × k=4 candidates of ≤ 48 new tokens (seed 0, LoRA r=8, lr 5e-4).

    Checks: three log rows with finite loss and the SEGA metrics in their ranges (entropies in
    [0, ln 49152 ≈ 10.8], 0 ≤ frac_finished ≤ 1, length ≤ 48); the LoRA weights moved; and the saved
    checkpoint reproduces the trained model's log π(chosen|q) within 1e-4.
    """
    torch.manual_seed(0)
    lora = LoraSpec(r=8)
    bundle = load_model(ModelSpec(name="smollm2-135m", device="cpu", dtype="float32", seed=0), lora=lora)
    config = TrainConfig(method="sega", model="smollm2-135m", out=str(tmp_path), max_steps=3, batch_size=1, lr=5e-4,
                         seed=0, device="cpu", dtype="float32", lora=lora, objective={"k": 4, "max_new_tokens": 48})
    pairs = builtin_train_pairs(8, seed=0)
    result = train(config, pairs, bundle=bundle, progress=False)
    rows = [json.loads(line) for line in result.log_path.read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    for r in rows:
        assert torch.isfinite(torch.tensor(r["loss"]))
        assert 0.0 <= r["h_final_mean"] <= 10.81 and 0.0 <= r["fork_entropy_mean"] <= 10.81
        assert 0.0 <= r["frac_finished"] <= 1.0 and 0 < r["response_length"] <= 48
        assert r["advantage_std"] >= 0 and r["grad_norm"] > 0 and r["lr"] > 0
    moved = [float(p.detach().abs().max()) for n, p in bundle.model.named_parameters() if "lora_B" in n]
    assert max(moved) > 0  # LoRA B starts at zero
    seq = encode_sequence(bundle.tokenizer, pairs[0].prompt, pairs[0].chosen)
    batch = collate([seq], bundle.tokenizer.pad_token_id)
    bundle.model.eval()
    with torch.no_grad():
        in_memory = response_logprobs(bundle.model, batch).sum()
        reloaded = response_logprobs(load_trained(result.checkpoint, device="cpu", dtype="float32").model, batch).sum()
    assert torch.allclose(in_memory, reloaded, atol=1e-4)
