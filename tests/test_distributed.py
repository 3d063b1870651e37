"""Two CPU processes (gloo) under accelerate train exactly like one process on the global batch.

Each rank takes its own ``batch_size`` slice of every global micro-batch and DDP (prepared by
accelerate) averages the gradients: with per-rank batch 2 on 2 ranks, the mean of the two ranks'
gradients of their 2-record mean losses is the gradient of the 4-record mean loss, so every
logged loss and gradient norm equals the single-process run with batch 4.
"""
import json
import math
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from test_engine import PAIRS, ChosenNLL, NLLConfig

from gemkit.errors import ConfigError, TrainingError
from gemkit.io import read_jsonl
from gemkit.models import LoraSpec, ModelSpec, load_model
from gemkit.train import TrainConfig, train


def _config(out, batch_size, **overrides):
    values = dict(method="test-nll", model="random:tiny", out=str(out), max_steps=3, batch_size=batch_size,
                  lr=5e-3, device="cpu", seed=0, warmup_ratio=0.0,
                  lora=LoraSpec(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"]))
    values.update(overrides)
    return TrainConfig(**values)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _join(rank, world, port):
    """What torchrun / accelerate launch set for each process."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)


def _train(config, poison_step=-1, resume=False):
    bundle = load_model(ModelSpec(name="random:tiny", device="cpu", seed=0), lora=config.lora)
    return train(config, PAIRS, bundle=bundle, objective=ChosenNLL(NLLConfig(poison_step)), resume=resume,
                 progress=False)


def _worker(rank, world, port, out, overrides):
    _join(rank, world, port)
    _train(_config(out, batch_size=2, **overrides))
    torch.distributed.destroy_process_group()


def _assert_same_rows(a, b, tolerance=1e-5, norm_rtol=3e-5):
    """Losses within ``tolerance``; gradient norms within ``norm_rtol`` of their size (fp32 sums of the
    same terms in another order: per rank then across ranks, or per shard under FSDP)."""
    assert [r["step"] for r in a] == [r["step"] for r in b]
    for row_a, row_b in zip(a, b, strict=True):
        assert abs(row_a["loss"] - row_b["loss"]) < tolerance, (row_a, row_b)
        assert abs(row_a["grad_norm"] - row_b["grad_norm"]) <= norm_rtol * row_a["grad_norm"], (row_a, row_b)


@pytest.mark.parametrize("overrides", [{}, {"grad_accum": 2, "max_steps": 2}], ids=["ddp", "ddp-accumulate"])
def test_two_process_gloo_matches_single_process_global_batch(tmp_path, overrides):
    """Same 3 (or 2 accumulated) steps: loss within 1e-5, grad norm within 1e-4 of one process on batch 4.

    Checked it can fail: with DDP's averaging switched off (``accelerator.no_sync`` around every
    backward) each rank clips and steps on its own half-batch's gradient: step 1's grad norm differs.
    """
    single = _train(_config(tmp_path / "single", batch_size=4, **overrides))
    mp.spawn(_worker, args=(2, _free_port(), tmp_path / "ddp", overrides), nprocs=2, join=True)
    a = list(read_jsonl(single.log_path))
    b = list(read_jsonl(tmp_path / "ddp" / "train_log.jsonl"))
    assert len(a) == overrides.get("max_steps", 3)
    _assert_same_rows(a, b)
    # tokens_per_s counts both ranks' tokens; mfu is per device, so both are positive and finite
    assert all(row["tokens_per_s"] > 0 and 0 < row["mfu"] < 1 for row in b)


def _crash_and_resume(config):
    """Train 6 steps, checkpoint every 2, crash at step 5 (a NaN every rank sees), resume from step 4."""
    try:
        _train(config, poison_step=4)
    except TrainingError:
        pass
    else:
        raise AssertionError("the poisoned step did not stop the run")
    _train(config, resume=True)
    torch.distributed.destroy_process_group()


def _resume_worker(rank, world, port, out):
    _join(rank, world, port)
    _crash_and_resume(_config(out, batch_size=2, max_steps=6, save_every=2))


def test_two_process_resume_matches_uninterrupted_two_process_run(tmp_path):
    """2 ranks crash at step 5 (checkpoint at 4), resume on 2 ranks → the 6 rows of an unbroken
    2-rank run, which itself equals one process on batch 4 (the test above), so we compare with that."""
    unbroken = _train(_config(tmp_path / "single", batch_size=4, max_steps=6, save_every=2))
    mp.spawn(_resume_worker, args=(2, _free_port(), tmp_path / "ddp"), nprocs=2, join=True)
    resumed = list(read_jsonl(tmp_path / "ddp" / "train_log.jsonl"))
    assert [r["step"] for r in resumed] == list(range(1, 7))
    _assert_same_rows(list(read_jsonl(unbroken.log_path)), resumed)


def _single_and_torchrun(tmp_path, common: list[str], launch_env: dict[str, str] | None = None,
                         launcher: list[str] | None = None):
    """Train logs of ``gemkit train COMMON`` in one process at batch 2 and under ``torchrun
    --nproc-per-node 2`` (or ``launcher``, a 2-process command that takes ``-m gemkit``) at batch 1
    per rank (``launch_env``: what a launcher exports, e.g. FSDP)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "gemkit", "train", *common, "--batch-size", "2",
                    "--out", str(tmp_path / "single")], check=True, env=env, timeout=300)
    launcher = launcher or [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
                            str(_free_port())]
    subprocess.run([*launcher, "-m", "gemkit", "train", *common, "--batch-size", "1", "--out", str(tmp_path / "multi")],
                   check=True, env={**env, **(launch_env or {})}, timeout=300)
    return (list(read_jsonl(tmp_path / "single" / "train_log.jsonl")),
            list(read_jsonl(tmp_path / "multi" / "train_log.jsonl")))


