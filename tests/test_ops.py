"""Hand-checked arithmetic for the shared tensor functions."""
import math

import torch

from gemkit.gem.advantages import group_advantages
from gemkit.ops import logprobs_and_entropies, masked_mean, token_entropies


def test_entropy_of_uniform_is_log_v():
    """Uniform logits over V=8 tokens: H = −Σ (1/8)·log(1/8) = log 8 ≈ 2.0794."""
    assert torch.allclose(token_entropies(torch.zeros(3, 8)), torch.full((3,), math.log(8)))


def test_entropy_of_two_point_distribution():
    """p = softmax([0, log 3]) = (1/4, 3/4): H = −(¼ log ¼ + ¾ log ¾) = 0.5623."""
    logits = torch.tensor([[0.0, math.log(3.0)]])
    expected = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert abs(token_entropies(logits).item() - expected) < 1e-6


def test_logprobs_and_entropies_share_one_softmax():
    """log p of label 1 under logits [0, log 3] is log ¾; the entropy is detached."""
    logits = torch.tensor([[[0.0, math.log(3.0)]]], requires_grad=True)
    logps, ents = logprobs_and_entropies(logits, torch.tensor([[1]]))
    assert abs(logps.item() - math.log(0.75)) < 1e-6
    assert not ents.requires_grad and logps.requires_grad


def test_masked_mean_ignores_masked_and_empty_rows():
    """Row 0: mean(1, 3) = 2 (the 100 is masked); row 1 has no unmasked value → 0."""
    values = torch.tensor([[1.0, 3.0, 100.0], [5.0, 5.0, 5.0]])
    mask = torch.tensor([[1, 1, 0], [0, 0, 0]])
    assert masked_mean(values, mask).tolist() == [2.0, 0.0]


def test_group_advantages_paper_form_and_std_form():
    """r = [1, 2, 3, 6], all kept: mean 3 → A = [−2, −1, 0, 3]; unbiased std = √(14/3) ≈ 2.1602."""
    rewards = torch.tensor([[1.0, 2.0, 3.0, 6.0]])
    keep = torch.ones_like(rewards)
    assert group_advantages(rewards, keep, scale_by_std=False).tolist() == [[-2.0, -1.0, 0.0, 3.0]]
    std = math.sqrt(14 / 3)
    scaled = group_advantages(rewards, keep, scale_by_std=True, eps=1e-6)
    assert torch.allclose(scaled, torch.tensor([[-2.0, -1.0, 0.0, 3.0]]) / (std + 1e-6))


def test_group_advantages_equal_rewards_give_zero():
    """Equal rewards: centred values are 0 and the std (0) is not divided by."""
    rewards = torch.full((2, 4), 0.7)
    assert group_advantages(rewards, torch.ones_like(rewards), scale_by_std=True).abs().max().item() == 0.0
