"""Planning the bench grid: its config, the cells (base, SFT, method × shots × seed) and their content hashes.

A cell id ends with a hash of its config, the training-data fingerprint and the code version, so
``--resume`` skips exactly the cells that finished with the same inputs. The SFT model is a cell per
(shots, seed), shared by every other cell of that (shots, seed) (``baseline_cell``, part of its hash).
Objectives and benchmarks declare what they need (``bench_steps``, ``bench_options``,
``trained_dependency``, ``compares_with_sft``); this module names none of them.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from gemkit.components import component_problems
from gemkit.data.records import PreferencePair
from gemkit.errors import ConfigError, GemkitError
from gemkit.generation import check_generator
from gemkit.registry import registry
from gemkit.runner.devices import parse_devices
from gemkit.runner.manifest import code_version

#: steps and records per step unless the objective declares its own (``bench_steps``,
#: ``bench_batch_size`` on :class:`gemkit.train.Objective`): 24 steps of 4 records, 1.5 passes over the
#: 64 default pairs. Sized so the embedded default finishes in under 15 minutes on an idle 2-core CPU
#: and a label-trained method moves the held-out columns (docs/metrics.md, "The default task").
DEFAULT_STEPS = 24
DEFAULT_BATCH = 4
WORK = ".work"
SFT = "sft"


def objective_class(method: str) -> Any:
    return registry("objective").get(method).cls


def trained_dependency(config: BenchConfig, method: str) -> tuple[str, str] | None:
    """(option, objective) when ``method``'s cell first trains another objective (rm-ppo without a
    ``reward_model``: an ``rm``) on the same pairs; None otherwise."""
    dependency = getattr(objective_class(method), "trained_dependency", None)
    if dependency and not config.method_options.get(method, {}).get(dependency[0]):
        return dependency
    return None


@dataclass
class BenchConfig:
    methods: list[str] = field(default_factory=lambda: ["sega", "dpo"], metadata={"help": "Objectives to compare."})
    benchmarks: list[str] = field(default_factory=lambda: ["arithmetic", "arithmetic-pref", "scorer-diagnostics"],
                                  metadata={"help": "Benchmark plugins to evaluate every model on."})
    model: str = field(default="smollm2-135m", metadata={"help": "Base model for every method."})
    train: str = field(default="builtin:arithmetic?level=1", metadata={
        "help": "Training pairs: a file or builtin:arithmetic[?level=1|2] (default: the one-step level, docs/metrics.md)."})
    shots: list[int] = field(default_factory=lambda: [64], metadata={"help": "Training-set sizes (pairs)."})
    seeds: list[int] = field(default_factory=lambda: [0], metadata={"help": "Seeds; one cell per seed."})
    out: str = field(default="runs/bench", metadata={"help": "Run directory."})
    steps: int | None = field(default=None, metadata={"help": "Optimiser steps per method (default: 32; sega 12)."})
    batch_size: int | None = field(default=None, metadata={"help": "Pairs (or prompts) per step (default 4; sega 2)."})
    lr: float = field(default=1e-3, metadata={"help": "Peak learning rate for every method."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank (0: full fine-tuning)."})
    max_length: int = field(default=384, metadata={"help": "Max prompt+response tokens."})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda, cuda:N."})
    limit: int | None = field(default=None, metadata={"help": "Items per benchmark (default: each benchmark's own)."})
    eval_batch_size: int = field(default=48, metadata={
        "help": "Items per evaluation batch (on a 2-core CPU 32 generates twice as fast as 8, 48 about 10 % faster than 32)."})
    generator: str = field(default="hf", metadata={
        "help": "Engine of the generative benchmarks in every cell: hf (transformers) or vllm (pip install "
                "gemkit[vllm]). Training objectives choose theirs in method_options (generator=vllm)."})
    scorer: str | None = field(default=None, metadata={"help": "Scorer for sega (default entropy)."})
    include_base: bool = field(default=True, metadata={"help": "Also evaluate the untrained base model."})
    include_sft: bool = field(default=True, metadata={
        "help": "Also train sft on the chosen responses once per (shots, seed) and evaluate it as its own row "
                "(implied when sft is a method or a benchmark's baseline is sft). On by default: the row that "
                "shows what plain supervised training on the same labels does."})
    devices: list[str | int] = field(default_factory=list, metadata={
        "help": "Run independent cells in parallel on a local Ray session, one cell at a time per entry: CUDA "
                "indices (0,1) or cpu (may repeat). Empty: one cell at a time on --device."})
    ray_address: str | None = field(default=None, metadata={
        "help": "Run the cells as tasks on an existing Ray cluster (e.g. auto or ray://head:10001); the run "
                "directory must be on storage every node mounts at the same path."})
    cell_cpus: int = field(default=1, metadata={
        "help": "With ray_address on a cluster without GPUs: CPUs (and torch threads) each cell asks for."})
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict,
                                                      metadata={"help": "Objective options per method."})
    benchmark_options: dict[str, dict[str, Any]] = field(default_factory=dict,
                                                         metadata={"help": "Options per benchmark."})

    def validate(self) -> None:
        """Resolve every name and option before any model loads; report all problems at once."""
        problems = []
        if not self.methods:
            problems.append("no methods given; e.g. --methods sega,dpo")
        for name in self.methods:  # an option the cell fills in itself (rm-ppo's reward_model) may be missing
            try:
                options = self._method_options(name)
            except GemkitError as exc:  # an unknown method name, with its did-you-mean
                problems.append(str(exc))
                continue
            problems += component_problems("objective", name, options,
                                           lambda p, name=name: bool((dependency := trained_dependency(self, name))
                                                                     and f"needs {dependency[0]}" in p))
        for name in self.benchmarks:
            try:
                registry("benchmark").get(name).make_config(self._benchmark_options(name))
            except GemkitError as exc:
                problems.append(str(exc))
        # Options for a component this run does not select are fine (a shared YAML narrowed by a
        # flag), but a key that names no component at all is a typo.
        for key, kind, options in (("method_options", "objective", self.method_options),
                                   ("benchmark_options", "benchmark", self.benchmark_options)):
            for name in options:
                try:
                    registry(kind).get(name)
                except GemkitError as exc:
                    problems.append(f"{key}: {exc}")
        if not self.shots or any(s < 1 for s in self.shots):
            problems.append(f"shots must be >= 1, got {self.shots}")
        if not self.seeds:
            problems.append("seeds must name at least one seed, e.g. [1, 2, 3]")
        if self.eval_batch_size < 1:
            problems.append(f"eval_batch_size must be >= 1, got {self.eval_batch_size}")
        if self.steps is not None and self.steps < 1:
            problems.append(f"steps must be >= 1, got {self.steps}")
        if self.devices:
            try:
                parse_devices(self.devices)
            except ConfigError as exc:
                problems += exc.problems
            if self.device != "auto":
                problems.append(f"devices {self.devices} and device {self.device!r} both given: devices places "
                                "every worker itself; drop device (or set it to auto)")
            if self.ray_address:
                problems.append(f"devices {self.devices} and ray_address {self.ray_address!r} both given: devices "
                                "starts a local Ray session, the cluster places cells itself; drop one")
        try:
            check_generator(self.generator)
        except GemkitError as exc:  # unknown engine, or vllm not installed
            problems.append(str(exc))
        if self.cell_cpus < 1:
            problems.append(f"cell_cpus must be >= 1, got {self.cell_cpus}")
        if problems:
            raise ConfigError(problems)

    def _method_options(self, method: str) -> dict[str, Any]:
        cls = objective_class(method)
        options = {**getattr(cls, "bench_options", {}), **self.method_options.get(method, {})}
        scorer_option = getattr(cls, "scorer_option", None)
        if self.scorer and scorer_option:
            options[scorer_option] = self.scorer
        return options

    def _benchmark_options(self, name: str) -> dict[str, Any]:
        options = dict(self.benchmark_options.get(name, {}))
        if self.limit is not None:
            options["limit"] = self.limit
        if getattr(registry("benchmark").get(name).cls, "compares_with_sft", False):
            options.setdefault("baseline", SFT)
        return options

    def sft_baseline_benchmarks(self) -> list[str]:
        """Benchmarks compared against the SFT model of the same (shots, seed)."""
        return [name for name in self.benchmarks if self._benchmark_options(name).get("baseline") == SFT]

    def needs_sft(self) -> bool:
        return SFT in self.methods or self.include_sft or bool(self.sft_baseline_benchmarks())


@dataclass
class Cell:
    method: str
    shots: int
    seed: int
    config: dict[str, Any]

    @property
    def baseline_cell(self) -> str | None:
        """The SFT cell whose checkpoint this cell's mt-bench compares against (None: no such benchmark)."""
        return self.config.get("baseline_cell")

    @property
    def cell_id(self) -> str:
        """Readable prefix plus a content hash of everything that determines the cell's result."""
        digest = hashlib.sha256(json.dumps(self.config, sort_keys=True, default=str).encode()).hexdigest()
        return f"{self.method}-s{self.shots}-seed{self.seed}-{digest[:10]}"


