"""Every gemkit hook, in one place.

Plugins implement these with ``@gemkit.hookimpl``. The registration hooks take a ``register``
callback: call it once per component class; it checks the class (``name``, ``description``,
``Config`` dataclass, the kind's required methods), rejects duplicate names naming both plugins,
and records which plugin and distribution the component came from. Return nothing.

A component class carries three class attributes:

- ``name: str`` — the name users type (``--scorer entropy``);
- ``description: str`` — one line for ``gemkit plugins list``;
- ``Config: type`` — a ``@dataclass`` of its options; ``Component(Config(...))`` builds it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("gemkit")
hookimpl = pluggy.HookimplMarker("gemkit")

Register = Callable[..., None]


@hookspec
def register_scorers(register: Register) -> None:
    """Add candidate scorers (kind ``scorer``).

    Called the first time the scorer registry is read. A scorer maps the response-token logits
    of k candidates to one score per candidate; it must define
    ``score(inputs: gemkit.scoring.ScoringInputs) -> ScoreResult``.
    """


@hookspec
def register_mappings(register: Register) -> None:
    """Add reward mappings (kind ``mapping``).

    Called the first time the mapping registry is read. A mapping turns the scores of each
    group into rewards and must define ``__call__(scores: Tensor[b, k]) -> Tensor[b, k]``.
    """


@hookspec
def register_objectives(register: Register) -> None:
    """Add training objectives (kind ``objective``: sega, dpo, sft, …).

    Called the first time the objective registry is read. An objective must define
    ``compute_loss(ctx: gemkit.train.StepContext, batch: list[PreferencePair]) -> LossOutput``;
    the shared engine owns optimiser, schedule, precision, accumulation, logging and checkpoints.
    """


@hookspec
def register_benchmarks(register: Register) -> None:
    """Add benchmark adapters (kind ``benchmark``).

    Called the first time the benchmark registry is read. A benchmark is built from its ``Config``
    (data path, ``limit``, ``seed`` and scoring options live there) and must define
    ``load() -> items`` (any list or mapping its ``evaluate`` understands; schema errors are raised
    here, before a model is used) and
    ``evaluate(ctx: gemkit.evaluation.EvalContext, items) -> gemkit.evaluation.BenchmarkResult``
    (metrics, primary metric, direction per metric, recorded conventions, one row per item with
    ``id`` and ``correct``). A benchmark that generates gets its decoding settings from
    ``ctx.sampling(max_new_tokens=..., do_sample=False)``, so the run's engine (``--generator``)
    reaches it and ``conventions["generator"]`` records which engine wrote the answers.
    """


@hookspec
def register_judges(register: Register) -> None:
    """Add pairwise answer judges (kind ``judge``) for MT-Bench-style comparisons.

    Called the first time the judge registry is read. A judge must define
    ``compare(question: str, answer_a: str, answer_b: str) -> str`` returning "A", "B" or "tie".
    For multi-turn benchmarks ``question`` holds every user turn and each answer every reply.
    Callers judge both orders (``gemkit.evaluation.judges.both_orders``); a judge need not.
    """


@hookspec(firstresult=True)
def load_model(spec: Any, role: str) -> Any:
    """Load the model and tokenizer described by ``spec`` (a ``gemkit.models.ModelSpec``).

    Stops at first non-None result. The built-in loader (hub id, local directory, the embedded
    ``smollm2-135m`` and ``random:<size>``) is registered with ``trylast=True``, so a plugin or a
    test returning a ``gemkit.models.ModelBundle`` wins.

    :param spec: what to load (name or path, dtype, device, LoRA settings, trust_remote_code).
    :param role: "policy", "reference", "reward" or "judge".
    :return: a ``ModelBundle``, or None to let the next implementation try.
    """
