"""Reference log-probs computed once and cached on disk, so full fine-tuning needs no frozen copy.

Reference-based objectives (the DPO family, KTO) need log π_ref of every sequence a step builds.
Under full fine-tuning the engine would otherwise keep a frozen copy of the initial weights (twice
the memory). With a cache the objective computes log π_ref of those sequences before the first
step, while the policy still *is* the reference, and looks each row up by its tokens afterwards.

Which sequences: DPO's rows depend on the record alone, so the training set in chunks covers them
(:func:`open_reference_cache`). KTO's mismatched KL rows pair a prompt with another example's
response *from the same micro-batch*, so they depend on how the engine's shuffled data order
groups records; :func:`planned_micro_batches` replays that order (same seed, ``batch_size``,
``grad_accum``, ``max_steps``, rank and world size) and the objective caches every row those
micro-batches build (:func:`cache_sequences`). That is as many reference forwards as a frozen copy
would run during training, done up front. A lookup that misses (a row no planned step builds)
raises rather than guessing, so a cached value is always log π_ref of exactly the row asked for.

Entries are keyed by (model hash, sequence hash): the model hash covers the reference weights
(LoRA adapter weights excluded, since the reference is the adapter-disabled base), the sequence
hash the exact token ids and where the response starts (so chat template, system prompt and
truncation are part of the key). One file per (data hash, model hash), the data hash covering the
set of cached sequences::

    DIR/<model_hash>/<data_hash>.pt    {"keys": [...], "sums": [n], "lengths": [n]}
"""
from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gemkit.data.encoding import SequenceBatch
from gemkit.data.records import PreferencePair
from gemkit.errors import TrainingError
from gemkit.logprobs import response_logprobs
from gemkit.train.state import DataOrder


@dataclass
class SequenceLogps:
    """Summed response log-probs and response lengths, ``[b]`` each."""

    sums: torch.Tensor
    lengths: torch.Tensor

    def mean(self) -> torch.Tensor:
        return self.sums / self.lengths.clamp_min(1.0)


