"""MT-Bench pairwise win rate against a baseline model (questions in FastChat's ``question.jsonl`` schema).

Rows carry ``question_id``, ``category`` and ``turns`` (two user turns). The model and the baseline
each answer both turns (the second with the first exchange in context). Each turn is judged on its
own, as FastChat's per-turn grading does: turn 1 on the first question and the two first answers;
turn 2 on both questions and each model's whole conversation, with the judge told to judge the
answers to the last question. Each judgment is made twice, once in each order; the model wins only
when both verdicts agree, loses likewise, and everything else (a tie, or the verdict flipping with
the order) is a tie. For the categories FastChat gives a reference answer (math, reasoning, coding)
the judge sees the reference for that turn: the row's ``reference`` list (FastChat's question.jsonl,
HuggingFaceH4/mt_bench_prompts) or, with ``reference_answers=PATH``, FastChat's
``reference_answer/gpt-4.jsonl`` (``question_id``, ``choices[0].turns``); a question in those
categories without one is judged without and counted (``no_reference``). Reported per category and
overall over (question, turn) judgments: win, loss, tie counts and ``win_rate`` = (win + ½·tie) / n.

The baseline is ``base`` (the policy with its LoRA adapters disabled: the model it was trained
from, e.g. the SFT model a preference method started from), a model spec, or a gemkit checkpoint.
In ``gemkit bench`` the default is ``sft``: the runner trains the SFT model once per (shots, seed)
and puts its checkpoint here for every cell of that (shots, seed), as the GEM paper compares
against its SFT model; outside a bench run ``sft`` has no meaning and is an error.
Default data: ``HuggingFaceH4/mt_bench_prompts`` (split ``train``) in the same schema.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gemkit
from gemkit.errors import ConfigError, DataError
from gemkit.evaluation.context import EvalContext
from gemkit.evaluation.judges import both_orders, win_rates
from gemkit.evaluation.loading import DataOptions, Source, load_rows, text_field
from gemkit.evaluation.results import BenchmarkResult
from gemkit.generation import SamplingConfig, generate
from gemkit.registry import registry


@dataclass
class MTBenchConfig(DataOptions):
    baseline: str = field(default="base", metadata={
        "help": "base (the model with adapters disabled), a model spec, or a gemkit checkpoint directory; "
                "gemkit bench defaults to sft (the SFT cell of the same shots and seed)."})
    judge: str = field(default="local", metadata={"help": "Judge plugin (gemkit plugins list): local, openai, …"})
    judge_options: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "Options of the judge (e.g. {endpoint: ..., model: ...}); YAML/API only."})
    max_new_tokens: int = field(default=256, metadata={"help": "Tokens per answer turn (greedy)."})
    reference_answers: str | None = field(default=None, metadata={
        "help": "FastChat reference_answer/gpt-4.jsonl for math/reasoning/coding (default: the rows' 'reference')."})

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")


#: FastChat's llm_judge NEED_REF_CATS: the judge gets a reference answer for these categories.
NEED_REF_CATS = ("math", "reasoning", "coding")


def turn_question(turns: list[str], turn: int, reference: str | None = None) -> str:
    """What the judge is asked for turn ``turn`` (0-based): the user questions so far, which one to
    judge, and the reference answer to it when there is one."""
    if turn == 0:
        text = turns[0]
    else:
        asked = "\n\n".join(f"Turn {i + 1}: {q}" for i, q in enumerate(turns[:turn + 1]))
        text = (f"{asked}\n\nJudge only the answers to turn {turn + 1}; each answer shows that assistant's own "
                "earlier turns for context.")
    return text if reference is None else f"{text}\n\n[Reference answer to turn {turn + 1}]\n{reference}"


def turn_answer(answers: list[str], turn: int) -> str:
    """One model's side for turn ``turn``: the answer alone (turn 1) or its conversation up to it."""
    if turn == 0:
        return answers[0]
    return "\n\n".join(f"Turn {i + 1} answer: {a}" for i, a in enumerate(answers[:turn + 1]))


