"""The Bradley–Terry ``rm`` on the real SmolLM2-135M learns the built-in arithmetic pairs (issue #4)."""
import pytest
import torch

from gemkit.data.arithmetic import builtin_heldout_pairs, builtin_train_pairs
from gemkit.logprobs import classifier_rewards as sequence_rewards
from gemkit.models import LoraSpec, ModelSpec, load_model
from gemkit.train import TrainConfig, train
from gemkit.train.objective import StepContext

HELDOUT = 32
#: LoRA in the top 8 of 30 layers only, so back-propagation stops at layer 22 (the cost on 2 CPU cores).
LORA = LoraSpec(r=8, alpha=16, dropout=0.0, layers=list(range(22, 30)),
                target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])


def pairwise_accuracy(ctx: StepContext, pairs) -> float:
    """Fraction of pairs with r(chosen) > r(rejected), 8 pairs per forward."""
    ctx.model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(pairs), 8):
            chunk = pairs[start:start + 8]
            rewards = sequence_rewards(ctx.model, ctx.encode_pairs(chunk))
            correct += int((rewards[:len(chunk)] > rewards[len(chunk):]).sum())
    return correct / len(pairs)


@pytest.mark.slow
def test_reward_model_learns_the_builtin_pairs_on_smollm2(tmp_path):
    """Two epochs over 64 ``builtin:arithmetic`` train pairs (32 steps × 4 pairs, lr 2e-3 constant, seed 0,
    LoRA r=8 on the top 8 of 30 layers plus the ``score`` head), scored on 32 held-out pairs (other problems).
    ``max_length=96`` cuts prompts from the left (the system line, the start of the question): every flaw,
    a slipped step or a wrong final line, is inside the response, and it saves a fifth of the compute.

    Measured (2-core CPU shared by five jobs): seed 0 — untrained 17/32 = 0.531, trained 22/32 = 0.688
    (+5 pairs); the same settings with seed 1 — 17/32 → 23/32 = 0.719 (+6). One epoch at lr 3e-3 on full
    prompts gave +5 and +2 (seeds 0, 1): not reliable, hence two epochs. The test asks for at least 4 more
    of the 32 pairs right (+0.125); the untrained head is a fixed seeded direction, so the gain comes from
    training. About 307 s of CPU time (5 min wall under load, roughly 3 min on 2 free cores).
    """
    config = TrainConfig(method="rm", model="smollm2-135m", out=str(tmp_path), max_steps=32, batch_size=4, lr=2e-3,
                         warmup_ratio=0.0, schedule="constant", max_length=96, seed=0, device="cpu", dtype="float32",
                         lora=LORA)
    torch.manual_seed(0)  # the LoRA A matrices are drawn from the global RNG, which earlier tests have moved
    bundle = load_model(ModelSpec(name="smollm2-135m", device="cpu", dtype="float32", task="reward", seed=0), lora=LORA)
    ctx = StepContext(model=bundle.model, tokenizer=bundle.tokenizer, config=config, device=torch.device("cpu"))
    heldout = builtin_heldout_pairs(HELDOUT)
    untrained = pairwise_accuracy(ctx, heldout)
    train(config, builtin_train_pairs(64), bundle=bundle, progress=False)
    trained = pairwise_accuracy(ctx, heldout)
    print(f"held-out pairwise accuracy: untrained {untrained:.3f}, trained {trained:.3f} ({HELDOUT} pairs)")
    assert trained >= untrained + 4 / HELDOUT
