"""Which saved sharded states a launch may resume: only one written by the same engine, ZeRO stage
and world size (:func:`gemkit.train.sharded_state.check_launch`), refused before anything loads;
and the settings the engine refuses for a launch before the model loads.

The launches are described by the accelerator fields ``resume_layout`` reads, so every pairing is
checked without starting processes; tests/test_distributed.py resumes real FSDP2 and DeepSpeed runs.
"""
from pathlib import Path
from types import SimpleNamespace

import pytest
from accelerate import DistributedType

from gemkit.errors import ConfigError
from gemkit.train.sharded_state import check_launch, resume_layout


def _launch(kind: str, world: int = 2):
    stage = int(kind[-1]) if kind.startswith("zero") else None
    distributed = {"ddp": DistributedType.MULTI_CPU, "fsdp1": DistributedType.FSDP, "fsdp2": DistributedType.FSDP,
                   "zero2": DistributedType.DEEPSPEED, "zero3": DistributedType.DEEPSPEED}[kind]
    return SimpleNamespace(distributed_type=distributed, is_fsdp2=kind == "fsdp2", num_processes=world,
                           state=SimpleNamespace(deepspeed_plugin=SimpleNamespace(zero_stage=stage)))


def test_each_sharded_engine_has_its_own_layout():
    assert [resume_layout(_launch(kind)) for kind in ("ddp", "fsdp1", "fsdp2", "zero2", "zero3")] == [
        None, None, "fsdp2-dcp", "deepspeed-zero2", "deepspeed-zero3"]


def test_the_same_launch_resumes():
    for kind in ("fsdp2", "zero2", "zero3"):
        check_launch({"layout": resume_layout(_launch(kind)), "world_size": 2}, Path("out/resume"), _launch(kind))
    check_launch({}, Path("out/resume"), _launch("ddp", world=3))  # an unsharded state is one whole model


@pytest.mark.parametrize(("saved", "now", "message"), [
    ("zero3", "zero2", "holds a sharded (DeepSpeed ZeRO-3) state saved by 2 processes, but this run is DeepSpeed "
                       "ZeRO-2 on 2 processes: resume with the same launch (DeepSpeed ZeRO-3, 2 processes)"),
    ("zero3", "fsdp2", "sharded (DeepSpeed ZeRO-3) state saved by 2 processes, but this run is FSDP2 on 2 processes"),
    ("fsdp2", "ddp", "sharded (FSDP2) state saved by 2 processes, but this run is an unsharded run on 2 process"),
    ("ddp", "zero3", "holds an unsharded state (one process or DDP), but this run is DeepSpeed ZeRO-3 on 2 processes"),
])
def test_another_engine_is_refused(saved, now, message):
    """Checked it can fail: with the layout comparison reduced to "both sharded", the ZeRO-3 state
    passes under ZeRO-2 and FSDP2 and no error is raised."""
    layout = resume_layout(_launch(saved))
    state = {"layout": layout, "world_size": 2} if layout else {}
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_launch(state, Path("out/resume"), _launch(now))


def test_another_world_size_is_refused():
    with pytest.raises(ConfigError, match=r"saved by 2 processes, but this run is DeepSpeed ZeRO-3 on 4 processes"):
        check_launch({"layout": "deepspeed-zero3", "world_size": 2}, Path("out/resume"), _launch("zero3", world=4))


def _train_config(**overrides):
    from gemkit.train import TrainConfig

    return TrainConfig(**{"method": "dpo", "model": "random:tiny", "out": "out", **overrides})


def test_fsdp1_refuses_resumable_state_before_the_model_loads():
    from gemkit.train.engine import _refuse_what_the_launch_cannot_do

    _refuse_what_the_launch_cannot_do(_train_config(save_every=2), _launch("fsdp2"), resume=True)
    with pytest.raises(ConfigError, match="need FSDP2 .* but this run is FSDP1"):
        _refuse_what_the_launch_cannot_do(_train_config(save_every=2), _launch("fsdp1"), resume=False)


def test_deepspeed_refuses_skipping_a_batch_of_several_micro_batches():
    """DeepSpeed keeps accumulated gradients in its own buffers, so a skipped batch's first
    micro-batches would leak into the next update. Checked it can fail: with the grad_accum
    condition dropped, the grad_accum=1 case is refused too."""
    from gemkit.train.engine import _refuse_what_the_launch_cannot_do

    _refuse_what_the_launch_cannot_do(_train_config(nan_policy="skip"), _launch("zero2"), resume=False)
    _refuse_what_the_launch_cannot_do(_train_config(nan_policy="skip", grad_accum=2), _launch("ddp"), resume=False)
    with pytest.raises(ConfigError, match="nan_policy=skip with grad_accum=2 under DeepSpeed"):
        _refuse_what_the_launch_cannot_do(_train_config(nan_policy="skip", grad_accum=2), _launch("zero3"),
                                          resume=False)
