"""Option groups defined once and shared: the sampling options of the sampling objectives, SEGA's
advantage rule, and the β / label-smoothing checks of the pairwise preference objectives."""
from __future__ import annotations

import dataclasses

import pytest

from gemkit.builtin.dpo import DPOConfig
from gemkit.builtin.grpo import GRPOConfig
from gemkit.builtin.kto import KTOConfig
from gemkit.builtin.orpo import ORPOConfig
from gemkit.builtin.ppo import PPOConfig
from gemkit.builtin.sega import SegaConfig
from gemkit.builtin.simpo import SimPOConfig
from gemkit.errors import ConfigError
from gemkit.gem.advantages import AdvantageRule
from gemkit.generation import CandidateSampling, SamplingConfig
from gemkit.losses.checks import preference_problems


def test_preference_problems_rules():
    """β > 0 for losses with β inside σ(·); ORPO's weight may be 0; ε in [0, 0.5)."""
    assert preference_problems(0.1, 0.0) == []
    assert preference_problems(0.0) == ["beta must be > 0, got 0.0"]
    assert preference_problems(0.0, zero_beta_allowed=True) == []
    assert preference_problems(-1.0, 0.5, zero_beta_allowed=True) == [
        "beta must be >= 0, got -1.0", "label_smoothing must be in [0, 0.5), got 0.5"]


@pytest.mark.parametrize("make, message", [
    (lambda: DPOConfig(beta=0.0), "beta must be > 0"),
    (lambda: DPOConfig(label_smoothing=0.5), "label_smoothing must be in [0, 0.5)"),
    (lambda: SimPOConfig(beta=-2.0), "beta must be > 0"),
    (lambda: KTOConfig(beta=0.0), "beta must be > 0"),
    (lambda: ORPOConfig(beta=-0.1), "beta must be >= 0"),
])
def test_each_pairwise_objective_uses_the_shared_checks(make, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(")", r"\)")):
        make()
    assert ORPOConfig(beta=0.0).beta == 0.0  # 0 switches ORPO's term off


def test_sampling_objectives_share_one_group_with_their_own_defaults():
    """SEGA, GRPO and rm-ppo have the same four sampling fields (with the same help) and hand the
    same SamplingConfig on; GRPO and rm-ppo keep their top_p of 1.0, SEGA its 0.95."""
    names = {f.name for f in dataclasses.fields(CandidateSampling)}
    assert names == {"temperature", "top_p", "max_new_tokens", "generator"}
    for cls in (SegaConfig, GRPOConfig, PPOConfig):
        assert issubclass(cls, CandidateSampling)
    assert SegaConfig().sampling() == SamplingConfig(max_new_tokens=128, temperature=0.9, top_p=0.95)
    assert GRPOConfig(temperature=0.7).sampling() == SamplingConfig(max_new_tokens=128, temperature=0.7, top_p=1.0)
    with pytest.raises(ConfigError, match="top_p must be in"):
        GRPOConfig(top_p=1.5)


def test_sega_config_is_its_advantage_rule():
    """SegaConfig's rule fields are AdvantageRule's own (one definition), and its checks run."""
    rule_fields = {f.name for f in dataclasses.fields(AdvantageRule)}
    assert rule_fields <= {f.name for f in dataclasses.fields(SegaConfig)}
    assert isinstance(SegaConfig(), AdvantageRule)
    with pytest.raises(ConfigError, match="unfinished must be keep, penalise or drop"):
        SegaConfig(unfinished="ignore")
    with pytest.raises(ConfigError, match="trim_bottom must be in"):
        SegaConfig(k=2, trim_bottom=2)
