"""The one training engine behind every method (SEGA, SFT, the DPO family, KTO, RM, PPO, GRPO).

Same data order, tokenisation, optimiser (AdamW), warm-up + decay schedule, clipping, precision,
gradient accumulation, logging and checkpointing for all; only ``objective.compute_loss`` differs,
so method comparisons are fair. Devices, DDP/FSDP/DeepSpeed, mixed precision and accumulation come
from ``accelerate`` (:mod:`gemkit.train.parallel`). Resumable state (``save_every``, ``--resume``) is
one process's (:mod:`gemkit.train.state`) on one process or DDP and each rank's shards under FSDP2
and DeepSpeed (:mod:`gemkit.train.sharded_state`); FSDP1 refuses it.

:func:`train` reads as the recipe: set up, resume or start, then step, log and checkpoint until
``max_steps`` (or Ctrl-C), then save the final model.
"""
from __future__ import annotations

import copy
import math
import random
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, DistributedType

from gemkit.data.lengths import LengthReport, check_lengths
from gemkit.data.records import PreferencePair
from gemkit.errors import ConfigError, TrainingError
from gemkit.io import atomic_write_json
from gemkit.models import ModelBundle, ModelSpec, count_parameters, load_model
from gemkit.registry import registry
from gemkit.threads import adapt_threads, thread_record
from gemkit.train.checkpoint import config_to_dict, load_trainer_state, recover_dir, save_model
from gemkit.train.config import TrainConfig
from gemkit.train.log import TrainLog
from gemkit.train.objective import LossOutput, Objective, StepContext
from gemkit.train.parallel import (
    PolicyHandle,
    TokenCount,
    TrainedModules,
    any_rank,
    frozen_reference,
    is_sharded,
    make_accelerator,
    mean_over_ranks,
    whole_model_load,
)
from gemkit.train.sharded_state import (
    check_launch,
    restore_sharded,
    resume_layout,
    save_sharded_resumable,
)
from gemkit.train.state import DataOrder, Progress, restore, save_resumable
from gemkit.train.throughput import device_peak_flops, throughput_row

__all__ = ["TrainResult", "build_objective", "lr_lambda", "precision_hint", "train"]


@dataclass
class TrainResult:
    out: Path
    checkpoint: Path
    log_path: Path
    steps: int
    skipped_batches: int
    last_metrics: dict[str, float]
    wall_s: float
    interrupted: bool = False
    truncated_records: int = 0


@dataclass
class _Run:
    """Everything one run holds, built once by :func:`_setup`."""

    config: TrainConfig
    pairs: list[PreferencePair]
    out: Path
    accelerator: Accelerator
    bundle: ModelBundle
    objective: Objective
    ctx: StepContext
    prepared: Any  # the accelerate-wrapped TrainedModules (DDP/FSDP), or the module itself
    params: list[torch.nn.Parameter]
    optimizer: Any
    scheduler: Any
    order: DataOrder
    lengths: LengthReport
    tokens: TokenCount
    parameters: tuple[int, int]  # (total, trainable) of the policy, for the FLOP count
    peak_flops: float | None
    meta: dict[str, Any]
    progress: Progress

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process


def lr_lambda(config: TrainConfig) -> Callable[[int], float]:
    """Linear warm-up over ``warmup_ratio · max_steps`` steps, then cosine/linear decay to 0 or constant."""
    warmup = int(config.warmup_ratio * config.max_steps)

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if config.schedule == "constant":
            return 1.0
        progress = (step - warmup) / max(1, config.max_steps - warmup)
        if config.schedule == "linear":
            return max(0.0, 1.0 - progress)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def build_objective(config: TrainConfig) -> Objective:
    return registry("objective").get(config.method).build(config.objective)