def data_fingerprint(pairs: list[PreferencePair]) -> str:
    h = hashlib.sha256()
    for pair in pairs:
        h.update(json.dumps([pair.id, pair.prompt, pair.chosen, pair.rejected], default=str).encode())
    return h.hexdigest()[:16]


def plan_cells(config: BenchConfig, fingerprint: str) -> list[Cell]:
    """The base cell (shared by every method), the SFT cells (when needed), then method × shots × seed.

    The SFT cells come first so that, run in order, each is finished before the cells that
    compare against it.
    """
    shared = {"model": config.model, "benchmarks": {b: config._benchmark_options(b) for b in config.benchmarks},
              "code": code_version(), "max_length": config.max_length, "generator": config.generator}
    cells = []
    if config.include_base:  # untrained: its result does not depend on the training data
        cells.append(Cell("base", 0, 0, {**shared, "method": "base"}))

    def trained(method: str, shots: int, seed: int, extra: dict[str, Any]) -> Cell:
        return Cell(method, shots, seed, {
            **shared, "data": fingerprint, "method": method, "shots": shots, "seed": seed,
            "steps": config.steps or getattr(objective_class(method), "bench_steps", None) or DEFAULT_STEPS,
            "batch_size": config.batch_size or getattr(objective_class(method), "bench_batch_size", None) or DEFAULT_BATCH,
            "lr": config.lr,
            "lora_r": config.lora_r, "options": config._method_options(method), **extra})

    sft_cells = {}
    if config.needs_sft():
        for shots in config.shots:
            for seed in config.seeds:
                sft_cells[shots, seed] = trained(SFT, shots, seed, {})
        cells += sft_cells.values()
    compares_with_sft = bool(config.sft_baseline_benchmarks())
    for method in config.methods:
        if method == SFT:
            continue
        for shots in config.shots:
            for seed in config.seeds:
                extra = {"baseline_cell": sft_cells[shots, seed].cell_id} if compares_with_sft else {}
                cells.append(trained(method, shots, seed, extra))
    return cells
