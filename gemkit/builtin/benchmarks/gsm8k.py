"""GSM8K answer accuracy (``openai/gsm8k``, config ``main``, split ``test``), strict and flexible.

Prompt: ``"Question: {question}\\nAnswer:"`` (lm-eval's gsm8k wording) as the user turn of the
model's chat template, zero-shot, greedy, cut at lm-eval's stop strings. Two engines give the same
generations and use the same extraction (:mod:`gemkit.evaluation.extract`):

- ``gemkit``: gemkit's batched generator;
- ``lm-eval``: lm-evaluation-harness on the in-memory model (``HFLM(pretrained=model)``) with a task
  YAML that ``include:``s lm-eval's own ``gsm8k.yaml`` and points ``data_files`` at the selected
  items (lm-eval's Hub dataset is never touched); lm-eval's own strict/flexible exact match is
  kept in each item row next to ours.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import gemkit
from gemkit.errors import ConfigError
from gemkit.evaluation.context import EvalContext
from gemkit.evaluation.extract import cut_at, gsm8k_flexible, gsm8k_gold, gsm8k_match, gsm8k_strict
from gemkit.evaluation.loading import DataOptions, Source, load_rows, text_field
from gemkit.evaluation.results import BenchmarkResult, mean
from gemkit.generation import SamplingConfig, generate

PROMPT = "Question: {question}\nAnswer:"
STOPS = ["Question:", "</s>", "<|im_end|>"]
TASK = "gemkit_gsm8k_local"


@dataclass
class GSM8KConfig(DataOptions):
    engine: Literal["gemkit", "lm-eval"] = field(default="gemkit", metadata={
        "help": "Generate with gemkit's generator or run lm-evaluation-harness on the in-memory model."})
    max_new_tokens: int = field(default=256, metadata={"help": "Answer length budget (greedy)."})
    final_answer_marker: bool = field(default=True, metadata={
        "help": "Strict extraction also accepts 'Final Answer: N' when there is no '#### N'."})

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")


class GSM8K:
    name = "gsm8k"
    description = "GSM8K test: greedy zero-shot answers, strict (#### N / Final Answer) and flexible (last number)."
    Config = GSM8KConfig
    source = Source("openai/gsm8k", "main", "test", ("question", "answer"))

    def __init__(self, config: GSM8KConfig):
        self.config = config

    def load(self) -> list[dict[str, Any]]:
        where = self.config.data or self.source.hub_id
        return [{"id": f"line-{line}", "question": text_field(row, "question", where, line),
                 "answer": text_field(row, "answer", where, line)} for line, row in load_rows(self.source, self.config)]

    def generations(self, ctx: EvalContext, items: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
        """Raw answers (cut at the stop strings) and, for lm-eval, its own per-item scores."""
        if self.config.engine == "lm-eval":
            return run_lm_eval(ctx, items, self.config.max_new_tokens)
        sampling = SamplingConfig(max_new_tokens=self.config.max_new_tokens, do_sample=False)
        out = generate(ctx.bundle.model, ctx.bundle.tokenizer, [PROMPT.format(question=it["question"]) for it in items],
                       sampling=sampling, batch_size=ctx.batch_size)
        return [cut_at(text, STOPS) for text in out.texts], [{} for _ in items]

    def evaluate(self, ctx: EvalContext, items: list[dict[str, Any]]) -> BenchmarkResult:
        texts, extra = self.generations(ctx, items)
        rows = []
        for item, text, more in zip(items, texts, extra):
            strict = gsm8k_strict(text, final_answer_marker=self.config.final_answer_marker)
            flexible = gsm8k_flexible(text)
            rows.append({"id": item["id"], "correct": float(gsm8k_match(strict, item["answer"])),
                         "correct_flexible": float(gsm8k_match(flexible, item["answer"])), "gold": gsm8k_gold(item["answer"]),
                         "strict": strict, "flexible": flexible, "generation": text, **more})
        metrics = {"exact_match_strict": mean([r["correct"] for r in rows]),
                   "exact_match_flexible": mean([r["correct_flexible"] for r in rows])}
        conventions = {"engine": self.config.engine, "prompt": PROMPT, "num_fewshot": 0, "chat_template": True,
                       "decoding": "greedy", "max_new_tokens": self.config.max_new_tokens, "stop": STOPS,
                       "strict": "first '#### N'" + (", else last 'Final Answer: N'" if self.config.final_answer_marker else ""),
                       "flexible": "last match of (-?[$0-9.,]{2,})|(-?[0-9]+)",
                       "match": "lower-case; ',', '$', text up to '#### ', trailing '.' removed; string equality"}
        return BenchmarkResult(self.name, metrics, "exact_match_strict", {k: True for k in metrics}, conventions, rows,
                               {}, {"scored": len(rows)})


def lm_eval_task_yaml(data_file: Path, max_new_tokens: int) -> str:
    """A task that reuses lm-eval's gsm8k.yaml (prompt, filters, metric) on a local JSONL file."""
    import lm_eval

    base = Path(lm_eval.__file__).parent / "tasks" / "gsm8k" / "gsm8k.yaml"
    if not base.is_file():
        raise ConfigError(f"lm-eval's gsm8k task is not where expected ({base}); update lm-eval or use engine=gemkit")
    return "\n".join([
        f"include: {json.dumps(str(base))}",
        f"task: {TASK}",
        "tag: []",
        "dataset_path: json",
        "dataset_name: null",
        "dataset_kwargs:",
        "  data_files:",
        f"    test: {json.dumps(str(data_file))}",
        "training_split: null",
        "fewshot_split: null",
        "test_split: test",
        "num_fewshot: 0",
        "generation_kwargs:",
        f"  until: {json.dumps(STOPS)}",
        "  do_sample: false",
        "  temperature: 0.0",
        f"  max_gen_toks: {max_new_tokens}",
        "",
    ])