def train(config: TrainConfig, pairs: list[PreferencePair], *, bundle: ModelBundle | None = None,
          objective: Objective | None = None, resume: bool = False, progress: bool = True,
          data_source: str = "<training data>") -> TrainResult:
    """Train ``config.method`` on ``pairs`` and save a loadable checkpoint under ``config.out``.

    Nothing is written before the data passed :func:`~gemkit.data.lengths.check_lengths`
    (``data_source`` names the file in its messages); the records whose prompt is cut to fit
    ``max_length`` are counted in ``TrainResult.truncated_records`` and ``config.json``.
    """
    run = _setup(config, pairs, bundle, objective or build_objective(config), data_source, resume)
    if resume:
        _resume(run)
    _write_run_config(run, data_source)
    log = TrainLog(run.out, is_main=run.is_main, log_every=config.log_every, max_steps=config.max_steps,
                   start_step=run.progress.step, tensorboard=config.tensorboard, progress=progress,
                   desc=f"train {config.method}")
    log.begin(run.progress.step)
    started = time.perf_counter()
    row: dict[str, float] = {}
    with _stop_on_sigint() as stop:
        try:
            run.prepared.train()
            while run.progress.step < config.max_steps and not stop["flag"]:
                row = _train_step(run)
                log.write(row, always="loss" not in row)
                if config.save_every and run.progress.step % config.save_every == 0 \
                        and run.progress.step < config.max_steps:
                    _save_resume_point(run)
        finally:
            log.close()
    if stop["flag"]:
        _save_resume_point(run)
    checkpoint = _save_final(run)
    total, trainable = run.parameters
    # A Ctrl-C during the last step changes nothing: the run is complete.
    return TrainResult(run.out, checkpoint, log.path, run.progress.step, run.progress.skipped,
                       {**row, "parameters": total, "trainable_parameters": trainable},
                       time.perf_counter() - started, interrupted=stop["flag"] and run.progress.step < config.max_steps,
                       truncated_records=len(run.lengths.truncated))


# -- setup --------------------------------------------------------------------------------------
def _setup(config: TrainConfig, pairs: list[PreferencePair], bundle: ModelBundle | None, objective: Objective,
           data_source: str, resume: bool) -> _Run:
    """Accelerator, model, length check, reference, objective, optimiser: everything before step 1."""
    if not pairs:
        raise ConfigError("no training records: the training set is empty")
    accelerator = make_accelerator(config)
    _refuse_what_the_launch_cannot_do(config, accelerator, resume)
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    if bundle is None:
        device = config.device if config.device == "auto" and accelerator.num_processes == 1 else str(accelerator.device)
        with whole_model_load(accelerator):
            bundle = load_model(ModelSpec(name=config.model, device=device, dtype=config.dtype,
                                          task=objective.model_task, seed=config.seed), lora=config.lora)
    model = bundle.model
    lengths = check_lengths(pairs, bundle.tokenizer, config.max_length, policy=config.truncation,
                            system=config.system_prompt, source=data_source,
                            responses=tuple(getattr(objective, "trained_responses", ("chosen", "rejected"))))
    if lengths.truncated and accelerator.is_main_process:
        print(f"note: {len(lengths.truncated)} of {len(pairs)} records exceed max_length={config.max_length}; "
              f"their prompts are cut from the left (truncation=left-prompt)", flush=True)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    if config.gradient_checkpointing:
        _enable_gradient_checkpointing(model)
    tokens = TokenCount()
    reference = copy.deepcopy(model) if objective.needs_reference and not hasattr(model, "disable_adapter") else None
    ctx = StepContext(model=PolicyHandle(model, model, accelerator, tokens), tokenizer=bundle.tokenizer,
                      config=config, device=bundle.device, records=pairs)
    if reference is not None:
        ctx._frozen_reference = frozen_reference(accelerator, reference, tokens)
    with whole_model_load(accelerator, policy=False):  # a model the objective loads (rm-ppo's reward model)
        objective.setup(ctx)
    ctx.truncated_sequences = 0  # count training steps only, not a reference cache built in setup
    modules = TrainedModules(model, objective.trainable_modules())
    if not any(p.requires_grad for p in modules.parameters()):
        raise ConfigError("the model has no trainable parameters; check the LoRA target modules or use lora.r=0")
    optimizer = torch.optim.AdamW([p for p in modules.parameters() if p.requires_grad], lr=config.lr,
                                  weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(config))
    prepared, optimizer = accelerator.prepare(modules, optimizer)
    # Calls now go through the wrapper (gradient sync, sharding, autocast); attributes stay the model's.
    object.__setattr__(ctx.model, "_call", prepared)
    params = [p for p in prepared.parameters() if p.requires_grad]
    compute_dtype = torch.bfloat16 if accelerator.mixed_precision in ("bf16", "fp16") else params[0].dtype
    return _Run(config, pairs, out, accelerator, bundle, objective, ctx, prepared, params, optimizer, scheduler,
                DataOrder(len(pairs), config.seed), lengths, tokens, count_parameters(model),
                device_peak_flops(bundle.device, compute_dtype), _model_meta(config, bundle, objective), Progress())