def test_torchrun_cli_dpo_matches_single_process(tmp_path):
    """``torchrun --nproc-per-node 2 -m gemkit train --method dpo`` with --batch-size 1 logs the same
    losses and gradient norms as ``gemkit train --method dpo --batch-size 2`` in one process (2 steps,
    LoRA r=4 without dropout, whose random masks would differ between one and two processes)."""
    config = tmp_path / "dpo.yaml"
    config.write_text("# gemkit train -c dpo.yaml\nlora: {r: 4, alpha: 8, dropout: 0.0}\n")
    common = ["--method", "dpo", "--model", "random:tiny", "--device", "cpu", "--steps", "2", "--lr", "1e-3",
              "-c", str(config), "--quiet", "--seed", "0"]
    _assert_same_rows(*_single_and_torchrun(tmp_path, common))


#: what ``accelerate launch --config_file configs/accelerate/fsdp.yaml`` exports to each process
FSDP_ENV = {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2", "FSDP_AUTO_WRAP_POLICY": "TRANSFORMER_BASED_WRAP",
            "FSDP_STATE_DICT_TYPE": "FULL_STATE_DICT", "FSDP_RESHARD_AFTER_FORWARD": "true"}


def _fsdp_worker(rank, world, port, out, lora_r):
    _join(rank, world, port)
    os.environ.update(FSDP_ENV)
    _train(_config(out, batch_size=2, lora=LoraSpec(r=lora_r, alpha=8, dropout=0.0,
                                                    target_modules=["q_proj", "v_proj"])))
    torch.distributed.destroy_process_group()


