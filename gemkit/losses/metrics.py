"""The metrics every preference objective logs, computed the same way for all (detached floats)."""
from __future__ import annotations

import torch


def preference_metrics(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor, chosen_logps: torch.Tensor,
                       rejected_logps: torch.Tensor) -> dict[str, float]:
    """rewards/{chosen,rejected,margins,accuracies} and logps/{chosen,rejected}; all inputs ``[b]``."""
    chosen_rewards, rejected_rewards = chosen_rewards.detach().double(), rejected_rewards.detach().double()
    return {
        "rewards/chosen": float(chosen_rewards.mean()),
        "rewards/rejected": float(rejected_rewards.mean()),
        "rewards/margins": float((chosen_rewards - rejected_rewards).mean()),
        "rewards/accuracies": float((chosen_rewards > rejected_rewards).double().mean()),
        "logps/chosen": float(chosen_logps.detach().double().mean()),
        "logps/rejected": float(rejected_logps.detach().double().mean()),
    }