def _refuse_what_the_launch_cannot_do(config: TrainConfig, accelerator: Accelerator, resume: bool) -> None:
    """Settings this launch would silently get wrong, refused before the model loads.

    - FSDP1 has no resumable sharded state (:mod:`gemkit.train.sharded_state` covers FSDP2 and DeepSpeed).
    - Under DeepSpeed each backward moves its gradients into DeepSpeed's own buffers, which only its
      step empties: a batch skipped after some of its micro-batches (``nan_policy=skip`` with
      ``grad_accum`` > 1) would leave their gradients in the next update.
    """
    if is_sharded(accelerator) and resume_layout(accelerator) is None and (resume or config.save_every):
        raise ConfigError("resumable checkpoints (save_every, --resume) under FSDP need FSDP2 (fsdp_version: 2, as in "
                          "configs/accelerate/fsdp.yaml), but this run is FSDP1: set save_every=0, or train with "
                          "FSDP2, DeepSpeed or DDP (configs/accelerate/)")
    if accelerator.distributed_type == DistributedType.DEEPSPEED and config.nan_policy == "skip" \
            and config.grad_accum > 1:
        raise ConfigError(f"nan_policy=skip with grad_accum={config.grad_accum} under DeepSpeed would carry a skipped "
                          f"batch's earlier micro-batches into the next update (DeepSpeed keeps their gradients in "
                          f"its own buffers): use nan_policy=stop, grad_accum=1, or FSDP2/DDP")


def _enable_gradient_checkpointing(model: Any) -> None:
    if not hasattr(model, "gradient_checkpointing_enable"):
        raise ConfigError(f"gradient_checkpointing: {type(model).__name__} has no gradient_checkpointing_enable(); "
                          f"use a transformers model or set gradient_checkpointing=false")
    # Non-reentrant checkpointing works with frozen inputs (LoRA) and with DDP's gradient hooks.
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def _resume(run: _Run) -> None:
    """Continue from ``OUT/resume`` when it holds a state (a fresh start otherwise).

    Under FSDP2 and DeepSpeed every rank loads its own shards (:mod:`gemkit.train.sharded_state`); otherwise every
    rank loads the one saved state. A state another launch saved is refused before anything loads.
    """
    directory = run.out / "resume"
    if run.is_main:
        recover_dir(directory)  # a kill mid-swap leaves the previous state aside
    run.accelerator.wait_for_everyone()
    state = load_trainer_state(directory)
    if state is None:
        return
    check_launch(state, directory, run.accelerator)
    if resume_layout(run.accelerator) is not None:
        run.progress = restore_sharded(state, directory, run.accelerator, run.prepared, run.optimizer, run.scheduler,
                                       run.order, run.objective)
    else:
        run.progress = restore(state, run.bundle.model, run.optimizer, run.scheduler, run.order, run.objective)
    run.ctx.truncated_sequences = run.progress.truncated_sequences


def _write_run_config(run: _Run, data_source: str) -> None:
    if run.is_main:
        atomic_write_json(run.out / "config.json", {
            "train": config_to_dict(run.config), "objective": config_to_dict(run.objective.config), "model": run.meta,
            "data": {"source": data_source, **run.lengths.to_dict()}, "threads": thread_record(),
            "launch": {"world_size": run.accelerator.num_processes,
                       "distributed_type": str(run.accelerator.distributed_type).split(".")[-1],
                       "mixed_precision": run.accelerator.mixed_precision}})


