"""Built-in benchmark ``scorer-diagnostics``: does the self-score track correctness on held-out problems?

For each held-out problem of a benchmark with gold answers (``source``, default the built-in
``arithmetic`` set), sample k candidates and score them exactly as SEGA does
(:func:`gemkit.gem.group.score_groups`: the step-by-step system prompt, one forward, token
entropies, the scorer plugin), check each against the gold answer with the source benchmark's own
check (:mod:`gemkit.evaluation.answer_check`), and report :mod:`gemkit.gem.diagnostics`: AUROC and
point-biserial r of score vs correctness, and best-of-k accuracy by score against random choice
and the oracle (pass@k). The bench runner runs it on every cell like any other benchmark, so the
report shows it for the base model and after each method's training ("Scorer diagnostics").

Cost: limit·k sampled candidates of at most ``max_new_tokens`` tokens and one scoring forward.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

import gemkit
from gemkit.errors import ConfigError
from gemkit.evaluation.answer_check import get_check, get_source
from gemkit.evaluation.context import EvalContext
from gemkit.evaluation.results import BenchmarkResult
from gemkit.gem.diagnostics import best_of_k, diagnose
from gemkit.gem.group import score_groups
from gemkit.generation import SamplingConfig
from gemkit.progress import evaluation_progress, items_bar
from gemkit.registry import registry

KIND = "scorer-diagnostics"  # conventions["kind"]: the report renders outcomes of this kind in their own section


@dataclass
class ScorerDiagnosticsConfig:
    source: str = field(default="arithmetic", metadata={
        "help": "Benchmark whose items (question + gold answer) are used: arithmetic, gsm8k or math."})
    source_options: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "Options of the source benchmark (e.g. data=PATH for gsm8k); limit and seed come from here."})
    limit: int = field(default=16, metadata={"help": "Prompts to sample for."})
    seed: int = field(default=1, metadata={"help": "Seed of the prompt set and of the sampling."})
    k: int = field(default=4, metadata={"help": "Candidates per prompt."})
    max_new_tokens: int = field(default=48, metadata={
        "help": "Most tokens per candidate (48: as SEGA's bench default; level-1 answers are short)."})
    temperature: float = field(default=0.9, metadata={"help": "Sampling temperature (SEGA's default)."})
    top_p: float = field(default=0.95, metadata={"help": "Nucleus sampling mass (SEGA's default)."})
    scorer: str = field(default="entropy", metadata={"help": "Scorer plugin whose score is diagnosed."})
    scorer_options: dict[str, Any] = field(default_factory=dict, metadata={"help": "Options of the scorer's Config."})
    check: str | None = field(default=None, metadata={
        "help": "Answer check (final-answer, gsm8k, math); default: the source benchmark's own."})

    def __post_init__(self) -> None:
        get_source(self.source)
        if self.check is not None:
            get_check(self.check)
        if self.limit < 1 or self.k < 1:
            raise ConfigError(f"limit and k must be >= 1, got limit={self.limit}, k={self.k}")
        registry("scorer").get(self.scorer).make_config(self.scorer_options)
        SamplingConfig(max_new_tokens=self.max_new_tokens, temperature=self.temperature, top_p=self.top_p)


class ScorerDiagnosticsBenchmark:
    """Score vs correctness of k sampled candidates per held-out problem."""

    name = "scorer-diagnostics"
    description = ("Does the self-score track correctness? k sampled candidates per held-out problem, scored as "
                   "SEGA does, checked against the gold answer: AUROC, point-biserial r, best-of-k by score vs "
                   "random vs oracle.")
    Config = ScorerDiagnosticsConfig

    def __init__(self, config: ScorerDiagnosticsConfig):
        self.config = config
        self.gold = get_source(config.source)
        self.check_name = config.check or self.gold.check
        self.scorer = registry("scorer").get(config.scorer).build(config.scorer_options)

    def load(self) -> list[dict[str, Any]]:
        options = {"limit": self.config.limit, "seed": self.config.seed, **self.config.source_options}
        items = registry("benchmark").get(self.config.source).build(options).load()
        return [{"id": str(it["id"]), "question": it[self.gold.question], "answer": str(it[self.gold.gold])}
                for it in items]

    def evaluate(self, ctx: EvalContext, items: list[dict[str, Any]]) -> BenchmarkResult:
        cfg, check = self.config, get_check(self.check_name)
        sampling = ctx.sampling(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p)
        bundle, rows = ctx.bundle, []
        step = max(1, ctx.batch_size)
        # The same random stream for every model (base and trained cells), whatever the caller's RNG state.
        with torch.random.fork_rng(devices=[]), items_bar(len(items), unit="prompt") as bar:
            torch.manual_seed(cfg.seed)
            for first in range(0, len(items), step):
                chunk = items[first:first + step]
                # This bar counts prompts; the sampler's own per-chunk bar would nest under it.
                with torch.no_grad(), evaluation_progress(self.name, enabled=False):
                    # The identity mapping: the diagnostics read the raw scores, not rewards.
                    group = score_groups(bundle.model, bundle.tokenizer, [it["question"] for it in chunk],
                                         k=cfg.k, sampling=sampling, scorer=self.scorer,
                                         mapping=lambda scores: scores.clone(),
                                         answers=[it["answer"] for it in chunk])
                scores = group.grouped(group.result.scores.float()).tolist()
                texts = group.generation.texts
                for i, item in enumerate(chunk):
                    candidates = texts[i * cfg.k:(i + 1) * cfg.k]
                    rows.append({"id": item["id"], "gold": item["answer"], "scores": scores[i],
                                 "correct_k": [float(check(t, item["answer"])) for t in candidates],
                                 "generations": candidates})
                bar.update(len(chunk))
        for row in rows:
            # No "correct" key: these rows are not items of a paired accuracy test in the results table.
            row.update(best_of_k_by_score=best_of_k(row["scores"], row["correct_k"]), oracle=max(row["correct_k"]),
                       random_choice=sum(row["correct_k"]) / cfg.k)
        found = diagnose([r["scores"] for r in rows], [r["correct_k"] for r in rows], seed=cfg.seed)
        metrics = found.metrics()
        conventions = {"kind": KIND, "source": cfg.source, "check": self.check_name, "scorer": cfg.scorer,
                       "scorer_options": cfg.scorer_options, "k": cfg.k, "max_new_tokens": cfg.max_new_tokens,
                       "temperature": cfg.temperature, "top_p": cfg.top_p, "seed": cfg.seed,
                       "sampling": "as SEGA: step-by-step system prompt, nucleus sampling, one scoring forward",
                       "diagnostics": found.to_dict()}
        return BenchmarkResult(self.name, metrics, "best_of_k_by_score", {k: True for k in metrics}, conventions, rows,
                               {}, {"prompts": found.n_prompts, "candidates": found.n_candidates,
                                    "correct": found.n_correct, "mixed_prompts": found.n_mixed_prompts})


@gemkit.hookimpl
def register_benchmarks(register):
    register(ScorerDiagnosticsBenchmark)