def _fastchat_references(path: str) -> dict[str, list[str]]:
    from gemkit.data.readers import read_rows

    out = {}
    for line, row in read_rows(path):
        try:
            out[str(row["question_id"])] = [str(t) for t in row["choices"][0]["turns"]]
        except (KeyError, IndexError, TypeError):
            raise DataError(path, "expected FastChat's {question_id, choices: [{turns: [...]}]}", line=line,
                            field="choices") from None
    return out


def answer_turns(bundle: Any, items: list[dict[str, Any]], sampling: SamplingConfig,
                 batch_size: int) -> list[list[str]]:
    """Answers to every turn (greedy, from :meth:`EvalContext.sampling`), each turn generated with the
    earlier turns in context."""
    histories: list[list[dict[str, str]]] = [[] for _ in items]
    answers: list[list[str]] = [[] for _ in items]
    for turn in range(max(len(it["turns"]) for it in items)):
        active = [i for i, it in enumerate(items) if turn < len(it["turns"])]
        for i in active:
            histories[i].append({"role": "user", "content": items[i]["turns"][turn]})
        out = generate(bundle.model, bundle.tokenizer, [histories[i] for i in active], sampling=sampling,
                       batch_size=batch_size)
        for i, text in zip(active, out.texts, strict=True):
            histories[i].append({"role": "assistant", "content": text})
            answers[i].append(text)
    return answers


