"""The one training engine behind every method (SEGA, SFT, the DPO family, KTO, RM, PPO, GRPO).

Same data order, tokenisation, optimiser (AdamW), warm-up + decay schedule, clipping, precision,
gradient accumulation, logging and checkpointing for all; only ``objective.compute_loss`` differs,
so method comparisons are fair.
"""
from __future__ import annotations

import copy
import math
import random
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from gemkit.data.lengths import check_lengths
from gemkit.data.records import PreferencePair
from gemkit.errors import ConfigError, TrainingError
from gemkit.io import append_jsonl, atomic_write_json, read_jsonl, write_jsonl
from gemkit.models import ModelBundle, ModelSpec, count_parameters, load_model
from gemkit.registry import registry
from gemkit.threads import thread_record
from gemkit.train.checkpoint import (
    config_to_dict,
    load_trainer_state,
    recover_dir,
    rng_state,
    save_model,
    set_rng_state,
)
from gemkit.train.config import TrainConfig
from gemkit.train.distributed import DistInfo, any_flag, average_gradients, average_scalar, init_from_env
from gemkit.train.objective import LossOutput, Objective, StepContext


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


class _DataOrder:
    """Seeded shuffles epoch after epoch; its position is part of the resumable state."""

    def __init__(self, n: int, seed: int, epoch: int = 0, position: int = 0):
        self.n, self.seed, self.epoch, self.position = n, seed, epoch, position
        self._order = self._permutation(epoch)

    def _permutation(self, epoch: int) -> list[int]:
        order = list(range(self.n))
        random.Random(self.seed * 100_003 + epoch).shuffle(order)
        return order

    def take(self, count: int, dist_info: DistInfo = DistInfo()) -> list[int]:
        """The next ``count`` records of this rank: its slice of the next ``count · world`` records."""
        indices = self._take_global(count * dist_info.world_size)
        return indices[dist_info.rank * count:(dist_info.rank + 1) * count]

    def _take_global(self, count: int) -> list[int]:
        out = []
        while len(out) < count:
            if self.position >= self.n:
                self.epoch, self.position = self.epoch + 1, 0
                self._order = self._permutation(self.epoch)
            out.append(self._order[self.position])
            self.position += 1
        return out


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


