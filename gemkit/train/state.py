"""The engine's resumable state: data order, optimiser, schedule, RNG and trainable weights.

A resumed run replays exactly what an uninterrupted one would have done next (same world size):
the data order continues from its saved position, the RNG streams from their saved state, and the
optimiser's moments from their saved values. Saved by the main process into ``OUT/resume``
atomically (:func:`~gemkit.train.checkpoint.save_model`); every rank reads it back. This is the
state of one process or DDP, where every rank holds the whole model; under FSDP2 and DeepSpeed each rank saves
its own shards instead (:mod:`gemkit.train.sharded_state`).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gemkit.train.checkpoint import rng_state, save_model, set_rng_state
from gemkit.train.objective import Objective


class DataOrder:
    """Seeded shuffles epoch after epoch; its position is part of the resumable state."""

    def __init__(self, n: int, seed: int, epoch: int = 0, position: int = 0):
        self.n, self.seed, self.epoch, self.position = n, seed, epoch, position
        self._order = self._permutation(epoch)

    def _permutation(self, epoch: int) -> list[int]:
        order = list(range(self.n))
        random.Random(self.seed * 100_003 + epoch).shuffle(order)
        return order

    def take(self, count: int, rank: int = 0, world_size: int = 1) -> list[int]:
        """The next ``count`` records of ``rank``: its slice of the next ``count · world_size`` records."""
        indices = self._take_global(count * world_size)
        return indices[rank * count:(rank + 1) * count]

    def _take_global(self, count: int) -> list[int]:
        out = []
        while len(out) < count:
            if self.position >= self.n:
                self.epoch, self.position = self.epoch + 1, 0
                self._order = self._permutation(self.epoch)
            out.append(self._order[self.position])
            self.position += 1
        return out

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = state["epoch"], state["position"]
        self._order = self._permutation(self.epoch)


@dataclass
class Progress:
    """Counters that survive a resume."""

    step: int = 0
    skipped: int = 0
    truncated_sequences: int = 0


def save_resumable(out: Path, model: Any, tokenizer: Any, meta: dict[str, Any], optimizer: Any, scheduler: Any,
                   order: DataOrder, objective: Objective, progress: Progress) -> None:
    """Write ``OUT/resume``: the model as a checkpoint plus ``trainer_state.pt`` (call on the main process)."""
    trainable = {k: v.detach().cpu() for k, v in model.named_parameters() if v.requires_grad}
    state = {"step": progress.step, "skipped": progress.skipped, "truncated_sequences": progress.truncated_sequences,
             "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "order": order.state_dict(),
             "rng": rng_state(), "trainable": trainable, "objective": objective.state_dict()}
    save_model(model, tokenizer, out / "resume", meta={**meta, "step": progress.step}, extra_state=state,
               objective=objective)


def restore(state: dict[str, Any], model: Any, optimizer: Any, scheduler: Any, order: DataOrder,
            objective: Objective) -> Progress:
    """Put a saved state back into freshly built training objects; returns the saved counters."""
    named = dict(model.named_parameters())
    with torch.no_grad():
        for key, value in state["trainable"].items():
            named[key].copy_(value.to(named[key].device))
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    order.load_state_dict(state["order"])
    objective.load_state_dict(state["objective"])
    set_rng_state(state["rng"])
    return Progress(state["step"], state["skipped"], state.get("truncated_sequences", 0))
