"""Preference scoring: tie rules, bucketing invariance,
reference handling, classifier (reward-model) mode."""
import math

import pytest

from gemkit.data.arithmetic import builtin_heldout_pairs
from gemkit.errors import ConfigError
from gemkit.evaluation.context import EvalContext
from gemkit.evaluation.preference import PreferenceScoring, pair_credit, scoring_conventions, sequence_rewards


def test_tie_rules():
    assert pair_credit(1.0, 0.5, "wrong") == 1.0 and pair_credit(0.5, 1.0, "half") == 0.0
    assert pair_credit(0.5, 0.5, "wrong") == 0.0 and pair_credit(0.5, 0.5, "half") == 0.5


def test_bucketed_scores_equal_one_by_one_scores(tiny_bundle):
    """Length-bucketed batches of 3 give the rewards of an unsorted batch-of-1 loop (same items, same order)."""
    pairs = builtin_heldout_pairs(4, seed=1)
    prompts, responses = [p.prompt for p in pairs] * 2, [p.chosen for p in pairs] + [p.rejected for p in pairs]
    scoring = PreferenceScoring(reference="none", aggregate="mean")
    bucketed = sequence_rewards(EvalContext(tiny_bundle, batch_size=3), prompts, responses, scoring)
    single = sequence_rewards(EvalContext(tiny_bundle, batch_size=1), prompts, responses, scoring, bucketed=False)
    assert bucketed == pytest.approx(single, abs=1e-5)
    assert len(set(round(v, 6) for v in bucketed)) > 1


def test_prompt_shared_scoring_with_reference_equals_one_by_one(monkeypatch):
    """Prompts recurring 1, 2 and 3 times (groups of unequal sizes, batches of 4 never splitting a
    group), an empty response and a reference (LoRA adapters disabled) give the one-by-one rewards,
    and the shared-prompt forward is really the one used."""
    import torch

    import gemkit.evaluation.preference as preference
    from gemkit.models import LoraSpec, ModelSpec, load_model

    bundle = load_model(ModelSpec(name="random:tiny", seed=4), lora=LoraSpec(r=4))
    with torch.no_grad():
        for name, param in bundle.model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.3)
    prompts = ["What is 2 + 2?", "Name a colour.", "What is 2 + 2?", "Add 5 and 9.", "What is 2 + 2?", "Name a colour."]
    responses = ["4", "Blue.", "It is five.", "14, since 5 + 9 = 14.", "", "Green, like grass."]
    sizes_seen = []
    real = preference.shared_prompt_logprobs

    def recording(model, batch, members, sizes, **options):
        sizes_seen.append(list(sizes))
        return real(model, batch, members, sizes, **options)

    monkeypatch.setattr(preference, "shared_prompt_logprobs", recording)
    scoring = PreferenceScoring(reference="base")
    ctx = EvalContext(bundle, batch_size=4, seed=0)
    assert ctx.has_reference
    shared = sequence_rewards(ctx, prompts, responses, scoring)
    single = sequence_rewards(EvalContext(bundle, batch_size=1, seed=0), prompts, responses, scoring, bucketed=False)
    assert shared == pytest.approx(single, abs=1e-5)
    seen = [size for sizes in sizes_seen for size in sizes]
    assert seen.count(3) == 2 and seen.count(2) == 2  # each shared group once for the policy, once for the reference
    assert len(set(round(v, 5) for v in shared)) > 3


def test_reference_auto_resolves_and_is_recorded(tiny_bundle):
    """A plain model has no reference: auto -> none; asking for base is a clear error."""
    ctx = EvalContext(tiny_bundle)
    assert scoring_conventions(ctx, PreferenceScoring())["reference"] == "none"
    with pytest.raises(ConfigError, match="reference=base needs"):
        sequence_rewards(ctx, ["q"], ["a"], PreferenceScoring(reference="base"))


def test_lora_reference_is_the_base_with_adapters_disabled(tiny_bundle):
    """A fresh LoRA adapter (B = 0) equals its base, so β·(log π − log π_ref) = 0 for every answer."""
    from gemkit.models import LoraSpec, apply_lora

    tiny_bundle.model = apply_lora(tiny_bundle.model, LoraSpec(r=4))
    ctx = EvalContext(tiny_bundle)
    scoring = PreferenceScoring()
    assert scoring_conventions(ctx, scoring)["reference"] == "base"
    rewards = sequence_rewards(ctx, ["What is 2+2?", "Hi"], ["4", "Hello there"], scoring)
    assert rewards == pytest.approx([0.0, 0.0], abs=1e-6)


def test_reward_model_is_scored_by_its_head():
    """task=reward: the reward is the classification head's scalar, recorded as classifier scoring."""
    from gemkit.models import ModelSpec, load_model

    bundle = load_model(ModelSpec(name="random:tiny", device="cpu", dtype="float32", task="reward", seed=0))
    ctx = EvalContext(bundle)
    assert ctx.is_reward_model and scoring_conventions(ctx, PreferenceScoring())["scoring"] == "classifier"
    rewards = sequence_rewards(ctx, ["q1", "q2"], ["first answer", "a much longer second answer"], PreferenceScoring())
    assert all(math.isfinite(r) for r in rewards) and rewards[0] != rewards[1]


def test_packing_keeps_groups_whole_and_cuts_only_oversized_ones():
    from gemkit.evaluation.preference import packed

    assert packed([[0, 1], [2], [3, 4, 5, 6, 7]], 3) == [[[0, 1], [2]], [[3, 4, 5]], [[6, 7]]]
    assert packed([[0], [1], [2]], 1) == [[[0]], [[1]], [[2]]]
