"""Pure preference-loss functions: one small class per published variant."""
from gemkit.losses.dpo import DPO_LOSSES, PairwiseLoss

__all__ = ["DPO_LOSSES", "PairwiseLoss"]