def train(
    config: TrainConfig,
    pairs: list[PreferencePair],
    *,
    bundle: ModelBundle | None = None,
    objective: Objective | None = None,
    resume: bool = False,
    progress: bool = True,
    data_source: str = "<training data>",
) -> TrainResult:
    """Train ``config.method`` on ``pairs`` and save a loadable checkpoint under ``config.out``.

    Nothing is written before the data passed :func:`~gemkit.data.lengths.check_lengths`
    (``data_source`` names the file in its messages); the records whose prompt is cut to fit
    ``max_length`` are counted in ``TrainResult.truncated_records`` and ``config.json``.
    """
    if not pairs:
        raise ConfigError("no training records: the training set is empty")
    objective = objective or build_objective(config)
    out = Path(config.out)
    dist_info = init_from_env("cuda" if config.device.startswith("cuda") else "cpu")
    if dist_info.enabled and config.device.startswith("cuda"):
        config.device = f"cuda:{dist_info.rank % max(1, torch.cuda.device_count())}"
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    if bundle is None:
        spec = ModelSpec(name=config.model, device=config.device, dtype=config.dtype, task=objective.model_task,
                         seed=config.seed)
        bundle = load_model(spec, lora=config.lora)
    model, tokenizer = bundle.model, bundle.tokenizer
    device = bundle.device
    lengths = check_lengths(pairs, tokenizer, config.max_length, policy=config.truncation,
                            system=config.system_prompt, source=data_source,
                            responses=tuple(getattr(objective, "trained_responses", ("chosen", "rejected"))))
    if lengths.truncated and dist_info.is_main:
        print(f"note: {len(lengths.truncated)} of {len(pairs)} records exceed max_length={config.max_length}; "
              f"their prompts are cut from the left (truncation=left-prompt)", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    ctx = StepContext(model=model, tokenizer=tokenizer, config=config, device=device, records=pairs)
    if objective.needs_reference and not hasattr(model, "disable_adapter"):
        ctx._frozen_reference = copy.deepcopy(model).eval().requires_grad_(False)
    objective.setup(ctx)
    ctx.truncated_sequences = 0  # count training steps only, not a reference cache built in setup
    params = [p for p in model.parameters() if p.requires_grad]
    for module in objective.trainable_modules():
        params += [p for p in module.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("the model has no trainable parameters; check the LoRA target modules or use lora.r=0")
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(config))
    order = _DataOrder(len(pairs), config.seed)
    log_path = out / "train_log.jsonl"
    start_step, skipped = 0, 0
    if resume:
        recover_dir(out / "resume")  # a kill mid-swap leaves the previous state aside
    state = load_trainer_state(out / "resume") if resume else None
    if state is not None:
        _restore(state, model, optimizer, scheduler, order, objective, out / "resume")
        start_step, skipped = state["step"], state["skipped"]
        ctx.truncated_sequences = state.get("truncated_sequences", 0)
        # Drop log lines past the checkpoint so a resumed run has no duplicated rows.
        if dist_info.is_main:
            kept = [row for row in read_jsonl(log_path) if row.get("step", 0) <= start_step]
            write_jsonl(log_path, kept)
    elif dist_info.is_main:
        log_path.unlink(missing_ok=True)
    meta = _model_meta(config, bundle, objective)
    if dist_info.is_main:
        atomic_write_json(out / "config.json", {"train": config_to_dict(config), "objective": config_to_dict(objective.config),
                                                "model": meta, "data": {"source": data_source, **lengths.to_dict()},
                                                "threads": thread_record()})
    writer = _tensorboard(out) if config.tensorboard else None
    total, trainable = count_parameters(model)
    stop = {"flag": False}
    previous_handler = _install_sigint(stop)
    started = time.perf_counter()
    metrics: dict[str, float] = {}
    step = start_step
    bar = tqdm(total=config.max_steps, initial=start_step, desc=f"train {config.method}",
               disable=not progress or not dist_info.is_main, dynamic_ncols=True)
    try:
        model.train()
        while step < config.max_steps and not stop["flag"]:
            ctx.step = step
            step_started = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            micro: list[LossOutput] = []
            batch_ids: list[str] = []
            bad = None
            for _ in range(config.grad_accum):
                batch = [pairs[i] for i in order.take(config.batch_size, dist_info)]
                batch_ids += [p.id for p in batch]
                output = objective.compute_loss(ctx, batch)
                if any_flag(not bool(torch.isfinite(output.loss)), dist_info):
                    bad = f"non-finite loss ({output.loss.item()})"
                    break
                (output.loss / config.grad_accum).backward()
                micro.append(output)
            grad_norm = float("nan")
            if bad is None:
                average_gradients(params, dist_info)
                grad_norm = float(torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm or float("inf")))
                if not math.isfinite(grad_norm):
                    bad = f"non-finite gradient norm ({grad_norm})"
            if bad is not None:
                skipped += 1
                optimizer.zero_grad(set_to_none=True)
                last_good = out / "resume" if (out / "resume").exists() else None
                if config.nan_policy == "stop" or skipped > config.max_skipped:
                    raise TrainingError(
                        f"{bad} at step {step + 1} (batch ids: {', '.join(batch_ids[:16])}); "
                        f"last good checkpoint: {last_good or 'none (set save_every to keep one)'}. "
                        f"{precision_hint(model)}"
                        f"Lower lr, check the data, or use nan_policy=skip to skip such batches."
                    )
                metrics = {"step": step + 1, "skipped_batches": skipped}
                if dist_info.is_main:
                    append_jsonl(log_path, metrics)
                step += 1
                bar.update(1)
                continue
            step_lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            step += 1
            elapsed = time.perf_counter() - step_started
            tokens = sum(m.num_tokens for m in micro)
            metrics = {"step": step, "loss": sum(float(m.loss.detach()) for m in micro) / len(micro)}
            for key in micro[0].metrics:
                metrics[key] = sum(m.metrics.get(key, 0.0) for m in micro) / len(micro)
            metrics = {k: (v if k == "step" else average_scalar(v, dist_info)) for k, v in metrics.items()}
            metrics.update({"grad_norm": grad_norm, "lr": step_lr, "tokens_per_s": tokens / elapsed,
                            "step_time_s": elapsed, "skipped_batches": skipped,
                            "truncated_sequences": ctx.truncated_sequences})
            if dist_info.is_main and (step % config.log_every == 0 or step == config.max_steps):
                append_jsonl(log_path, metrics)
                if writer is not None:
                    for key, value in metrics.items():
                        if key != "step":
                            writer.add_scalar(f"train/{key}", value, step)
            bar.set_postfix(loss=f"{metrics['loss']:.4f}")
            bar.update(1)
            if dist_info.is_main and config.save_every and step % config.save_every == 0 and step < config.max_steps:
                _save_resumable(out, model, tokenizer, meta, optimizer, scheduler, order, objective, step, skipped,
                                ctx.truncated_sequences)
    finally:
        bar.close()
        signal.signal(signal.SIGINT, previous_handler)
        if writer is not None:
            writer.close()
    checkpoint = out / "checkpoint"
    if dist_info.is_main:
        if stop["flag"]:
            _save_resumable(out, model, tokenizer, meta, optimizer, scheduler, order, objective, step, skipped,
                            ctx.truncated_sequences)
        save_model(model, tokenizer, checkpoint, meta=meta, objective=objective)
    wall = time.perf_counter() - started
    metrics_summary = {**metrics, "parameters": total, "trainable_parameters": trainable}
    # A Ctrl-C during the last step changes nothing: the run is complete.
    return TrainResult(out, checkpoint, log_path, step, skipped, metrics_summary, wall,
                       interrupted=stop["flag"] and step < config.max_steps,
                       truncated_records=len(lengths.truncated))


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


