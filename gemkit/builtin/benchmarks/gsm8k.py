"""GSM8K answer accuracy (``openai/gsm8k``, config ``main``, split ``test``), strict and flexible.

Prompt: ``"Question: {question}\\nAnswer:"`` (lm-eval's gsm8k wording) as the user turn of the
model's chat template, greedy, cut at lm-eval's stop strings. Zero-shot by default; with
``num_fewshot=k`` each question follows k solved training questions as earlier chat turns (user
``Question: …\\nAnswer:``, assistant the full worked ``answer`` ending in ``#### N``), drawn from the
``train`` split (or ``fewshot_data``) by :mod:`gemkit.evaluation.fewshot`. Two engines give the same
generations and use the same extraction (:mod:`gemkit.evaluation.extract`):

- ``gemkit``: gemkit's batched generator;
- ``lm-eval``: lm-evaluation-harness on the in-memory model (``HFLM(pretrained=model)``) with a task
  YAML that ``include:``s lm-eval's own ``gsm8k.yaml`` and points ``data_files`` at the selected
  items and the few-shot pool (lm-eval's Hub dataset is never touched), ``num_fewshot`` and
  ``fewshot_random_seed`` passed through; lm-eval's own strict/flexible exact match is kept in
  each item row next to ours, and so is whether lm-eval's rendered prompt equals ours.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import gemkit
from gemkit.data.encoding import render_prompt
from gemkit.errors import ConfigError
from gemkit.evaluation.context import EvalContext
from gemkit.evaluation.extract import (
    cut_at,
    gsm8k_final_answer,
    gsm8k_flexible,
    gsm8k_gold,
    gsm8k_match,
    gsm8k_strict,
)
from gemkit.evaluation.fewshot import FewShotOptions, draw_shots, fewshot_conventions, load_pool, with_shots
from gemkit.evaluation.loading import Source, load_rows, text_field
from gemkit.evaluation.results import BenchmarkResult, mean
from gemkit.generation import generate

PROMPT = "Question: {question}\nAnswer:"
STOPS = ["Question:", "</s>", "<|im_end|>"]
TASK = "gemkit_gsm8k_local"


@dataclass
class GSM8KConfig(FewShotOptions):
    engine: Literal["gemkit", "lm-eval"] = field(default="gemkit", metadata={
        "help": "Generate with gemkit's generator or run lm-evaluation-harness on the in-memory model."})
    max_new_tokens: int = field(default=256, metadata={"help": "Answer length budget (greedy)."})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")


class GSM8K:
    name = "gsm8k"
    description = "GSM8K test: greedy answers (0- or k-shot), lm-eval strict (#### N), flexible, and #### / Final Answer."
    Config = GSM8KConfig
    source = Source("openai/gsm8k", "main", "test", ("question", "answer"))
    fewshot_source = Source("openai/gsm8k", "main", "train", ("question", "answer"))

    def __init__(self, config: GSM8KConfig):
        self.config = config
        self.fewshot_pool: list[dict[str, str]] = []
        self.fewshot_where = ""

    def load(self) -> list[dict[str, Any]]:
        """The selected test items, each with its drawn shots (``fewshot_lines`` index the pool from 1)."""
        where = self.config.data or self.source.hub_id
        items = [{"id": f"line-{line}", "question": text_field(row, "question", where, line),
                  "answer": text_field(row, "answer", where, line)} for line, row in load_rows(self.source, self.config)]
        if self.config.num_fewshot:
            self.fewshot_where, rows = load_pool(self.fewshot_source, self.config)
            self.fewshot_pool = [{"question": text_field(row, "question", self.fewshot_where, line),
                                  "answer": text_field(row, "answer", self.fewshot_where, line)}
                                 for line, row in enumerate(rows, 1)]
        draws = draw_shots(len(self.fewshot_pool), [None] * len(items), self.config.num_fewshot, self.config.seed,
                           self.fewshot_where)
        for item, drawn in zip(items, draws, strict=False):
            item["fewshot_lines"] = [j + 1 for j in drawn]
            item["shots"] = [(PROMPT.format(question=self.fewshot_pool[j]["question"]), self.fewshot_pool[j]["answer"])
                             for j in drawn]
        return items

    def prompt(self, item: dict[str, Any]) -> str | list[dict[str, str]]:
        return with_shots(item["shots"], PROMPT.format(question=item["question"]))

    def generations(self, ctx: EvalContext, items: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
        """Raw answers (cut at the stop strings) and, for lm-eval, its own per-item scores and whether
        the prompt it built equals ours."""
        if self.config.engine == "lm-eval":
            if ctx.generator != "hf":
                raise ConfigError(f"engine=lm-eval generates with lm-eval's own transformers model, so "
                                  f"generator={ctx.generator} would not apply; use engine=gemkit with "
                                  f"generator={ctx.generator}, or generator=hf with engine=lm-eval")
            if self.config.num_fewshot and not self.fewshot_pool:
                raise RuntimeError("GSM8K.evaluate with engine=lm-eval needs the few-shot pool: call load() first")
            texts, scores, prompts = run_lm_eval(ctx, items, self.config, self.fewshot_pool)
            ours = [render_prompt(ctx.bundle.tokenizer, self.prompt(it)) for it in items]
            return texts, [{**more, "lm_eval_same_prompt": theirs == mine}
                           for more, theirs, mine in zip(scores, prompts, ours, strict=False)]
        sampling = ctx.sampling(max_new_tokens=self.config.max_new_tokens, do_sample=False)
        out = generate(ctx.bundle.model, ctx.bundle.tokenizer, [self.prompt(it) for it in items],
                       sampling=sampling, batch_size=ctx.batch_size)
        return [cut_at(text, STOPS) for text in out.texts], [{} for _ in items]

    def evaluate(self, ctx: EvalContext, items: list[dict[str, Any]]) -> BenchmarkResult:
        texts, extra = self.generations(ctx, items)
        rows = []
        for item, text, more in zip(items, texts, extra, strict=False):
            strict, flexible, marked = gsm8k_strict(text), gsm8k_flexible(text), gsm8k_final_answer(text)
            rows.append({"id": item["id"], "correct": float(gsm8k_match(strict, item["answer"])),
                         "correct_flexible": float(gsm8k_match(flexible, item["answer"])),
                         "correct_final_answer": float(gsm8k_match(marked, item["answer"])),
                         "gold": gsm8k_gold(item["answer"]), "strict": strict, "flexible": flexible,
                         "final_answer": marked, "fewshot_lines": item["fewshot_lines"], "generation": text, **more})
        metrics = {"exact_match_strict": mean([r["correct"] for r in rows]),
                   "exact_match_flexible": mean([r["correct_flexible"] for r in rows]),
                   "exact_match_final_answer": mean([r["correct_final_answer"] for r in rows])}
        conventions = {"engine": self.config.engine, "prompt": PROMPT,
                       **fewshot_conventions(self.config.num_fewshot, self.fewshot_where, self.config.seed,
                                             "worked answer ending in '#### N'"),
                       "chat_template": True,
                       "decoding": "greedy", "max_new_tokens": self.config.max_new_tokens, "stop": STOPS,
                       "strict": "first '#### N' (lm-eval strict-match)",
                       "final_answer": "first '#### N', else last 'Final Answer: N' (gemkit's, not lm-eval's)",
                       "flexible": "last match of (-?[$0-9.,]{2,})|(-?[0-9]+)",
                       "match": "lower-case; ',', '$', text up to '#### ', trailing '.' removed; string equality"}
        return BenchmarkResult(self.name, metrics, "exact_match_strict", {k: True for k in metrics}, conventions, rows,
                               {}, {"scored": len(rows)})


def lm_eval_task_yaml(data_file: Path, max_new_tokens: int, num_fewshot: int = 0, fewshot_file: Path | None = None) -> str:
    """A task that reuses lm-eval's gsm8k.yaml (prompt, filters, metric) on local JSONL files: the
    items as ``test`` and, for few-shot, the pool as ``train`` (lm-eval's own few-shot split name)."""
    import lm_eval

    base = Path(lm_eval.__file__).parent / "tasks" / "gsm8k" / "gsm8k.yaml"
    if not base.is_file():
        raise ConfigError(f"lm-eval's gsm8k task is not where expected ({base}); update lm-eval or use engine=gemkit")
    if num_fewshot and fewshot_file is None:
        raise ConfigError(f"num_fewshot={num_fewshot} needs a few-shot file for the lm-eval task")
    files = [f"    test: {json.dumps(str(data_file))}"] + ([f"    train: {json.dumps(str(fewshot_file))}"] if num_fewshot else [])
    split = "train" if num_fewshot else "null"
    return "\n".join([
        f"include: {json.dumps(str(base))}",
        f"task: {TASK}",
        "tag: []",
        "dataset_path: json",
        "dataset_name: null",
        "dataset_kwargs:",
        "  data_files:",
        *files,
        f"training_split: {split}",
        f"fewshot_split: {split}",
        "test_split: test",
        f"num_fewshot: {num_fewshot}",
        "generation_kwargs:",
        f"  until: {json.dumps(STOPS)}",
        "  do_sample: false",
        "  temperature: 0.0",
        f"  max_gen_toks: {max_new_tokens}",
        "",
    ])


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps({"question": r["question"], "answer": r["answer"]}) + "\n" for r in rows),
                    encoding="utf-8")


