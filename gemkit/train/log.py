"""Where the engine's metric rows go: ``OUT/train_log.jsonl``, TensorBoard and the progress bar.

Only the main process writes; every rank holds the same (rank-averaged) rows.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from gemkit.io import append_jsonl, read_jsonl, write_jsonl


class TrainLog:
    """One JSON line per logged step (every ``log_every`` steps, the last step, and every skipped batch)."""

    def __init__(self, out: Path, *, is_main: bool, log_every: int, max_steps: int, start_step: int,
                 tensorboard: bool, progress: bool, desc: str) -> None:
        self.path = out / "train_log.jsonl"
        self.is_main, self.log_every, self.max_steps = is_main, log_every, max_steps
        self.writer = _tensorboard(out) if tensorboard and is_main else None
        self.bar = tqdm(total=max_steps, initial=start_step, desc=desc, disable=not progress or not is_main,
                        dynamic_ncols=True)

    def begin(self, start_step: int) -> None:
        """A fresh run starts an empty log; a resumed one drops rows past its checkpoint (no duplicates)."""
        if not self.is_main:
            return
        if start_step == 0:
            self.path.unlink(missing_ok=True)
        else:
            write_jsonl(self.path, [row for row in read_jsonl(self.path) if row.get("step", 0) <= start_step])

    def write(self, row: dict[str, Any], *, always: bool = False) -> None:
        step = row["step"]
        if self.is_main and (always or step % self.log_every == 0 or step == self.max_steps):
            append_jsonl(self.path, row)
            if self.writer is not None:
                for key, value in row.items():
                    if key != "step":
                        self.writer.add_scalar(f"train/{key}", value, step)
        if "loss" in row:
            self.bar.set_postfix(loss=f"{row['loss']:.4f}")
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
        if self.writer is not None:
            self.writer.close()


def _tensorboard(out: Path) -> Any:
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(out / "tb"))

