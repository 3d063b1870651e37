"""Pure preference and policy-gradient losses: small functions / classes, one per published variant."""
from gemkit.losses.dpo import DPO_LOSSES, PairwiseLoss
from gemkit.losses.kto import kto_loss, kto_reference_point
from gemkit.losses.metrics import preference_metrics
from gemkit.losses.policy_gradient import (
    clipped_surrogate,
    clipped_value_loss,
    generalised_advantages,
    k3_kl,
    whiten,
)
from gemkit.losses.ranking import bradley_terry_loss, pro_loss
from gemkit.losses.simpo import log1mexp, orpo_log_odds_ratio, orpo_odds_ratio_loss, simpo_loss

__all__ = ["DPO_LOSSES", "PairwiseLoss", "bradley_terry_loss", "clipped_surrogate", "clipped_value_loss",
           "generalised_advantages", "k3_kl", "kto_loss", "kto_reference_point", "log1mexp", "orpo_log_odds_ratio",
           "orpo_odds_ratio_loss", "preference_metrics", "pro_loss", "simpo_loss", "whiten"]
