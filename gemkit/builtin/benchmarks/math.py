"""MATH answer accuracy (default ``HuggingFaceH4/MATH-500``, split ``test``; any MATH-schema file).

Rows carry ``problem`` and ``solution`` (the gold answer is the last ``\\boxed{…}`` of the solution,
or the ``answer`` field when present, as in MATH-500). The model answers greedily with an
instruction to box its final answer; the prediction is the last boxed expression (else the text
after ``Final Answer:``) and is correct when the judge named by ``equivalence`` finds it equivalent
to the gold answer (:mod:`gemkit.evaluation.math_equiv`: Hugging Face's ``math-verify`` by default,
or lm-eval's ``hendrycks_math`` ``is_equiv`` for comparison with lm-eval numbers). Accuracy per
``subject`` (or ``type``) too.

Zero-shot by default. With ``num_fewshot=k`` each problem follows k solved problems as earlier
chat turns (user problem / assistant the full ``solution``, whose last ``\\boxed{}`` is what the
extractor reads), drawn by :mod:`gemkit.evaluation.fewshot` from the MATH training split
(``DigitalLearningGmbH/MATH-lighteval``, config ``default``, split ``train``: MATH-500 has only a
test split and its problems come from MATH's test set, so train never overlaps it) or ``fewshot_data``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import gemkit
from gemkit.errors import ConfigError, DataError
from gemkit.evaluation.context import EvalContext
from gemkit.evaluation.extract import last_boxed, math_answer
from gemkit.evaluation.fewshot import FewShotOptions, draw_shots, fewshot_conventions, load_pool, with_shots
from gemkit.evaluation.loading import Source, load_rows, row_id, text_field
from gemkit.evaluation.math_equiv import math_equal, normalised_answer
from gemkit.evaluation.preference import per_subset
from gemkit.evaluation.results import BenchmarkResult, mean
from gemkit.generation import generate

SYSTEM = "Solve the problem step by step. Put the final answer inside \\boxed{}."


@dataclass
class MathConfig(FewShotOptions):
    max_new_tokens: int = field(default=512, metadata={"help": "Answer length budget (greedy)."})
    equivalence: Literal["math-verify", "lm-eval"] = field(default="math-verify", metadata={
        "help": "Answer judge: math-verify (symbolic, default) or lm-eval (hendrycks_math is_equiv, string)."})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")


class Math:
    name = "math"
    description = "MATH (default MATH-500): greedy answers, last \\boxed{} vs gold after normalisation."
    Config = MathConfig
    source = Source("HuggingFaceH4/MATH-500", None, "test", ("problem", "solution"))
    fewshot_source = Source("DigitalLearningGmbH/MATH-lighteval", "default", "train", ("problem", "solution"))

    def __init__(self, config: MathConfig):
        self.config = config
        self.fewshot_where = ""

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
        pool = self._fewshot_pool() if self.config.num_fewshot else []
        draws = draw_shots(len(pool), [None] * len(items), self.config.num_fewshot, self.config.seed, self.fewshot_where)
        for item, drawn in zip(items, draws, strict=False):
            item["fewshot_lines"] = [j + 1 for j in drawn]
            item["shots"] = [pool[j] for j in drawn]
        return items

    def _fewshot_pool(self) -> list[tuple[str, str]]:
        """(problem, solution) of every few-shot row; a solution must box its answer, as the model is asked to."""
        self.fewshot_where, rows = load_pool(self.fewshot_source, self.config)
        pool = []
        for line, row in enumerate(rows, 1):
            solution = text_field(row, "solution", self.fewshot_where, line)
            if last_boxed(solution) is None:
                raise DataError(self.fewshot_where, "a few-shot solution must end in a \\boxed{} answer", line=line,
                                field="solution")
            pool.append((text_field(row, "problem", self.fewshot_where, line), solution))
        return pool

    def evaluate(self, ctx: EvalContext, items: list[dict[str, Any]]) -> BenchmarkResult:
        sampling = ctx.sampling(max_new_tokens=self.config.max_new_tokens, do_sample=False)
        prompts = [with_shots(it["shots"], it["problem"]) for it in items]
        out = generate(ctx.bundle.model, ctx.bundle.tokenizer, prompts, sampling=sampling, system=SYSTEM,
                       batch_size=ctx.batch_size)
        rows = []
        for item, text in zip(items, out.texts, strict=False):
            prediction = math_answer(text)
            correct = math_equal(prediction, item["gold"], self.config.equivalence)
            rows.append({"id": item["id"], "subset": item["subset"], "correct": float(correct),
                         "prediction": prediction,
                         "prediction_normalised": normalised_answer(prediction, self.config.equivalence),
                         "gold": item["gold"], "fewshot_lines": item["fewshot_lines"], "generation": text})
        metrics = {"accuracy": mean([r["correct"] for r in rows])}
        conventions = {"system_prompt": SYSTEM,
                       **fewshot_conventions(self.config.num_fewshot, self.fewshot_where, self.config.seed,
                                             "full solution (its last \\boxed{} is the answer)"),
                       "chat_template": True, "decoding": "greedy",
                       "max_new_tokens": self.config.max_new_tokens,
                       "extraction": "last \\boxed{}, else text after 'Final Answer:'",
                       "equivalence": self.config.equivalence,
                       "match": ("math_verify.verify(parse(gold), parse(prediction)), both in \\boxed{}"
                                 if self.config.equivalence == "math-verify"
                                 else "lm_eval hendrycks_math is_equiv (strip_string, then string equality)")}
        return BenchmarkResult(self.name, metrics, "accuracy", {"accuracy": True}, conventions, rows, per_subset(rows),
                               {"scored": len(rows)})


@gemkit.hookimpl
def register_benchmarks(register):
    register(Math, aliases=("math-500",))
