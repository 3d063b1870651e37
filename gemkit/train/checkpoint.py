"""Saving and loading trained models and resumable trainer state, always atomically.

Layout of a training output directory::

    OUT/config.json        the resolved TrainConfig (and objective options)
    OUT/train_log.jsonl    one JSON line per logged step
    OUT/checkpoint/        final model: LoRA adapter or full weights, tokenizer, gemkit.json
    OUT/resume/            latest resumable state: model as above + trainer_state.pt (under FSDP2
                           and DeepSpeed: each rank's shards + trainer_state.pt, see
                           gemkit.train.sharded_state)
"""
from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from gemkit.errors import ModelLoadError
from gemkit.models import ModelBundle, ModelSpec, load_model

MODEL_META = "gemkit.json"
STATE_FILE = "trainer_state.pt"


def replace_dir(tmp: Path, target: Path) -> None:
    """Swap a fully written temp dir onto ``target`` (old copy removed only after the new is in place)."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def recover_dir(target: Path) -> None:
    """Undo what a kill during :func:`replace_dir` or :func:`save_model` left behind.

    Killed between moving ``target`` aside and renaming the new copy in, only ``.target.old``
    exists: it is the last complete state, so it is put back. Unfinished temp copies are removed.
    """
    old = target.with_name(f".{target.name}.old")
    if not target.exists() and old.is_dir():
        os.replace(old, target)
    for leftover in target.parent.glob(f".{target.name}-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def save_model(model: Any, tokenizer: Any, directory: str | Path, *, meta: dict[str, Any],
               extra_state: dict[str, Any] | None = None, objective: Any = None,
               state_dict: dict[str, torch.Tensor] | None = None,
               extras: list[dict[str, torch.Tensor]] | None = None) -> Path:
    """Write the model (adapter only under LoRA), tokenizer and ``gemkit.json`` atomically.

    ``state_dict`` replaces the model's own tensors, and ``extras`` those of the objective's
    trainable modules (passed to its ``save_extra``): the gathered full weights when the model is
    sharded (FSDP, ZeRO-3), where each rank's parameters hold only a shard.
    """
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        if state_dict is None:
            model.save_pretrained(tmp, safe_serialization=True)
        else:
            model.save_pretrained(tmp, safe_serialization=True, state_dict=state_dict)
        tokenizer.save_pretrained(tmp)
        meta = {**meta, "adapter": hasattr(model, "peft_config")}
        (tmp / MODEL_META).write_text(json.dumps(meta, indent=2, default=str))
        if objective is not None:
            if extras is None:
                extras = [module.state_dict() for module in objective.trainable_modules()]
            objective.save_extra(str(tmp), extras)
        if extra_state is not None:
            torch.save(extra_state, tmp / STATE_FILE)
        for path in tmp.rglob("*"):
            if path.is_file():
                with open(path, "rb") as fh:
                    os.fsync(fh.fileno())
        replace_dir(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_trainer_state(directory: str | Path) -> dict[str, Any] | None:
    path = Path(directory) / STATE_FILE
    if not path.is_file():
        return None
    # weights_only: a checkpoint from the internet cannot run code on load.
    return torch.load(path, map_location="cpu", weights_only=True)


def read_checkpoint_meta(path: str | Path) -> dict[str, Any] | None:
    """The ``gemkit.json`` of a checkpoint directory, or None when ``path`` is not one (a hub id, a plain model)."""
    meta_file = Path(path) / MODEL_META
    if not meta_file.is_file():
        return None
    try:
        return json.loads(meta_file.read_text())
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{meta_file} is not valid JSON ({exc.msg}); the checkpoint is damaged, save it again") from None


def load_trained(path: str | Path, *, device: str = "auto", dtype: str = "auto") -> ModelBundle:
    """Load a gemkit checkpoint directory (adapter or full weights) as a ready model bundle.

    An adapter stays a separate peft adapter on its base (``disable_adapter()`` gives the base back);
    to start a new run from a checkpoint pass its directory as the model name instead, which merges it.
    """
    path = Path(path)
    meta = read_checkpoint_meta(path)
    if meta is None:
        raise ModelLoadError(f"{path} is not a gemkit checkpoint (no {MODEL_META}); pass the OUT/checkpoint directory")
    task = meta.get("task", "causal-lm")
    if not meta.get("adapter"):
        return load_model(ModelSpec(name=str(path), device=device, dtype=dtype, task=task))
    from peft import PeftModel

    bundle = load_model(ModelSpec(name=meta["base_model"], device=device, dtype=dtype, task=task,
                                  seed=meta.get("base_seed", 0)))
    bundle.model = PeftModel.from_pretrained(bundle.model, str(path), is_trainable=False).to(bundle.device)
    bundle.source = f"{path} (adapter on {meta['base_model']})"
    bundle.extra["meta"] = meta
    return bundle


def config_to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
