"""Resumable state of sharded runs (FSDP2, DeepSpeed ZeRO), where each rank holds a shard of the
trainable weights or of their optimiser moments and saves and reloads only that shard.

``OUT/resume`` of a sharded run::

    OUT/resume/dcp/               FSDP2: trainable weights, AdamW moments and the objective's state,
                                  one file per rank (torch.distributed.checkpoint)
    OUT/resume/deepspeed/state/   DeepSpeed: the engine's own checkpoint (``save_checkpoint``):
                                  trainable weights, each rank's partition of the fp32 master
                                  weights and moments, the objective's state
    OUT/resume/trainer_state.pt   step, skip and truncation counters, scheduler, data-order position,
                                  every rank's RNG states, and the launch that wrote it
    OUT/resume/gemkit.json        what was trained and the step (not a loadable model: the final
                                  OUT/checkpoint is, gathered to full weights)

The tensors are written by the engine that sharded them, never gathered:

- FSDP2: ``get_state_dict`` gives each rank's DTensor shards of the model and of the optimiser's
  moments, ``dcp.save`` writes them, and on resume ``dcp.load`` reads them into a fresh run's
  shards before ``set_state_dict`` puts them back.
- DeepSpeed: ``DeepSpeedEngine.save_checkpoint`` writes the module's trainable tensors and every
  rank's ZeRO partition of the optimiser; ``load_checkpoint`` reads them into a fresh engine, which
  copies the fp32 master weights back into the model (ZeRO-3: into each rank's partition).

Frozen weights (the base model under LoRA) are not saved: training never changes them. The
counters are the same as :mod:`gemkit.train.state` saves for one process.

A sharded state resumes only under the same launch (same engine, ZeRO stage and world size): the
data order and every rank's RNG stream continue exactly, so the resumed run logs what an unbroken
one would. Another launch is refused with a :class:`~gemkit.errors.ConfigError` before anything
loads, as is a sharded state under an unsharded run and the other way round. FSDP1 has no layout
here (:func:`resume_layout` is None) and the engine refuses resumable state under it. Every rank
writes into the same directory, so on several machines ``OUT`` must be on a shared filesystem.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from accelerate import Accelerator, DistributedType
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict, set_state_dict

from gemkit.errors import ConfigError
from gemkit.train.checkpoint import MODEL_META, STATE_FILE, replace_dir, rng_state, set_rng_state
from gemkit.train.objective import Objective
from gemkit.train.state import DataOrder, Progress

#: the ``layout`` an FSDP2 state records in ``trainer_state.pt`` (an unsharded one records none)
FSDP2_LAYOUT = "fsdp2-dcp"
SHARDS_DIR = "dcp"
DEEPSPEED_DIR = "deepspeed"
#: the one checkpoint tag in ``OUT/resume/deepspeed`` (the directory is replaced whole at each save)
DEEPSPEED_TAG = "state"
#: trainable tensors only; frozen ones are absent from the template, hence not strict on load
_OPTIONS = StateDictOptions(ignore_frozen_params=True, strict=False)


def resume_layout(accelerator: Accelerator) -> str | None:
    """How this launch saves resumable state sharded: ``fsdp2-dcp``, ``deepspeed-zero<stage>``, or
    None (one process or DDP, which save one whole state, and FSDP1, which the engine refuses)."""
    if accelerator.distributed_type == DistributedType.FSDP and accelerator.is_fsdp2:
        return FSDP2_LAYOUT
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        return f"deepspeed-zero{accelerator.state.deepspeed_plugin.zero_stage}"
    return None


def _describe(layout: str | None, world: int) -> str:
    if layout is None:
        return f"an unsharded run on {world} process(es)"
    engine = "FSDP2" if layout == FSDP2_LAYOUT else layout.replace("deepspeed-zero", "DeepSpeed ZeRO-")
    return f"{engine} on {world} processes"


def _shards(prepared: torch.nn.Module, optimizer: Any, objective: Objective) -> dict[str, Any]:
    """FSDP2: this rank's shards of model and optimiser (unwrapped from accelerate's optimiser) and the objective."""
    model, optim = get_state_dict(prepared, getattr(optimizer, "optimizer", optimizer), options=_OPTIONS)
    return {"model": model, "optimizer": optim, "objective": objective.state_dict()}


def _save_tensors(layout: str, directory: Path, prepared: Any, optimizer: Any, objective: Objective) -> None:
    """Every rank writes its shards into ``directory`` (a collective; both engines fsync their files)."""
    if layout == FSDP2_LAYOUT:
        dcp.save(_shards(prepared, optimizer, objective), checkpoint_id=directory / SHARDS_DIR)
        return
    # ``prepared`` is the DeepSpeedEngine that accelerate built around the trained modules.
    prepared.save_checkpoint(str(directory / DEEPSPEED_DIR), tag=DEEPSPEED_TAG, save_latest=False,
                             client_state={"objective": objective.state_dict()}, exclude_frozen_parameters=True)


def _load_tensors(layout: str, directory: Path, prepared: Any, optimizer: Any, objective: Objective) -> None:
    """Every rank reads its shards from ``directory`` into the fresh run's model, optimiser and objective."""
    if layout == FSDP2_LAYOUT:
        tensors = _shards(prepared, optimizer, objective)
        dcp.load(tensors, checkpoint_id=directory / SHARDS_DIR)  # in place, into this rank's shards
        set_state_dict(prepared, getattr(optimizer, "optimizer", optimizer), model_state_dict=tensors["model"],
                       optim_state_dict=tensors["optimizer"], options=_OPTIONS)
        objective.load_state_dict(tensors["objective"])
        return
    # Not strict: the frozen weights were left out on save. The scheduler is gemkit's, in trainer_state.pt.
    path, client = prepared.load_checkpoint(str(directory / DEEPSPEED_DIR), tag=DEEPSPEED_TAG,
                                            load_module_strict=False, load_lr_scheduler_states=False)
    if path is None:
        raise ConfigError(f"{directory / DEEPSPEED_DIR} holds no DeepSpeed checkpoint '{DEEPSPEED_TAG}': the resume "
                          f"state is incomplete; start afresh in another --out")
    objective.load_state_dict(client["objective"])