def run_lm_eval(ctx: EvalContext, items: list[dict[str, Any]], max_new_tokens: int
                ) -> tuple[list[str], list[dict[str, Any]]]:
    """Greedy answers from lm-eval's gsm8k task on ``items``, in order, and lm-eval's own scores."""
    try:
        from lm_eval import simple_evaluate
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager
    except ImportError as exc:
        raise ConfigError(f"engine=lm-eval needs lm-evaluation-harness ({exc}); pip install lm-eval") from None
    with tempfile.TemporaryDirectory(prefix="gemkit-lmeval-") as tmp:
        data = Path(tmp) / "test.jsonl"
        data.write_text("".join(json.dumps({"question": it["question"], "answer": it["answer"]}) + "\n"
                                for it in items), encoding="utf-8")
        (Path(tmp) / f"{TASK}.yaml").write_text(lm_eval_task_yaml(data, max_new_tokens), encoding="utf-8")
        model = ctx.bundle.model
        was_training = model.training
        model.eval()
        try:
            lm = HFLM(pretrained=model, tokenizer=ctx.bundle.tokenizer, batch_size=ctx.batch_size,
                      max_length=getattr(model.config, "max_position_embeddings", None))
            out = simple_evaluate(model=lm, tasks=[TASK], task_manager=TaskManager(include_path=tmp),
                                  apply_chat_template=True, log_samples=True, random_seed=ctx.seed,
                                  numpy_random_seed=ctx.seed, torch_random_seed=ctx.seed, fewshot_random_seed=ctx.seed,
                                  bootstrap_iters=0, verbosity="ERROR")
        finally:
            model.train(was_training)
    texts: dict[int, str] = {}
    scores: dict[int, dict[str, Any]] = {}
    for sample in out["samples"][TASK]:
        doc = sample["doc_id"]
        texts[doc] = sample["resps"][0][0]
        scores.setdefault(doc, {})[f"lm_eval_{sample['filter'].replace('-', '_')}"] = {
            "prediction": sample["filtered_resps"][0], "exact_match": float(sample["exact_match"])}
    return [cut_at(texts[i], STOPS) for i in range(len(items))], [scores[i] for i in range(len(items))]


@gemkit.hookimpl
def register_benchmarks(register):
    register(GSM8K)