def model_hash(model: Any) -> str:
    """SHA-256 (first 16 hex digits) over the names, shapes, dtypes and bytes of the reference weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        if "lora_" in name:
            continue
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{tuple(data.shape)}:{data.dtype}".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()[:16]


def sequence_keys(batch: SequenceBatch) -> list[str]:
    """One key per row: the hash of its real tokens and its response start (padding-independent)."""
    keys = []
    for ids, attention, response in zip(batch.input_ids.cpu(), batch.attention_mask.cpu(), batch.response_mask.cpu(), strict=False):
        real = attention.bool()
        tokens, resp = ids[real], response[real]
        start = int(resp.float().argmax()) if resp.any() else len(tokens)
        payload = f"{start}:" + ",".join(map(str, tokens.tolist()))
        keys.append(hashlib.sha256(payload.encode()).hexdigest()[:24])
    return keys


class ReferenceCache:
    """log π_ref sums and lengths for a fixed set of sequences under one reference model."""

    def __init__(self, directory: str | Path, reference_hash: str) -> None:
        self.directory = Path(directory) / reference_hash
        self.reference_hash = reference_hash
        self.entries: dict[str, tuple[float, float]] = {}
        self.path: Path | None = None

    def build(self, model: Any, batches: Iterable[SequenceBatch]) -> Path:
        """Load the file for these sequences, or compute every entry with ``model`` and write it.

        ``model`` must be the reference at the time of the call (before any training step); LoRA
        adapters are disabled for the pass.
        """
        batches = list(batches)
        keys = [key for batch in batches for key in sequence_keys(batch)]
        data_hash = hashlib.sha256("\n".join(sorted(set(keys))).encode()).hexdigest()[:16]
        self.path = self.directory / f"{data_hash}.pt"
        if self.path.is_file():
            stored = torch.load(self.path, map_location="cpu", weights_only=True)
            self.entries = dict(zip(stored["keys"], zip(stored["sums"].tolist(), stored["lengths"].tolist(), strict=False), strict=False))
            return self.path
        disabled = model.disable_adapter() if hasattr(model, "disable_adapter") else contextlib.nullcontext()
        with torch.no_grad(), disabled:
            for batch in batches:
                scores = response_logprobs(model, batch)
                for key, total, length in zip(sequence_keys(batch), scores.sum().tolist(), scores.lengths.tolist(), strict=False):
                    self.entries[key] = (total, length)
        ordered = sorted(self.entries)
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        torch.save({"keys": ordered, "sums": torch.tensor([self.entries[k][0] for k in ordered], dtype=torch.float64),
                    "lengths": torch.tensor([self.entries[k][1] for k in ordered], dtype=torch.float64)}, tmp)
        tmp.replace(self.path)
        return self.path

    def lookup(self, batch: SequenceBatch) -> SequenceLogps:
        """Cached log π_ref of every row of ``batch`` (on the batch's device)."""
        keys = sequence_keys(batch)
        missing = [k for k in keys if k not in self.entries]
        if missing:
            raise TrainingError(f"{len(missing)} of {len(keys)} sequences are not in the reference cache "
                                f"{self.path}; the cache was built for a different training set or settings")
        sums = torch.tensor([self.entries[k][0] for k in keys], dtype=torch.float32, device=batch.input_ids.device)
        lengths = torch.tensor([self.entries[k][1] for k in keys], dtype=torch.float32, device=batch.input_ids.device)
        return SequenceLogps(sums, lengths)


def open_reference_cache(ctx: Any, directory: str | Path, encode_records: Any) -> ReferenceCache:
    """Build (or load) the cache for rows that depend on their record alone (DPO's chosen/rejected).

    ``encode_records(records) -> SequenceBatch`` is the objective's own encoding (e.g.
    ``ctx.encode_pairs``), applied to the training set in chunks of ``batch_size`` records.
    """
    records = ctx.records
    if not records:
        raise TrainingError("the reference cache needs the training records (ctx.records is empty)")
    size = ctx.config.batch_size
    return cache_sequences(ctx, directory, [encode_records(records[i:i + size]) for i in range(0, len(records), size)])


def cache_sequences(ctx: Any, directory: str | Path, batches: list[SequenceBatch]) -> ReferenceCache:
    """Build (or load) the cache holding log π_ref of every row of ``batches`` under ``ctx.model``."""
    cache = ReferenceCache(directory, model_hash(ctx.model))
    cache.build(ctx.model, batches)
    return cache


def planned_micro_batches(ctx: Any) -> list[list[PreferencePair]]:
    """The micro-batches this process's training steps will draw, in order, before any is drawn.

    The engine draws ``grad_accum`` micro-batches per step with ``DataOrder.take(batch_size, rank,
    world_size)`` from ``DataOrder(len(records), seed)``; replaying it for ``max_steps`` steps covers
    every micro-batch of the run, also a resumed one (the order continues from its saved position)
    and one with skipped steps (a skip draws fewer micro-batches, never different ones: every draw
    takes the next ``batch_size · world_size`` records).
    """
    records, config = ctx.records, ctx.config
    if not records:
        raise TrainingError("the reference cache needs the training records (ctx.records is empty)")
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    rank, world = (torch.distributed.get_rank(), torch.distributed.get_world_size()) if distributed else (0, 1)
    order = DataOrder(len(records), config.seed)
    return [[records[i] for i in order.take(config.batch_size, rank, world)]
            for _ in range(config.max_steps * config.grad_accum)]


def reference_sequence_logps(ctx: Any, batch: SequenceBatch, cache: ReferenceCache | None) -> SequenceLogps:
    """log π_ref of each row: from the cache when there is one, else one reference forward."""
    if cache is not None:
        return cache.lookup(batch)
    scores = ctx.reference_logprobs(batch)
    return SequenceLogps(scores.sum().detach(), scores.lengths.float())
