"""MATH answer accuracy (default ``HuggingFaceH4/MATH-500``, split ``test``; any MATH-schema file).

Rows carry ``problem`` and ``solution`` (the gold answer is the last ``\\boxed{…}`` of the solution,
or the ``answer`` field when present, as in MATH-500). The model answers greedily with an
instruction to box its final answer; the prediction is the last boxed expression (else the text
after ``Final Answer:``) and is correct when it equals the gold answer after
:func:`gemkit.evaluation.extract.normalise_math`. Accuracy per ``subject`` (or ``type``) too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gemkit
from gemkit.errors import ConfigError, DataError
from gemkit.evaluation.context import EvalContext
from gemkit.evaluation.extract import last_boxed, math_answer, math_match, normalise_math
from gemkit.evaluation.loading import DataOptions, Source, load_rows, row_id, text_field
from gemkit.evaluation.preference import per_subset
from gemkit.evaluation.results import BenchmarkResult, mean
from gemkit.generation import SamplingConfig, generate

SYSTEM = "Solve the problem step by step. Put the final answer inside \\boxed{}."


@dataclass
class MathConfig(DataOptions):
    max_new_tokens: int = field(default=512, metadata={"help": "Answer length budget (greedy)."})

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")


class Math:
    name = "math"
    description = "MATH (default MATH-500): greedy answers, last \\boxed{} vs gold after normalisation."
    Config = MathConfig
    source = Source("HuggingFaceH4/MATH-500", None, "test", ("problem", "solution"))

    def __init__(self, config: MathConfig):
        self.config = config

    def load(self) -> list[dict[str, Any]]:
        where = self.config.data or self.source.hub_id
        items = []
        for line, row in load_rows(self.source, self.config):
            solution = text_field(row, "solution", where, line)
            gold = row.get("answer") if isinstance(row.get("answer"), str) and row["answer"].strip() else last_boxed(solution)
            if gold is None:
                raise DataError(where, "no 'answer' field and no \\boxed{} answer in the solution", line=line,
                                field="solution")
            items.append({"id": row_id(row, "unique_id", line), "problem": text_field(row, "problem", where, line),
                          "gold": gold, "subset": str(row.get("subject") or row.get("type") or "all")})
        return items

    def evaluate(self, ctx: EvalContext, items: list[dict[str, Any]]) -> BenchmarkResult:
        sampling = SamplingConfig(max_new_tokens=self.config.max_new_tokens, do_sample=False)
        out = generate(ctx.bundle.model, ctx.bundle.tokenizer, [it["problem"] for it in items], sampling=sampling,
                       system=SYSTEM, batch_size=ctx.batch_size)
        rows = []
        for item, text in zip(items, out.texts):
            prediction = math_answer(text)
            rows.append({"id": item["id"], "subset": item["subset"], "correct": float(math_match(prediction, item["gold"])),
                         "prediction": prediction, "prediction_normalised": normalise_math(prediction),
                         "gold": item["gold"], "generation": text})
        metrics = {"accuracy": mean([r["correct"] for r in rows])}
        conventions = {"system_prompt": SYSTEM, "num_fewshot": 0, "chat_template": True, "decoding": "greedy",
                       "max_new_tokens": self.config.max_new_tokens,
                       "extraction": "last \\boxed{}, else text after 'Final Answer:'",
                       "match": "string equality after gemkit.evaluation.extract.normalise_math"}
        return BenchmarkResult(self.name, metrics, "accuracy", {"accuracy": True}, conventions, rows, per_subset(rows),
                               {"scored": len(rows)})


@gemkit.hookimpl
def register_benchmarks(register):
    register(Math, aliases=("math-500",))