# -- one optimiser step ---------------------------------------------------------------------------
def _train_step(run: _Run) -> dict[str, float]:
    """Accumulate ``grad_accum`` micro-batches, clip, update; the step's log row (or a skip row)."""
    run.ctx.step = run.progress.step
    adapt_threads()  # load may have come or gone since the last step (gemkit.threads)
    started = time.perf_counter()
    run.accelerator.step = 0  # accelerate counts micro-batches; a skipped step must not shift the count
    outputs, batch_ids, bad = _accumulate(run)
    grad_norm = float("nan")
    if bad is None:
        norm = run.accelerator.clip_grad_norm_(run.params, run.config.max_grad_norm or float("inf"))
        # DeepSpeed clips inside its own step (gradient_clipping in its config) and returns no norm.
        grad_norm = float(norm) if norm is not None else float("nan")
        if norm is not None and not math.isfinite(grad_norm):
            bad = f"non-finite gradient norm ({grad_norm})"
    if bad is not None:
        return _skip_batch(run, bad, batch_ids)
    lr = run.scheduler.get_last_lr()[0]
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    run.progress.step += 1
    return _step_row(run, outputs, grad_norm, lr, time.perf_counter() - started)


def _accumulate(run: _Run) -> tuple[list[LossOutput], list[str], str | None]:
    """Forward and backward each micro-batch of this rank; stop early if any rank's loss is not finite."""
    outputs: list[LossOutput] = []
    batch_ids: list[str] = []
    rank, world = run.accelerator.process_index, run.accelerator.num_processes
    for _ in range(run.config.grad_accum):
        batch = [run.pairs[i] for i in run.order.take(run.config.batch_size, rank, world)]
        batch_ids += [p.id for p in batch]
        # accumulate(): DDP skips the all-reduce until the last micro-batch; backward() divides by grad_accum.
        with run.accelerator.accumulate(run.prepared):
            output = run.objective.compute_loss(run.ctx, batch)
            if any_rank(not bool(torch.isfinite(output.loss)), run.accelerator):
                return outputs, batch_ids, f"non-finite loss ({output.loss.item()})"
            run.accelerator.backward(output.loss)
        outputs.append(output)
    return outputs, batch_ids, None


def _skip_batch(run: _Run, bad: str, batch_ids: list[str]) -> dict[str, float]:
    """nan_policy: stop naming the step, batch and last good checkpoint, or count the skip and go on."""
    for param in run.params:
        param.grad = None
    run.tokens.take()
    run.progress.skipped += 1
    if run.config.nan_policy == "stop" or run.progress.skipped > run.config.max_skipped:
        last_good = run.out / "resume" if (run.out / "resume").exists() else None
        raise TrainingError(
            f"{bad} at step {run.progress.step + 1} (batch ids: {', '.join(batch_ids[:16])}); "
            f"last good checkpoint: {last_good or 'none (set save_every to keep one)'}. "
            f"{precision_hint(run.bundle.model)}"
            f"Lower lr, check the data, or use nan_policy=skip to skip such batches.")
    run.progress.step += 1
    return {"step": run.progress.step, "skipped_batches": run.progress.skipped}


def _step_row(run: _Run, outputs: list[LossOutput], grad_norm: float, lr: float, seconds: float) -> dict[str, float]:
    """Loss and objective metrics (mean over micro-batches, then ranks) and this step's throughput."""
    row = {"loss": sum(float(o.loss.detach()) for o in outputs) / len(outputs)}
    for key in outputs[0].metrics:
        row[key] = sum(o.metrics.get(key, 0.0) for o in outputs) / len(outputs)
    trained, no_grad = run.tokens.take()
    total, trainable = run.parameters
    row.update(throughput_row(tokens=sum(o.num_tokens for o in outputs), trained_tokens=trained,
                              no_grad_tokens=no_grad, seconds=seconds, total_params=total, trainable_params=trainable,
                              peak_flops=run.peak_flops, device=run.ctx.device))
    row = mean_over_ranks(row, run.accelerator)
    row["tokens_per_s"] *= run.accelerator.num_processes  # every rank's tokens: the run's throughput
    return {"step": run.progress.step, **row, "grad_norm": grad_norm, "lr": lr, "step_time_s": seconds,
            "skipped_batches": run.progress.skipped, "truncated_sequences": run.ctx.truncated_sequences}