def save_sharded_resumable(out: Path, accelerator: Accelerator, prepared: torch.nn.Module, optimizer: Any,
                           scheduler: Any, order: DataOrder, objective: Objective, progress: Progress,
                           meta: dict[str, Any]) -> None:
    """Write ``OUT/resume`` from every rank (a collective: all ranks call it), swapped in whole.

    Rank 0 prepares ``OUT/.resume-sharded``, every rank writes its shards there, rank 0 adds the
    counters and renames it onto ``OUT/resume`` as :func:`~gemkit.train.checkpoint.save_model`
    does; a kill before the rename leaves the previous state, and the temp copy is removed by
    :func:`~gemkit.train.checkpoint.recover_dir` like any other.
    """
    layout = resume_layout(accelerator)
    assert layout is not None, "save_sharded_resumable needs an FSDP2 or DeepSpeed launch"
    tmp = out / ".resume-sharded"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    _save_tensors(layout, tmp, prepared, optimizer, objective)
    rngs: list[Any] = [None] * accelerator.num_processes
    dist.all_gather_object(rngs, rng_state())
    if accelerator.is_main_process:
        state = {"layout": layout, "world_size": accelerator.num_processes, "step": progress.step,
                 "skipped": progress.skipped, "truncated_sequences": progress.truncated_sequences,
                 "scheduler": scheduler.state_dict(), "order": order.state_dict(), "rng": rngs}
        torch.save(state, tmp / STATE_FILE)
        (tmp / MODEL_META).write_text(json.dumps({**meta, "step": progress.step, "resume_layout": layout},
                                                 indent=2, default=str))
        for name in (STATE_FILE, MODEL_META):
            with open(tmp / name, "rb") as fh:
                os.fsync(fh.fileno())
        replace_dir(tmp, out / "resume")
    accelerator.wait_for_everyone()


def check_launch(state: dict[str, Any], directory: Path, accelerator: Accelerator) -> None:
    """Refuse a saved state this launch cannot continue exactly (before any collective, on every rank)."""
    world, layout = accelerator.num_processes, resume_layout(accelerator)
    saved_layout = state.get("layout")
    saved_world = state.get("world_size", world) if saved_layout is not None else None
    if saved_layout == layout and (saved_layout is None or saved_world == world):
        return
    if saved_layout is None:
        raise ConfigError(f"{directory} holds an unsharded state (one process or DDP), but this run is "
                          f"{_describe(layout, world)}: resume with the launch that saved it, or start afresh in "
                          f"another --out")
    saved = _describe(saved_layout, saved_world).removesuffix(f" on {saved_world} processes")
    raise ConfigError(f"{directory} holds a sharded ({saved}) state saved by {saved_world} processes, but this run "
                      f"is {_describe(layout, world)}: resume with the same launch ({saved}, {saved_world} "
                      f"processes), or start afresh in another --out")


def restore_sharded(state: dict[str, Any], directory: Path, accelerator: Accelerator, prepared: torch.nn.Module,
                    optimizer: Any, scheduler: Any, order: DataOrder, objective: Objective) -> Progress:
    """Load ``directory`` (an ``OUT/resume`` of the same launch) into a fresh run's shards; the saved counters.

    A collective: every rank reads its shards. ``state`` is the directory's ``trainer_state.pt``,
    already passed by :func:`check_launch`.
    """
    _load_tensors(state["layout"], directory, prepared, optimizer, objective)
    scheduler.load_state_dict(state["scheduler"])
    order.load_state_dict(state["order"])
    set_rng_state(state["rng"][accelerator.process_index])
    return Progress(state["step"], state["skipped"], state["truncated_sequences"])
