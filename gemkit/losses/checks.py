"""The option checks shared by the pairwise preference objectives (DPO family, SimPO, KTO, ORPO)."""
from __future__ import annotations


def preference_problems(beta: float, label_smoothing: float = 0.0, *, zero_beta_allowed: bool = False) -> list[str]:
    """What is wrong with a preference loss's β and label smoothing ε; empty when nothing is.

    β scales a log-ratio inside σ(·) (DPO, SimPO, KTO), so it must be > 0; ORPO's β weighs an added
    term, where 0 switches the term off (``zero_beta_allowed``). ε is the probability of a flipped
    label (cDPO / robust DPO): at 0.5 the two labels are equally likely and the loss has no signal.
    """
    problems = []
    if beta < 0 or (beta == 0 and not zero_beta_allowed):
        problems.append(f"beta must be {'>=' if zero_beta_allowed else '>'} 0, got {beta}")
    if not 0 <= label_smoothing < 0.5:
        problems.append(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
    return problems