class MTBench:
    name = "mt-bench"
    description = "MT-Bench: two-turn answers vs a baseline, judged in both orders; win/loss/tie and win rate."
    Config = MTBenchConfig
    source = Source("HuggingFaceH4/mt_bench_prompts", None, "train", ("question_id", "category", "turns"))
    #: a bench run sets ``baseline`` to ``sft`` unless the user chose one: the GEM paper reports
    #: MT-Bench win rates against the SFT model
    compares_with_sft = True

    def __init__(self, config: MTBenchConfig, judge: Any = None):
        self.config = config
        self._judge = judge

    def load(self) -> list[dict[str, Any]]:
        where = self.config.data or self.source.hub_id
        items = []
        for line, row in load_rows(self.source, self.config):
            turns = row["turns"]
            if not (isinstance(turns, list) and turns and all(isinstance(t, str) and t.strip() for t in turns)):
                raise DataError(where, "expected a non-empty list of user-turn strings", line=line, field="turns")
            reference = row.get("reference")
            if not (isinstance(reference, list) and reference and all(isinstance(r, str) for r in reference)):
                reference = None
            items.append({"id": str(row["question_id"]), "category": text_field(row, "category", where, line),
                          "turns": turns, "reference": reference})
        if self.config.reference_answers:
            references = _fastchat_references(self.config.reference_answers)
            for item in items:
                item["reference"] = references.get(item["id"], item["reference"])
        return items

    def judge(self, ctx: EvalContext) -> Any:
        if self._judge is None:
            options = dict(self.config.judge_options)
            if self.config.judge == "openai" and ctx.out_dir is not None:
                options.setdefault("cache_dir", str(ctx.out_dir / "judge_cache"))
            self._judge = registry("judge").get(self.config.judge).build(options)
        return self._judge

    def greedy(self, ctx: EvalContext) -> SamplingConfig:
        """The decoding of both models' answers: greedy, on the evaluation's generator."""
        return ctx.sampling(max_new_tokens=self.config.max_new_tokens, do_sample=False)

    def check_baseline(self, ctx: EvalContext) -> None:
        """Refuse a baseline that cannot work before any answer is generated."""
        if self.config.baseline == "sft":
            raise ConfigError("mt-bench baseline=sft is filled in by gemkit bench (the SFT cell of the same shots "
                              "and seed); here pass the SFT checkpoint directory, e.g. --set baseline=runs/sft/checkpoint")
        if self.config.baseline == "base" and not hasattr(ctx.bundle.model, "disable_adapter"):
            raise ConfigError("mt-bench baseline=base needs a LoRA checkpoint (its base is the baseline); "
                              "pass baseline=MODEL_OR_CHECKPOINT for this model")
        if self.config.baseline == "base" and ctx.generator == "vllm":
            # The engine holds the policy's weights with the adapters merged (generation_vllm.sync_weights);
            # disable_adapter changes no weight, so the "base" answers would be the trained model's.
            raise ConfigError("mt-bench baseline=base with generator=vllm: the vLLM engine serves the merged LoRA "
                              "weights and cannot switch the adapters off; pass the base model as the baseline "
                              "(baseline=MODEL_NAME) or use generator=hf")

    def baseline_answers(self, ctx: EvalContext, items: list[dict[str, Any]]) -> tuple[list[list[str]], str]:
        self.check_baseline(ctx)
        if self.config.baseline == "base":
            with ctx.bundle.model.disable_adapter():
                return answer_turns(ctx.bundle, items, self.greedy(ctx), ctx.batch_size), "base (adapters disabled)"
        from gemkit.models import ModelSpec, load_model
        from gemkit.train import load_trained

        spec = self.config.baseline
        device = str(ctx.bundle.device)
        bundle = load_trained(spec, device=device) if (Path(spec) / "gemkit.json").is_file() else \
            load_model(ModelSpec(name=spec, device=device), role="reference")
        return answer_turns(bundle, items, self.greedy(ctx), ctx.batch_size), spec

    def evaluate(self, ctx: EvalContext, items: list[dict[str, Any]]) -> BenchmarkResult:
        judge = self.judge(ctx)  # resolve the judge and check the baseline before the slow generation
        self.check_baseline(ctx)
        answers = answer_turns(ctx.bundle, items, self.greedy(ctx), ctx.batch_size)
        baseline, baseline_name = self.baseline_answers(ctx, items)
        rows, no_reference = [], 0
        for item, mine, theirs in zip(items, answers, baseline, strict=True):
            needs_reference = item["category"] in NEED_REF_CATS
            no_reference += needs_reference and item["reference"] is None
            for turn in range(len(item["turns"])):
                reference = item["reference"][turn] if needs_reference and item["reference"] is not None \
                    and turn < len(item["reference"]) else None
                outcome, first, second = both_orders(judge, turn_question(item["turns"], turn, reference),
                                                     turn_answer(mine, turn), turn_answer(theirs, turn))
                rows.append({"id": f"{item['id']}-turn{turn + 1}", "question_id": item["id"], "turn": turn + 1,
                             "category": item["category"], "outcome": outcome,
                             "correct": {"win": 1.0, "tie": 0.5, "loss": 0.0}[outcome],
                             "verdict_model_first": first, "verdict_baseline_first": second,
                             "reference_given": reference is not None,
                             "answer": mine[turn], "baseline_answer": theirs[turn]})
        overall = win_rates([r["outcome"] for r in rows])
        categories = sorted({r["category"] for r in rows})
        per_category = {c: win_rates([r["outcome"] for r in rows if r["category"] == c]) for c in categories}
        metrics = {"win_rate": overall["win_rate"], "win_rate_strict": overall.get("win_rate_strict", float("nan")),
                   "loss_rate": overall.get("loss_rate", float("nan"))}
        conventions = {"judge": self.config.judge, "baseline": baseline_name, "decoding": "greedy",
                       "max_new_tokens": self.config.max_new_tokens,
                       "turns": "each turn judged on its own (FastChat per-turn grading); turn 2 with each side's "
                                "turn-1 exchange as context", "reference_categories": list(NEED_REF_CATS),
                       "order": "both orders; disagreement = tie", "win_rate": "(win + 0.5*tie) / n judgments",
                       "per_category": per_category}
        return BenchmarkResult(self.name, metrics, "win_rate", {"win_rate": True, "win_rate_strict": True,
                                                                "loss_rate": False}, conventions, rows,
                               {c: v["win_rate"] for c, v in per_category.items()},
                               {**{k: int(overall[k]) for k in ("win", "loss", "tie")}, "questions": len(items),
                                "no_reference": no_reference})


@gemkit.hookimpl
def register_benchmarks(register):
    register(MTBench, aliases=("mtbench",))