def _save_resumable(out: Path, model: Any, tokenizer: Any, meta: dict[str, Any], optimizer: Any, scheduler: Any,
                    order: _DataOrder, objective: Objective, step: int, skipped: int,
                    truncated_sequences: int) -> None:
    trainable = {k: v.detach().cpu() for k, v in model.named_parameters() if v.requires_grad}
    state = {"step": step, "skipped": skipped, "truncated_sequences": truncated_sequences, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "order": {"epoch": order.epoch, "position": order.position}, "rng": rng_state(),
             "trainable": trainable, "objective": objective.state_dict()}
    save_model(model, tokenizer, out / "resume", meta={**meta, "step": step}, extra_state=state, objective=objective)


def _restore(state: dict[str, Any], model: Any, optimizer: Any, scheduler: Any, order: _DataOrder,
             objective: Objective, directory: Path) -> None:
    named = dict(model.named_parameters())
    with torch.no_grad():
        for key, value in state["trainable"].items():
            named[key].copy_(value.to(named[key].device))
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    order.epoch, order.position = state["order"]["epoch"], state["order"]["position"]
    order._order = order._permutation(order.epoch)
    objective.load_state_dict(state["objective"])
    set_rng_state(state["rng"])


def _install_sigint(stop: dict[str, bool]) -> Any:
    def handler(signum: int, frame: Any) -> None:
        if stop["flag"]:
            raise KeyboardInterrupt
        stop["flag"] = True
        print("\nInterrupt: finishing this step, saving, then stopping (Ctrl-C again to abort).", flush=True)

    try:
        return signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        return signal.getsignal(signal.SIGINT)


def _tensorboard(out: Path) -> Any:
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(out / "tb"))