def run_lm_eval(ctx: EvalContext, items: list[dict[str, Any]], config: GSM8KConfig,
                fewshot_pool: list[dict[str, str]]) -> tuple[list[str], list[dict[str, Any]], list[str]]:
    """Greedy answers from lm-eval's gsm8k task on ``items``, in order, lm-eval's own scores, and the
    prompt (chat-templated context) lm-eval built for each item."""
    try:
        from lm_eval import simple_evaluate
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager
    except ImportError as exc:
        raise ConfigError(f"engine=lm-eval needs lm-evaluation-harness ({exc}); pip install lm-eval") from None
    with tempfile.TemporaryDirectory(prefix="gemkit-lmeval-") as tmp:
        data, pool = Path(tmp) / "test.jsonl", Path(tmp) / "train.jsonl"
        _write_jsonl(data, items)
        if config.num_fewshot:
            _write_jsonl(pool, fewshot_pool)
        (Path(tmp) / f"{TASK}.yaml").write_text(lm_eval_task_yaml(
            data, config.max_new_tokens, config.num_fewshot, pool if config.num_fewshot else None), encoding="utf-8")
        model = ctx.bundle.model
        was_training = model.training
        model.eval()
        try:
            lm = HFLM(pretrained=model, tokenizer=ctx.bundle.tokenizer, batch_size=ctx.batch_size,
                      max_length=getattr(model.config, "max_position_embeddings", None))
            # fewshot_random_seed = the data seed: the shots are part of the items, the same for every method
            out = simple_evaluate(model=lm, tasks=[TASK], task_manager=TaskManager(include_path=tmp),
                                  apply_chat_template=True, fewshot_as_multiturn=True, log_samples=True,
                                  random_seed=ctx.seed, numpy_random_seed=ctx.seed, torch_random_seed=ctx.seed,
                                  fewshot_random_seed=config.seed, bootstrap_iters=0, verbosity="ERROR")
        finally:
            model.train(was_training)
    texts: dict[int, str] = {}
    prompts: dict[int, str] = {}
    scores: dict[int, dict[str, Any]] = {}
    for sample in out["samples"][TASK]:
        doc = sample["doc_id"]
        texts[doc] = sample["resps"][0][0]
        prompts[doc] = sample["arguments"][0][0]
        scores.setdefault(doc, {})[f"lm_eval_{sample['filter'].replace('-', '_')}"] = {
            "prediction": sample["filtered_resps"][0], "exact_match": float(sample["exact_match"])}
    n = range(len(items))
    return [cut_at(texts[i], STOPS) for i in n], [scores[i] for i in n], [prompts[i] for i in n]


@gemkit.hookimpl
def register_benchmarks(register):
    register(GSM8K)
