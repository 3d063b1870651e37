"""Resumable state under FSDP2, where each rank holds a shard of every weight and optimiser moment.

``OUT/resume`` of a sharded run::

    OUT/resume/dcp/               trainable weights, AdamW moments and the objective's state, one
                                  file per rank (torch.distributed.checkpoint, each rank its shard)
    OUT/resume/trainer_state.pt   step, skip and truncation counters, scheduler, data-order position,
                                  every rank's RNG states, and the launch that wrote it
    OUT/resume/gemkit.json        what was trained and the step (not a loadable model: the final
                                  OUT/checkpoint is, gathered to full weights)

The tensors go through ``torch.distributed.checkpoint``: ``get_state_dict`` gives each rank's
DTensor shards of the model and of the optimiser's moments, ``dcp.save`` writes them without
gathering, and on resume ``dcp.load`` reads them into a fresh run's shards before
``set_state_dict`` puts them back. The counters are the same as :mod:`gemkit.train.state` saves for
one process. Frozen weights (the base model under LoRA) are not saved: training never changes them.

A sharded state resumes only under the same launch (FSDP2, same world size): the data order and
every rank's RNG stream continue exactly, so the resumed run logs what an unbroken one would. DCP
could reshard the tensors to another world size, but each rank's RNG stream and batch slice could
not continue, so another world size is refused with a :class:`~gemkit.errors.ConfigError`, as is
a sharded state under an unsharded run and the other way round. Every rank writes into the same
directory, so on several machines ``OUT`` must be on a shared filesystem.
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

#: the ``layout`` a sharded state records in ``trainer_state.pt`` (an unsharded one records none)
LAYOUT = "fsdp2-dcp"
SHARDS_DIR = "dcp"
#: trainable tensors only; frozen ones are absent from the template, hence not strict on load
_OPTIONS = StateDictOptions(ignore_frozen_params=True, strict=False)


def supports_sharded_resume(accelerator: Accelerator) -> bool:
    """True under FSDP2, the one sharded launch whose resumable state is implemented and tested."""
    return accelerator.distributed_type == DistributedType.FSDP and accelerator.is_fsdp2


def _shards(prepared: torch.nn.Module, optimizer: Any, objective: Objective) -> dict[str, Any]:
    """This rank's shards: model and optimiser (unwrapped from accelerate's optimiser) and the objective."""
    model, optim = get_state_dict(prepared, getattr(optimizer, "optimizer", optimizer), options=_OPTIONS)
    return {"model": model, "optimizer": optim, "objective": objective.state_dict()}


def save_sharded_resumable(out: Path, accelerator: Accelerator, prepared: torch.nn.Module, optimizer: Any,
                           scheduler: Any, order: DataOrder, objective: Objective, progress: Progress,
                           meta: dict[str, Any]) -> None:
    """Write ``OUT/resume`` from every rank (a collective: all ranks call it), swapped in whole.

    Rank 0 prepares ``OUT/.resume-sharded``, every rank writes its shards there, rank 0 adds the
    counters and renames it onto ``OUT/resume`` as :func:`~gemkit.train.checkpoint.save_model`
    does; a kill before the rename leaves the previous state, and the temp copy is removed by
    :func:`~gemkit.train.checkpoint.recover_dir` like any other.
    """
    tmp = out / ".resume-sharded"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    dcp.save(_shards(prepared, optimizer, objective), checkpoint_id=tmp / SHARDS_DIR)  # fsyncs its files
    rngs: list[Any] = [None] * accelerator.num_processes
    dist.all_gather_object(rngs, rng_state())
    if accelerator.is_main_process:
        state = {"layout": LAYOUT, "world_size": accelerator.num_processes, "step": progress.step,
                 "skipped": progress.skipped, "truncated_sequences": progress.truncated_sequences,
                 "scheduler": scheduler.state_dict(), "order": order.state_dict(), "rng": rngs}
        torch.save(state, tmp / STATE_FILE)
        (tmp / MODEL_META).write_text(json.dumps({**meta, "step": progress.step, "resume_layout": LAYOUT},
                                                 indent=2, default=str))
        for name in (STATE_FILE, MODEL_META):
            with open(tmp / name, "rb") as fh:
                os.fsync(fh.fileno())
        replace_dir(tmp, out / "resume")
    accelerator.wait_for_everyone()


def check_launch(state: dict[str, Any], directory: Path, accelerator: Accelerator) -> None:
    """Refuse a saved state this launch cannot continue exactly (before any collective, on every rank)."""
    world = accelerator.num_processes
    sharded_now = supports_sharded_resume(accelerator)
    if state.get("layout") == LAYOUT:
        if not sharded_now or state["world_size"] != world:
            now = f"FSDP2 on {world} processes" if sharded_now else f"an unsharded run on {world} process(es)"
            raise ConfigError(f"{directory} holds a sharded (FSDP2) state saved by {state['world_size']} processes, "
                              f"but this run is {now}: resume with the same launch (FSDP2, "
                              f"{state['world_size']} processes), or start afresh in another --out")
    elif sharded_now:
        raise ConfigError(f"{directory} holds an unsharded state (one process or DDP), but this run is FSDP2 on "
                          f"{world} processes: resume with the launch that saved it, or start afresh in another --out")


def restore_sharded(state: dict[str, Any], directory: Path, accelerator: Accelerator, prepared: torch.nn.Module,
                    optimizer: Any, scheduler: Any, order: DataOrder, objective: Objective) -> Progress:
    """Load ``directory`` (an ``OUT/resume`` of the same launch) into a fresh run's shards; the saved counters.

    A collective: every rank reads its shards. ``state`` is the directory's ``trainer_state.pt``,
    already passed by :func:`check_launch`.
    """
    tensors = _shards(prepared, optimizer, objective)
    dcp.load(tensors, checkpoint_id=directory / SHARDS_DIR)  # in place, into this rank's shards
    set_state_dict(prepared, getattr(optimizer, "optimizer", optimizer), model_state_dict=tensors["model"],
                   optim_state_dict=tensors["optimizer"], options=_OPTIONS)
    objective.load_state_dict(tensors["objective"])
    scheduler.load_state_dict(state["scheduler"])
    order.load_state_dict(state["order"])
    set_rng_state(state["rng"][accelerator.process_index])
    return Progress(state["step"], state["skipped"], state["truncated_sequences"])