@pytest.mark.parametrize("lora_r", [4, 0], ids=["lora", "full"])
def test_fsdp2_on_two_cpu_processes_matches_single_process(tmp_path, lora_r):
    """FSDP2 (``fully_shard`` per decoder layer, gloo) on 2 ranks with batch 2 each: the same losses
    and gradient norms as one process with batch 4, and the gathered final checkpoint loads.

    accelerate 1.15 would silently run plain DDP here (it ignores its FSDP config on CPU);
    gemkit.train.parallel switches the FSDP plugin on itself. Checked it can fail: without that
    switch the run is DDP and ``config.json`` records MULTI_CPU, which the last assert catches.
    """
    lora = LoraSpec(r=lora_r, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"])
    single = _train(_config(tmp_path / "single", batch_size=4, lora=lora))
    mp.spawn(_fsdp_worker, args=(2, _free_port(), tmp_path / "fsdp", lora_r), nprocs=2, join=True)
    # Full fine-tuning's norm also sums the sharded embedding/LM-head gradient across ranks: seen 3.4e-5
    # relative at step 2 (3.0062 against 3.0063) while that step's loss agreed to every printed digit.
    _assert_same_rows(list(read_jsonl(single.log_path)), list(read_jsonl(tmp_path / "fsdp" / "train_log.jsonl")),
                      norm_rtol=1e-4)
    from gemkit.train import load_trained

    reloaded = load_trained(tmp_path / "fsdp" / "checkpoint", device="cpu")
    expected = load_trained(single.checkpoint, device="cpu")
    for (name, a), (_, b) in zip(reloaded.model.named_parameters(), expected.model.named_parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-5), name
    launch = json.loads((tmp_path / "fsdp" / "config.json").read_text())["launch"]
    assert launch == {"world_size": 2, "distributed_type": "FSDP", "mixed_precision": "no"}


def test_fsdp2_torchrun_dpo_full_finetune_with_frozen_reference(tmp_path):
    """``torchrun --nproc-per-node 2`` with the FSDP settings, DPO with full fine-tuning (``--lora-r 0``):
    the frozen reference copy is sharded like the policy, and the 2 steps at batch 1 per rank log the
    same losses, rewards and gradient norms as one process at batch 2.

    Step 1's loss is log 2 = 0.6931 on both (policy = reference, so every reward is 0); step 2's
    rewards β·(log π − log π_ref) are non-zero and only agree if each rank's reference forward sees the
    same weights the single process's does. Checked it can fail: with the reference prepared through
    ``accelerator.prepare_model(..., evaluation_mode=True)`` (the earlier code) both ranks exit 1 in
    ``clip_grad_norm_`` ("got mixed torch.Tensor and DTensor"), so ``check=True`` raises.
    """
    common = ["--method", "dpo", "--model", "random:tiny", "--device", "cpu", "--steps", "2", "--lr", "1e-3",
              "--lora-r", "0", "--quiet", "--seed", "0"]
    single, sharded = _single_and_torchrun(tmp_path, common, FSDP_ENV)
    _assert_same_rows(single, sharded, norm_rtol=1e-4)
    assert abs(single[0]["loss"] - 0.6931472) < 1e-6
    assert single[1]["rewards/chosen"] != 0.0
    assert abs(single[1]["rewards/chosen"] - sharded[1]["rewards/chosen"]) < 1e-5
    launch = json.loads((tmp_path / "multi" / "config.json").read_text())["launch"]
    assert launch["distributed_type"] == "FSDP"


def _reference_shard_worker(rank, world, port, out):
    _join(rank, world, port)
    os.environ.update(FSDP_ENV)
    from torch.distributed.tensor import DTensor

    from gemkit.train.parallel import TokenCount, frozen_reference, make_accelerator

    accelerator = make_accelerator(_config(out, batch_size=1, lora=LoraSpec(r=0)))
    model = load_model(ModelSpec(name="random:tiny", device="cpu", seed=0)).model
    full = sum(p.numel() for p in model.parameters())
    frozen_reference(accelerator, model, TokenCount())
    params = list(model.parameters())
    local = sum(p.to_local().numel() for p in params if isinstance(p, DTensor))
    (out / f"rank{rank}.json").write_text(json.dumps({"all_dtensor": all(isinstance(p, DTensor) for p in params),
                                                      "frozen": not any(p.requires_grad for p in params),
                                                      "local": local, "full": full}))
    torch.distributed.destroy_process_group()


def test_fsdp2_frozen_reference_is_sharded_across_ranks(tmp_path):
    """Under FSDP2 each of 2 ranks holds about half of the frozen reference: every parameter is a
    DTensor and the two local shards add up to the full parameter count (dim-0 sharding splits each
    tensor into ⌈n/2⌉ + ⌊n/2⌋ rows, so the sum is exact). Checked it can fail: with the reference
    passed through ``accelerator.prepare_model(..., evaluation_mode=True)`` (the earlier code) the
    parameters stay plain tensors and ``all_dtensor`` is False."""
    mp.spawn(_reference_shard_worker, args=(2, _free_port(), tmp_path), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert all(r["all_dtensor"] and r["frozen"] for r in ranks)
    assert ranks[0]["local"] + ranks[1]["local"] == ranks[0]["full"]
    assert all(r["local"] < r["full"] for r in ranks)


def _lora(r):
    return LoraSpec(r=r, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"])


def _fsdp_resume_worker(rank, world, port, out, lora_r):
    _join(rank, world, port)
    os.environ.update(FSDP_ENV)
    _crash_and_resume(_config(out, batch_size=2, max_steps=6, save_every=2, lora=_lora(lora_r)))


@pytest.mark.parametrize("lora_r", [0, 4], ids=["full", "lora"])
def test_fsdp2_resume_matches_uninterrupted_single_process_run(tmp_path, lora_r):
    """FSDP2 on 2 ranks (batch 2 each) crashes at step 5 with its sharded state saved at step 4,
    resumes on 2 ranks → the 6 rows and the final weights of an unbroken single process on batch 4.

    Full fine-tuning (``lora_r=0``) is the case sharding is for: each rank saves and reloads only its
    shard of every weight and AdamW moment (OUT/resume/dcp). Step 5's loss and gradient need only the
    restored weights; step 6's loss also needs step 5's update, m̂/(√v̂+ε), to use the saved moments
    and step count rather than fresh ones. Checked it can fail: with ``restore_sharded`` restoring the
    weights only (``set_model_state_dict`` in place of ``set_state_dict``, so the moments start from
    zero) the full variant fails at step 6's loss, 8.583 against 8.970.
    """
    single = _train(_config(tmp_path / "single", batch_size=4, max_steps=6, save_every=2, lora=_lora(lora_r)))
    mp.spawn(_fsdp_resume_worker, args=(2, _free_port(), tmp_path / "fsdp", lora_r), nprocs=2, join=True)
    resumed = list(read_jsonl(tmp_path / "fsdp" / "train_log.jsonl"))
    assert [r["step"] for r in resumed] == list(range(1, 7))
    _assert_same_rows(list(read_jsonl(single.log_path)), resumed, norm_rtol=1e-4)
    state = tmp_path / "fsdp" / "resume"
    assert (state / "dcp" / ".metadata").is_file() and len(list((state / "dcp").glob("*.distcp"))) == 2
    from gemkit.train import load_trained

    reloaded = load_trained(tmp_path / "fsdp" / "checkpoint", device="cpu")
    expected = load_trained(single.checkpoint, device="cpu")
    for (name, a), (_, b) in zip(reloaded.model.named_parameters(), expected.model.named_parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-5), name


def _fsdp_resume_refused_worker(rank, world, port, out, resume):
    """Train 2 steps saving after step 1, or (``resume``) try to resume; a ConfigError goes to a file."""
    _join(rank, world, port)
    os.environ.update(FSDP_ENV)
    try:
        _train(_config(out, batch_size=2, max_steps=2, save_every=1, lora=_lora(0)), resume=resume)
    except ConfigError as exc:
        (out / f"refused{rank}.txt").write_text(str(exc))
    torch.distributed.destroy_process_group()


def test_fsdp2_resume_under_another_launch_is_refused(tmp_path):
    """A 2-rank FSDP2 state (saved after step 1 of 2) resumed by 3 FSDP2 ranks, or by one process,
    stops with a ConfigError naming both launches, before anything loads or the log is touched.

    DCP could reshard the weights and moments to 3 ranks, but the per-rank RNG streams and batch
    slices could not continue, so the resumed run would equal no unbroken run. Checked it can fail:
    with the world-size comparison dropped from ``check_launch``, DCP reshards the weights and
    moments onto 3 ranks without complaint and rank 2 then dies with an IndexError (no saved RNG
    state for it) instead of the message, so ``mp.spawn`` raises.
    """
    out = tmp_path / "run"
    out.mkdir()
    mp.spawn(_fsdp_resume_refused_worker, args=(2, _free_port(), out, False), nprocs=2, join=True)
    assert not list(out.glob("refused*.txt")) and (out / "resume" / "dcp").is_dir()
    log = (out / "train_log.jsonl").read_text()
    mp.spawn(_fsdp_resume_refused_worker, args=(3, _free_port(), out, True), nprocs=3, join=True)
    messages = [(out / f"refused{rank}.txt").read_text() for rank in range(3)]
    assert all("saved by 2 processes" in m and "this run is FSDP2 on 3 processes" in m for m in messages)
    with pytest.raises(ConfigError, match="saved by 2 processes, but this run is an unsharded run on 1 process"):
        _train(_config(out, batch_size=4, max_steps=2, save_every=1), resume=True)
    assert (out / "train_log.jsonl").read_text() == log


def _accelerate_deepspeed(stage: int, precision: str = "no") -> list[str]:
    """``accelerate launch`` with the shipped DeepSpeed config on 2 CPU processes at ``stage``, in
    float32 (or DeepSpeed's ``precision``: bf16 weights and activations, fp32 master weights)."""
    config = Path(__file__).parent.parent / "configs" / "accelerate" / "deepspeed-zero3.yaml"
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config), "--num_processes", "2",
            "--mixed_precision", precision, "--zero_stage", str(stage), "--main_process_port", str(_free_port())]


#: DeepSpeed's own accelerator detection would also land on CPU here, but says so with a warning
DEEPSPEED_ENV = {"DS_ACCELERATOR": "cpu"}


# ZeRO-2 full fine-tuning without accumulation and ZeRO-3 LoRA ran too (equal rows); the accumulating
# case covers the first, and SEGA's LoRA under ZeRO-3 against DDP and the LoRA resume cover the second
@pytest.mark.parametrize(("stage", "lora_r", "extra"), [(2, 0, ["--grad-accum", "2"]), (3, 0, [])],
                         ids=["zero2-accumulate", "zero3-full"])
def test_deepspeed_dpo_on_two_cpu_processes_matches_single_process(tmp_path, stage, lora_r, extra):
    """``accelerate launch --config_file configs/accelerate/deepspeed-zero3.yaml --zero_stage S`` on 2
    CPU processes (gloo), DPO at batch 1 per rank: the same 2 steps' losses, rewards and gradient norms
    as ``gemkit train --method dpo --batch-size 2`` in one process (also with 2 accumulated
    micro-batches, which DeepSpeed counts itself), and the gathered checkpoint loads with the single
    run's weights.

    Full fine-tuning keeps a frozen reference copy; step 2's rewards β·(log π − log π_ref) are
    non-zero and agree only if that copy holds the real weights on every rank. Checked it can fail:
    without ``_deepspeed_on_cpu`` the run is plain DDP and ``config.json`` records MULTI_CPU; without
    ``whole_model_load`` zero3-full stops with ``frozen_reference``'s ConfigError (the policy is built
    partitioned and its copy holds empty tensors; before that check the copy's forward failed with
    "Padding_idx must be within num_embeddings"); with DeepSpeed's
    accumulation left at 1 instead of ``--grad-accum``, zero2-accumulate's step 1 loss is 0.69595
    against log 2 = 0.69315 (DeepSpeed stepped after the first micro-batch).
    """
    pytest.importorskip("deepspeed")
    config = tmp_path / "dpo.yaml"
    config.write_text("# gemkit train -c dpo.yaml\nlora: {r: 4, alpha: 8, dropout: 0.0}\n")
    common = ["--method", "dpo", "--model", "random:tiny", "--device", "cpu", "--steps", "2", "--lr", "1e-3",
              "-c", str(config), "--lora-r", str(lora_r), "--quiet", "--seed", "0", *extra]
    single, sharded = _single_and_torchrun(tmp_path, common, DEEPSPEED_ENV, _accelerate_deepspeed(stage))
    # DeepSpeed sums each gradient in its own buckets and partitions: seen 3.4e-6 relative at step 1
    _assert_same_rows(single, sharded, norm_rtol=1e-4)
    assert single[1]["rewards/chosen"] != 0.0
    assert abs(single[1]["rewards/chosen"] - sharded[1]["rewards/chosen"]) < 1e-5
    launch = json.loads((tmp_path / "multi" / "config.json").read_text())["launch"]
    assert launch == {"world_size": 2, "distributed_type": "DEEPSPEED", "mixed_precision": "no"}
    from gemkit.train import load_trained

    reloaded = load_trained(tmp_path / "multi" / "checkpoint", device="cpu")
    expected = load_trained(tmp_path / "single" / "checkpoint", device="cpu")
    for (name, a), (_, b) in zip(reloaded.model.named_parameters(), expected.model.named_parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-5), name


def _deepspeed_reference_worker(rank, world, port, out):
    """What ``_setup`` does for a full fine-tuning reference under ZeRO-3, with the variables
    ``accelerate launch`` exports for the shipped DeepSpeed config at stage 3 in float32."""
    _join(rank, world, port)
    os.environ.update(DEEPSPEED_ENV, ACCELERATE_USE_DEEPSPEED="true", ACCELERATE_DEEPSPEED_ZERO_STAGE="3",
                      ACCELERATE_DEEPSPEED_ZERO3_INIT="false", ACCELERATE_MIXED_PRECISION="no")
    from gemkit.train.parallel import TokenCount, frozen_reference, make_accelerator, whole_model_load

    accelerator = make_accelerator(_config(out, batch_size=1, grad_accum=2, lora=LoraSpec(r=0)))
    with whole_model_load(accelerator):
        model = load_model(ModelSpec(name="random:tiny", device="cpu", seed=0)).model
    ids = torch.tensor([[5, 17, 300, 4000, 42, 9]])
    with torch.no_grad():
        whole_logits = model(input_ids=ids).logits
    full = sum(p.numel() for p in model.parameters())
    reference = frozen_reference(accelerator, model, TokenCount())
    params = list(model.parameters())
    partitioned = all(hasattr(p, "ds_tensor") for p in params)
    local = sum(p.ds_tensor.numel() for p in params) if partitioned else full
    held = sum(p.data.numel() for p in params)  # whole tensors present on this rank, outside a forward
    with torch.no_grad():
        logits = reference(input_ids=ids).logits
    (out / f"rank{rank}.json").write_text(json.dumps({
        "partitioned": partitioned, "frozen": not any(p.requires_grad for p in params), "local": local,
        "held": held, "full": full, "largest": max(p.ds_numel if partitioned else p.numel() for p in params),
        "logit_error": (logits - whole_logits).abs().max().item()}))
    torch.distributed.destroy_process_group()


def test_deepspeed_zero3_frozen_reference_is_partitioned_across_ranks(tmp_path):
    """Under ZeRO-3 each of 2 ranks keeps half of the frozen reference, and a forward through it
    still computes the whole model's logits.

    ``frozen_reference`` gives the copy its own DeepSpeed engine: every parameter gets a ZeRO-3
    partition (``ds_tensor``) of ⌈n/2⌉ elements and its whole tensor is released, so no rank holds a
    whole weight outside a forward; the two ranks' partitions add up to the full count plus at most
    one padding element per parameter of odd size. The logits of the partitioned reference equal
    those of the whole model before partitioning, so the engine's hooks gather the real weights.
    The run's micro-batch 1 and accumulation 2 on 2 ranks give train_batch_size 4, which DeepSpeed
    asserts. Checked it can fail: with the DeepSpeed branch of ``frozen_reference`` dropped (the
    earlier code, the copy whole on every rank) ``partitioned`` is False and ``local`` equals the full
    count; with ``train_batch_size`` left as accelerate holds it ("auto"), DeepSpeed's batch check
    raises TypeError ("'>' not supported between 'str' and 'int'") on both ranks and ``mp.spawn`` raises.
    """
    pytest.importorskip("deepspeed")
    mp.spawn(_deepspeed_reference_worker, args=(2, _free_port(), tmp_path), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    full = ranks[0]["full"]
    assert all(r["partitioned"] and r["frozen"] for r in ranks)
    assert all(r["local"] < full for r in ranks) and all(r["held"] == 0 for r in ranks)
    assert full <= ranks[0]["local"] + ranks[1]["local"] <= full + len(list(load_model(
        ModelSpec(name="random:tiny", device="cpu", seed=0)).model.parameters()))
    assert ranks[0]["largest"] > 3_000_000  # the embedding, 49,152 × 64, is among the partitioned weights
    assert all(r["logit_error"] < 1e-5 for r in ranks)


def test_deepspeed_zero3_init_flag_with_a_frozen_reference_is_refused(tmp_path):
    """``--zero3_init_flag true`` builds the policy already partitioned (``deepspeed.zero.Init``), and
    a copy of a partitioned model cannot serve as the full fine-tuning reference: DPO with
    ``--lora-r 0`` stops before step 1 with a message saying to set ``zero3_init_flag: false``.

    Checked it can fail: with the check in ``frozen_reference`` dropped, the copy's parameters are
    the empty tensors a partitioned parameter holds outside a forward (``Parameter.__deepcopy__``
    copies the data, not the partition), its engine partitions those, and step 1's reference forward
    dies in DeepSpeed ("AssertionError: {... 'status': 'NOT_AVAILABLE', 'numel': 0 ...}") with a
    traceback and no "Error:" line.
    """
    pytest.importorskip("deepspeed")
    common = ["--method", "dpo", "--model", "random:tiny", "--device", "cpu", "--steps", "1", "--lora-r", "0",
              "--batch-size", "1", "--quiet", "--seed", "0", "--out", str(tmp_path / "run")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", **DEEPSPEED_ENV}
    done = subprocess.run([*_accelerate_deepspeed(3), "--zero3_init_flag", "true", "-m", "gemkit", "train", *common],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "Error: full fine-tuning with a frozen reference under DeepSpeed ZeRO-3" in done.stderr
    assert "Set zero3_init_flag: false in the accelerate config" in done.stderr
    assert not (tmp_path / "run" / "train_log.jsonl").exists()


def test_deepspeed_zero3_sega_samples_like_ddp(tmp_path):
    """SEGA (k=2, 6 new tokens, LoRA r=4) for 2 steps under ZeRO-3 on 2 CPU processes samples what the
    same 2 ranks sample under DDP: step 1's loss and gradient norm agree, so every rank generated from
    the whole policy. (One process on batch 2 would draw other samples: each rank has its own RNG
    stream, so DDP, which the tests above equate with one process, is the reference here.)

    Step 2 only has to run: the entropy scores of a random model differ in their 5th digit, and
    their spread (advantage std ~7e-5) magnifies that fp32 summation noise to 1e-3 of the gradient
    norm. Checked it can fail: without ``PolicyHandle.whole_weights`` rank 0 exits 1 while merging
    LoRA into a partitioned weight ("size of tensor a (0) must match ... b (64)").
    """
    pytest.importorskip("deepspeed")
    common = ["--method", "sega", "--model", "random:tiny", "--device", "cpu", "--steps", "2", "--lr", "1e-2",
              "--lora-r", "4", "--set", "k=2", "--set", "max_new_tokens=6", "--scorer", "entropy",
              "--train", "builtin:arithmetic?n=4", "--batch-size", "1", "--quiet", "--seed", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", **DEEPSPEED_ENV}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
                str(_free_port())]
    for name, launcher in (("zero3", _accelerate_deepspeed(3)), ("ddp", torchrun)):
        subprocess.run([*launcher, "-m", "gemkit", "train", *common, "--out", str(tmp_path / name)], check=True,
                       env=env, timeout=300)
    zero3, ddp = (list(read_jsonl(tmp_path / name / "train_log.jsonl")) for name in ("zero3", "ddp"))
    assert [r["step"] for r in zero3] == [1, 2]
    assert zero3[0]["advantage_std"] > 0
    _assert_same_rows(ddp[:1], zero3[:1], tolerance=1e-7, norm_rtol=1e-4)
    assert zero3[1]["grad_norm"] > 0 and math.isfinite(zero3[1]["loss"])
    launch = json.loads((tmp_path / "zero3" / "config.json").read_text())["launch"]
    assert launch["distributed_type"] == "DEEPSPEED"
    from gemkit.train import load_trained

    load_trained(tmp_path / "zero3" / "checkpoint", device="cpu")


def test_rm_ppo_under_fsdp2_and_zero3_saves_a_whole_trained_value_head(tmp_path):
    """rm-ppo (LoRA r=4, k=2, 6 new tokens, 1 step) on 2 CPU processes under FSDP2, and under ZeRO-3
    with ``zero3_init_flag: true``: both runs finish and their checkpoints hold the value head
    whole (plain 1×64 and 1 tensors, not shards) and trained (it starts at zero).

    The value head is one of the trained modules, sharded with the policy; the engine gathers it and
    hands its whole weights to ``save_extra``. The reward model is loaded in the objective's setup,
    outside any DeepSpeed engine, so it must be built whole even where the flag builds the policy
    partitioned. Checked it can fail: with ppo's ``save_extra`` writing its own
    ``value_head.state_dict()`` again, the FSDP2 file holds DTensor shards; with the objective's setup
    outside ``whole_model_load(policy=False)``, the ZeRO-3 run exits 1 in the reward model's forward
    ("Padding_idx must be within num_embeddings").
    """
    pytest.importorskip("deepspeed")
    from gemkit.builtin.ppo import VALUE_HEAD_FILE

    env = {**os.environ, "OMP_NUM_THREADS": "1", **DEEPSPEED_ENV}
    common = ["--model", "random:tiny", "--device", "cpu", "--lr", "1e-3", "--quiet", "--seed", "0"]
    subprocess.run([sys.executable, "-m", "gemkit", "train", "--method", "rm", *common, "--steps", "1",
                    "--lora-r", "0", "--out", str(tmp_path / "rm")], check=True, env=env, timeout=300)
    ppo = ["--method", "rm-ppo", *common, "--steps", "1", "--lora-r", "4", "--batch-size", "1",
           "--set", f"reward_model={tmp_path / 'rm' / 'checkpoint'}", "--set", "k=2", "--set", "max_new_tokens=6",
           "--train", "builtin:arithmetic?n=4"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
                str(_free_port())]
    zero3 = [*_accelerate_deepspeed(3), "--zero3_init_flag", "true"]
    for name, launcher, extra_env in (("fsdp2", torchrun, FSDP_ENV), ("zero3", zero3, {})):
        subprocess.run([*launcher, "-m", "gemkit", "train", *ppo, "--out", str(tmp_path / name)], check=True,
                       env={**env, **extra_env}, timeout=300)
        head = torch.load(tmp_path / name / "checkpoint" / VALUE_HEAD_FILE, weights_only=True)
        assert all(type(tensor) is torch.Tensor for tensor in head.values()), name
        assert head["weight"].shape == (1, 64) and head["bias"].shape == (1,), name
        assert float(head["weight"].abs().sum()) > 0 and bool(torch.isfinite(head["weight"]).all()), name


@pytest.mark.parametrize(("stage", "lora_r", "precision"), [(3, 0, "no"), (3, 4, "no"), (2, 0, "bf16")],
                         ids=["zero3-full", "zero3-lora", "zero2-full-bf16"])
def test_deepspeed_resume_matches_uninterrupted_run(tmp_path, stage, lora_r, precision):
    """DPO under DeepSpeed ZeRO-S on 2 CPU processes, 3 steps with a resumable state after step 2:
    a second launch given only that state (``OUT/resume``) and the log up to step 2, as a crash in
    step 3 leaves them, resumes with ``--resume`` and logs step 3 and saves final weights exactly as
    the unbroken run did.

    In bf16 the frozen reference computes in bf16 like the policy (its own DeepSpeed engine), so
    step 1's rewards β·(log π − log π_ref) are exactly 0 and its loss log 2. Checked it can fail:
    with the ZeRO-2 reference left as a plain fp32 copy, step 1's rewards/chosen is 0.00116.

    Each rank writes its own ZeRO partition of the fp32 master weights and AdamW moments through
    ``DeepSpeedEngine.save_checkpoint`` (OUT/resume/deepspeed/state/, one optimiser file per rank).
    Step 3's loss needs the restored weights; the final weights also need step 3's update to use the
    saved moments. LoRA leaves the frozen base out of the state. Checked it can fail: with the
    DeepSpeed load skipped, both cases log step 3's loss as log 2 (the untrained policy) instead of
    0.7000 and 0.6947; with ``load_optimizer_states=False`` (fresh moments), zero2-lora's final LoRA
    weights differ and zero3-full exits 1 (DeepSpeed then looks for a consolidated checkpoint).
    Without the rank-0 check in ``gemkit.cli.train.run`` both ranks print the summary.
    """
    pytest.importorskip("deepspeed")
    config = tmp_path / "dpo.yaml"
    config.write_text("lora: {r: 4, alpha: 8, dropout: 0.0}\n")
    common = ["--method", "dpo", "--model", "random:tiny", "--device", "cpu", "--steps", "3", "--lr", "1e-3",
              "-c", str(config), "--lora-r", str(lora_r), "--quiet", "--seed", "0", "--batch-size", "1",
              "--save-every", "2"]
    launch = _accelerate_deepspeed(stage, precision)
    env = {**os.environ, "OMP_NUM_THREADS": "1", **DEEPSPEED_ENV}
    unbroken, resumed = tmp_path / "unbroken", tmp_path / "resumed"
    subprocess.run([*launch, "-m", "gemkit", "train", *common, "--out", str(unbroken)], check=True, env=env,
                   timeout=300)
    state = unbroken / "resume"
    assert torch.load(state / "trainer_state.pt", weights_only=True)["step"] == 2
    assert len(list((state / "deepspeed" / "state").glob("*optim_states.pt"))) == 2
    resumed.mkdir()
    shutil.copytree(state, resumed / "resume")
    rows = list(read_jsonl(unbroken / "train_log.jsonl"))
    assert rows[0]["rewards/chosen"] == 0.0 and abs(rows[0]["loss"] - math.log(2)) < 1e-6
    launched = json.loads((unbroken / "config.json").read_text())["launch"]
    assert launched == {"world_size": 2, "distributed_type": "DEEPSPEED", "mixed_precision": precision}
    (resumed / "train_log.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows[:2]))
    report = subprocess.run([*launch, "-m", "gemkit", "train", *common, "--resume", "--out", str(resumed)],
                            check=True, env=env, timeout=300, stdout=subprocess.PIPE, text=True)
    assert report.stdout.count("dpo: done after 3 steps") == 1  # rank 0 alone reports
    _assert_same_rows(rows, list(read_jsonl(resumed / "train_log.jsonl")), tolerance=1e-6, norm_rtol=1e-6)
    from gemkit.train import load_trained

    reloaded = load_trained(resumed / "checkpoint", device="cpu")
    expected = load_trained(unbroken / "checkpoint", device="cpu")
    for (name, a), (_, b) in zip(reloaded.model.named_parameters(), expected.model.named_parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name


def test_deepspeed_settings_that_differ_from_gemkit_are_refused(tmp_path):
    """DeepSpeed accumulates and clips inside its own step, so its settings come from gemkit's:
    ``auto`` ones are filled in (micro-batch 3, accumulation 2, clipping 0.5), and an accelerate config
    that sets accumulation 1 against gemkit's 2 is refused naming both values. Checked it can fail:
    with the clash check dropped, accumulation 1 is silently overwritten and no error is raised."""
    pytest.importorskip("deepspeed")
    from accelerate.utils import DeepSpeedPlugin

    from gemkit.train.parallel import _fill_deepspeed_config

    config = _config(tmp_path, batch_size=3, grad_accum=2, max_grad_norm=0.5)
    plugin = DeepSpeedPlugin(zero_stage=2, gradient_accumulation_steps="auto", gradient_clipping="auto")
    _fill_deepspeed_config(plugin, config)
    assert {k: plugin.deepspeed_config[k] for k in ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps",
                                                    "gradient_clipping")} == {
        "train_micro_batch_size_per_gpu": 3, "gradient_accumulation_steps": 2, "gradient_clipping": 0.5}
    plugin = DeepSpeedPlugin(zero_stage=2, gradient_accumulation_steps=1, gradient_clipping=0.5)
    with pytest.raises(ConfigError, match="gradient_accumulation_steps: 1 in the accelerate config, 2 in gemkit's"):
        _fill_deepspeed_config(plugin, config)
