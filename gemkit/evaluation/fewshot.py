"""Few-shot prompts: solved examples shown to the model as earlier chat turns before the question.

A prompt with k shots is the message list

    [user: q_1, assistant: a_1, ..., user: q_k, assistant: a_k, user: q]

where each (q_j, a_j) is a solved example from the few-shot pool and a_j is the worked answer in
the form the benchmark's extractor reads (GSM8K: ending in ``#### N``; MATH: a ``\\boxed{}``
answer). The shots are drawn by one ``random.Random(seed)`` walked over the evaluated items in
order: item i gets ``rng.sample(pool, k)`` after items 0..i-1 took theirs. For a separate pool this
is exactly how lm-evaluation-harness's default sampler draws (seeded by ``fewshot_random_seed``,
rendered with ``fewshot_as_multiturn``), so gemkit's generator and the lm-eval engine build the
same prompts from the same pool. When the pool is the evaluated file itself (TruthfulQA has one
split), item i draws ``rng.sample(pool without row i, k)`` (lm-eval instead draws k + 1 and drops
the evaluated row; gemkit runs TruthfulQA itself, so nothing has to match there).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from gemkit.data.records import Message
from gemkit.errors import ConfigError, DataError
from gemkit.evaluation.loading import DataOptions, Source, load_rows


@dataclass
class FewShotOptions(DataOptions):
    """``DataOptions`` plus where the few-shot examples come from (mixed into a benchmark's Config)."""

    num_fewshot: int = field(default=0, metadata={
        "help": "Solved examples shown as earlier chat turns before each question (0: zero-shot)."})
    fewshot_data: str | None = field(default=None, metadata={
        "help": "Local file of few-shot examples in the upstream schema (default: the Hub's few-shot split)."})
    fewshot_split: str | None = field(default=None, metadata={
        "help": "Hub split of the few-shot examples (default: the benchmark's own, e.g. train)."})

    def __post_init__(self) -> None:
        check_num_fewshot(self.num_fewshot)


def check_num_fewshot(num_fewshot: int) -> None:
    if num_fewshot < 0:
        raise ConfigError(f"num_fewshot must be >= 0, got {num_fewshot}")


def draw_shots(pool_size: int, item_pool_index: list[int | None], num_fewshot: int, seed: int,
               where: str) -> list[list[int]]:
    """Pool indices of each item's shots, in draw order.

    ``item_pool_index[i]`` is item i's own row in the pool (excluded from its draw) or None when
    the pool is a separate split. One generator serves all items, in order (see the module doc).
    """
    if num_fewshot == 0:
        return [[] for _ in item_pool_index]
    excludes_self = any(index is not None for index in item_pool_index)
    available = pool_size - 1 if excludes_self else pool_size
    if num_fewshot > available:
        raise DataError(where, f"num_fewshot={num_fewshot} needs at least {num_fewshot} examples"
                               f"{' besides the evaluated one' if excludes_self else ''}, found {available}; "
                               f"lower num_fewshot or give a larger few-shot file")
    rng = random.Random(seed)
    draws = []
    for own in item_pool_index:
        candidates = range(pool_size) if own is None else [j for j in range(pool_size) if j != own]
        draws.append(rng.sample(candidates, num_fewshot))
    return draws


def load_pool(source: Source, options: FewShotOptions) -> tuple[str, list[dict[str, Any]]]:
    """Where the pool came from (for messages and the recorded conventions) and all its rows,
    each checked against ``source.fields`` like the evaluated data."""
    split = options.fewshot_split or source.split
    where = options.fewshot_data or f"{source.hub_id}" + (f" ({source.config})" if source.config else "") + f" split {split}"
    rows = load_rows(source, DataOptions(data=options.fewshot_data, split=split))
    return where, [row for _, row in rows]


def shot_turns(shots: list[tuple[str, str]]) -> list[Message]:
    """``[(question, answer), ...]`` as alternating user/assistant messages."""
    turns: list[Message] = []
    for question, answer in shots:
        turns += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return turns


def with_shots(shots: list[tuple[str, str]], question: str) -> str | list[Message]:
    """The prompt for ``question``: the plain string when there are no shots (zero-shot prompts
    stay exactly as before), else the shot turns followed by the question's user turn."""
    if not shots:
        return question
    return [*shot_turns(shots), {"role": "user", "content": question}]


def fewshot_conventions(num_fewshot: int, source: str, seed: int, answer: str) -> dict[str, Any]:
    """What is recorded in the results about the shots (empty details when zero-shot)."""
    if num_fewshot == 0:
        return {"num_fewshot": 0}
    return {"num_fewshot": num_fewshot, "fewshot_source": source, "fewshot_seed": seed,
            "fewshot_format": f"earlier chat turns: user question / assistant {answer}",
            "fewshot_sampler": "one random.Random(seed) over the items in order, rng.sample(pool, k) per item"}
