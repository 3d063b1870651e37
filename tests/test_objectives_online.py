"""The online objectives: GRPO (verifiable or scorer reward, on GEM's group machinery) and PPO
against a trained reward model. Each trains 5 steps on the tiny model and reloads."""
import math

import pytest
import torch

from gemkit.builtin.grpo import GRPO, AnswerReward, AnswerRewardConfig, GRPOConfig
from gemkit.builtin.ppo import VALUE_HEAD_FILE
from gemkit.data.records import PreferencePair
from gemkit.errors import ConfigError
from gemkit.io import read_jsonl
from gemkit.models import LoraSpec
from gemkit.scoring import ScoringInputs
from gemkit.train import TrainConfig, load_trained, train

PAIRS = [PreferencePair(f"What is {i} + {i + 1}?", f"{i} + {i + 1} = {2 * i + 1}. Final Answer: {2 * i + 1}",
                        f"Final Answer: {2 * i}", id=f"p{i}", answer=str(2 * i + 1)) for i in range(4)]
LORA = LoraSpec(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"])


def config(tmp_path, method, options, **overrides):
    base = dict(method=method, model="random:tiny", out=str(tmp_path / method), max_steps=5, batch_size=2, lr=1e-3,
                device="cpu", dtype="float32", max_length=96, seed=0, objective=options, lora=LORA)
    base.update(overrides)
    return TrainConfig(**base)


def _inputs(texts, answers):
    n = len(texts)
    zeros = torch.zeros(n, 1)
    return ScoringInputs(token_ids=zeros.long(), response_mask=zeros, token_entropies=zeros, token_logps=zeros,
                         logits=None, texts=texts, tokenizer=None, group_size=n, answers=answers)


def test_answer_reward_by_hand():
    """Gold 1,234: 'Final Answer: 1234' ✓ (commas dropped on both sides), 'Final Answer: 1234.0' ✓,
    'Final Answer: 12' ✗, no marker ✗ and unfinished ⇒ scores [1, 1, 0, 0], finished [T, T, T, F]."""
    result = AnswerReward().score(_inputs(["Final Answer: 1234", "so Final Answer: 1234.0", "Final Answer: 12", "1234"],
                                          ["1,234"] * 4))
    assert result.scores.tolist() == [1.0, 1.0, 0.0, 0.0]
    assert result.finished.tolist() == [True, True, True, False]
    with pytest.raises(ConfigError, match="gold answer"):
        AnswerReward().score(_inputs(["Final Answer: 1"], [None]))


def test_answer_reward_last_number_check_by_hand():
    """check=last-number (the arithmetic benchmark's flexible rule): '6 x 7 = 42 stickers' ✓, 'so 41,
    then 42' ✓, 'Final Answer: 42 or 43' ✗ (last number 43), 'no number' ✗ and unanswered ⇒ scores
    [1, 1, 0, 0], finished [T, T, T, F]; an unknown check fails at config time, naming the choices.
    Checked: with last-number mapped to the final-answer rule the first two score 0 and the test fails."""
    reward = AnswerReward(AnswerRewardConfig(check="last-number"))
    result = reward.score(_inputs(["6 x 7 = 42 stickers", "so 41, then 42", "Final Answer: 42 or 43", "no number"],
                                  ["42"] * 4))
    assert result.scores.tolist() == [1.0, 1.0, 0.0, 0.0]
    assert result.finished.tolist() == [True, True, True, False]
    with pytest.raises(ConfigError, match="last-number"):
        AnswerRewardConfig(check="lastnumber")


def test_grpo_rejects_groups_of_one_and_unknown_rewards():
    with pytest.raises(ConfigError, match="k >= 2"):
        GRPOConfig(k=1)
    with pytest.raises(Exception, match="Unknown scorer"):
        GRPO(GRPOConfig(reward="no-such-scorer"))


@pytest.mark.parametrize("reward", ["answer", "entropy"])
def test_grpo_trains_five_steps_and_reloads(tmp_path, reward):
    """With the random tiny model the answer reward is 0 for every candidate (advantages 0, a no-op
    update); the entropy scorer gives distinct rewards, so that run must move the adapter."""
    options = {"reward": reward, "k": 2, "max_new_tokens": 6}
    result = train(config(tmp_path, "grpo", options), PAIRS, progress=False)
    log = list(read_jsonl(result.log_path))
    assert [row["step"] for row in log] == [1, 2, 3, 4, 5]
    assert all(math.isfinite(v) for row in log for v in row.values())
    assert {"reward_mean", "advantage_std", "kl", "grad_norm"} <= set(log[-1])
    bundle = load_trained(result.checkpoint, device="cpu")
    lora_b = [p for n, p in bundle.model.named_parameters() if "lora_B" in n]
    if reward == "entropy":
        assert any(float(p.abs().sum()) > 0 for p in lora_b)  # lora_B starts at 0: nonzero means it learned


def test_ppo_against_a_trained_reward_model_trains_and_reloads(tmp_path):
    rm = train(config(tmp_path, "rm", {}, max_steps=2), PAIRS, progress=False)
    options = {"reward_model": str(rm.checkpoint), "k": 2, "max_new_tokens": 6}
    result = train(config(tmp_path, "rm-ppo", options), PAIRS, progress=False)
    log = list(read_jsonl(result.log_path))
    assert [row["step"] for row in log] == [1, 2, 3, 4, 5]
    assert all(math.isfinite(v) for row in log for v in row.values())
    assert {"reward_model_score", "kl", "value_loss", "policy_loss"} <= set(log[-1])
    head = torch.load(result.checkpoint / VALUE_HEAD_FILE, weights_only=True)
    assert float(head["weight"].abs().sum() + head["bias"].abs().sum()) > 0  # initialised at 0, so it trained
    bundle = load_trained(result.checkpoint, device="cpu")
    assert any("lora_B" in n and float(p.abs().sum()) > 0 for n, p in bundle.model.named_parameters())


def test_ppo_needs_a_reward_model_checkpoint(tmp_path):
    from gemkit.builtin.ppo import PPOConfig

    with pytest.raises(ConfigError, match="reward_model"):
        PPOConfig()
    with pytest.raises(ConfigError, match="not a gemkit checkpoint"):
        PPOConfig(reward_model=str(tmp_path))