# -- checkpoints ----------------------------------------------------------------------------------
def _save_resume_point(run: _Run) -> None:
    """``OUT/resume``: under FSDP2 and DeepSpeed every rank writes its shards; otherwise the main process writes it all."""
    run.progress.truncated_sequences = run.ctx.truncated_sequences
    if resume_layout(run.accelerator) is not None:
        save_sharded_resumable(run.out, run.accelerator, run.prepared, run.optimizer, run.scheduler, run.order,
                               run.objective, run.progress, run.meta)
        return
    if run.is_main:
        save_resumable(run.out, run.bundle.model, run.bundle.tokenizer, run.meta, run.optimizer, run.scheduler,
                       run.order, run.objective, run.progress)
    run.accelerator.wait_for_everyone()


def _save_final(run: _Run) -> Path:
    checkpoint = run.out / "checkpoint"
    full = _gathered_weights(run)
    if run.is_main:
        policy = extras = None
        if full is not None:
            policy = _prefixed(full, "policy.")
            extras = [_prefixed(full, f"extras.{index}.") for index in range(len(run.objective.trainable_modules()))]
        save_model(run.bundle.model, run.bundle.tokenizer, checkpoint, meta=run.meta, objective=run.objective,
                   state_dict=policy, extras=extras)
    run.accelerator.wait_for_everyone()
    return checkpoint


def _gathered_weights(run: _Run) -> dict[str, torch.Tensor] | None:
    """Sharded runs: the full weights of the trained modules (``policy.*``, ``extras.N.*``), gathered
    from every rank (a collective: all ranks call it; the main process gets the tensors). Unsharded
    runs: None, the modules save their own."""
    if not is_sharded(run.accelerator):
        return None
    return run.accelerator.get_state_dict(run.prepared) or {}  # ZeRO-3 gives the other ranks None


def _prefixed(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {key.removeprefix(prefix): value for key, value in state.items() if key.startswith(prefix)}


#: why each half-precision format turns large values into inf/NaN, for the overflow message
_HALF_PRECISION = {torch.float16: "float16 overflows above 65504",
                   torch.bfloat16: "bfloat16 keeps only 8 bits of mantissa, so large sums lose precision"}


def precision_hint(model: torch.nn.Module) -> str:
    """For a model holding half-precision weights, the likely cause of a non-finite value; "" otherwise.

    Attention scores, squared norms and unscaled losses are what overflow first; float32 (or a
    lower learning rate, which keeps activations small) is the fix to try.
    """
    half = [dtype for dtype in _HALF_PRECISION if any(p.dtype == dtype for p in model.parameters())]
    if not half:
        return ""
    name = str(half[0]).removeprefix("torch.")
    return (f"The model computes in {name}: this is most likely a {name} precision overflow "
            f"({_HALF_PRECISION[half[0]]}); train in float32 (--dtype float32) or lower lr. ")


def _model_meta(config: TrainConfig, bundle: ModelBundle, objective: Objective) -> dict[str, Any]:
    return {"base_model": config.model, "base_seed": config.seed, "method": config.method, "task": objective.model_task,
            "lora": config_to_dict(config.lora) if config.lora.r > 0 else None, "source": bundle.source}


@contextmanager
def _stop_on_sigint() -> Iterator[dict[str, bool]]:
    """First Ctrl-C: finish this step, save a resume point, stop. Second: abort."""
    stop = {"flag": False}

    def handler(signum: int, frame: Any) -> None:
        if stop["flag"]:
            raise KeyboardInterrupt
        stop["flag"] = True
        print("\nInterrupt: finishing this step, saving, then stopping (Ctrl-C again to abort).", flush=True)

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        previous = None
    try:
        yield stop
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
