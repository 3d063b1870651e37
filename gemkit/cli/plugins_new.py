"""``gemkit plugins new KIND NAME [--dir D]``: write a working plugin package to start from.

The skeleton is a separately installable distribution ``gemkit-NAME`` with one module
``gemkit_NAME``, the entry point that wires it into gemkit, and a test that runs gemkit's
conformance checks (``gemkit.testing``). ``pip install -e gemkit-NAME && pytest gemkit-NAME`` passes
as generated; then edit the marked function.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from gemkit import __version__
from gemkit.errors import ConfigError

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,40}$")

PYPROJECT = '''\
# pip install -e .   then   gemkit plugins list   shows the {kind} '{name}' from gemkit-{dist}
[project]
name = "gemkit-{dist}"
version = "0.1.0"
description = "gemkit {kind} plugin: {name}."
requires-python = ">=3.10"
dependencies = ["gemkit>={gemkit_version}"]

[project.entry-points.gemkit]
{name} = "{module}"

[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[tool.setuptools]
py-modules = ["{module}"]
'''

SCORER_MODULE = '''\
"""gemkit scorer plugin '{name}': one score per candidate, higher is better.

Edit ``token_values`` (and the docstrings). The default scores a candidate by the mean log-prob
of its response tokens, a simple confidence score.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

import gemkit
from gemkit import ScoreResult, ScoringInputs


@gemkit.hookimpl
def register_scorers(register):
    register({cls}Scorer)


@dataclass
class {cls}Config:
    scale: float = field(default=1.0, metadata={{"help": "Multiplies every score."}})


class {cls}Scorer:
    """Score = scale · mean over response tokens of log π(a_t | q, a_<t)."""

    name = "{name}"
    description = "Mean response-token log-prob (edit me)."
    Config = {cls}Config
    needs_logits = False  # True makes the runner fill inputs.logits[n, t, V] (memory!)

    def __init__(self, config: {cls}Config):
        self.config = config

    def token_values(self, inputs: ScoringInputs) -> torch.Tensor:
        """Per-token values ``[n, t]``; only positions where ``response_mask`` is 1 count."""
        return inputs.token_logps

    @torch.no_grad()
    def score(self, inputs: ScoringInputs) -> ScoreResult:
        mask = inputs.response_mask > 0
        values = torch.where(mask, self.token_values(inputs), torch.zeros(()))
        scores = self.config.scale * values.sum(-1) / mask.sum(-1).clamp_min(1)
        finished = torch.tensor(["final answer" in text.lower() for text in inputs.texts], dtype=torch.bool)
        return ScoreResult(scores=scores, finished=finished)
'''

SCORER_TEST = '''\
"""Tests for the '{name}' scorer; gemkit.testing builds the inputs, no model or GPU needed."""
import pytest
import torch

from gemkit.testing import check_scorer, make_scoring_inputs
from {module} import {cls}Config, {cls}Scorer, register_scorers


def test_conforms_to_the_scorer_contract():
    """Shape [n], finite, deterministic, no autograd graph, padding ignored."""
    check_scorer({cls}Scorer({cls}Config()))


def test_mean_log_prob_by_hand():
    """Row 0 has log-probs [-1, -3] on its two response tokens -> mean -2; scale 2 -> -4."""
    inputs = make_scoring_inputs(["a b", "c"], group_size=2)
    inputs.token_logps = torch.zeros_like(inputs.token_logps)
    inputs.response_mask = torch.zeros_like(inputs.response_mask)
    inputs.response_mask[0, :2] = 1
    inputs.token_logps[0, :2] = torch.tensor([-1.0, -3.0])
    assert {cls}Scorer({cls}Config(scale=2.0)).score(inputs).scores[0].item() == pytest.approx(-4.0)


def test_registers_under_its_name():
    seen = []
    register_scorers(lambda cls, **kwargs: seen.append(cls.name))
    assert seen == ["{name}"]
'''

MAPPING_MODULE = '''\
"""gemkit reward-mapping plugin '{name}': scores[b, k] -> rewards[b, k], group by group.

Edit ``__call__``. The default is a temperature-scaled, group-centred score.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

import gemkit


@gemkit.hookimpl
def register_mappings(register):
    register({cls}Mapping)


@dataclass
class {cls}Config:
    temperature: float = field(default=1.0, metadata={{"help": "Divides the centred scores."}})


class {cls}Mapping:
    """r_i = (S_i − mean_j S_j) / temperature within each group of k candidates."""

    name = "{name}"
    description = "Group-centred score divided by a temperature (edit me)."
    Config = {cls}Config

    def __init__(self, config: {cls}Config):
        self.config = config

    @torch.no_grad()
    def __call__(self, scores: torch.Tensor) -> torch.Tensor:
        return (scores - scores.mean(dim=-1, keepdim=True)) / self.config.temperature
'''

MAPPING_TEST = '''\
"""Tests for the '{name}' mapping."""
import torch

from gemkit.testing import check_mapping
from {module} import {cls}Config, {cls}Mapping


def test_conforms_to_the_mapping_contract():
    check_mapping({cls}Mapping({cls}Config()), monotone=True)


def test_by_hand():
    """Group [1, 2, 6]: mean 3 -> [-2, -1, 3]; temperature 2 -> [-1, -0.5, 1.5]."""
    rewards = {cls}Mapping({cls}Config(temperature=2.0))(torch.tensor([[1.0, 2.0, 6.0]]))
    assert rewards.tolist() == [[-1.0, -0.5, 1.5]]
'''

TEMPLATES: dict[str, tuple[str, str]] = {"scorer": (SCORER_MODULE, SCORER_TEST), "mapping": (MAPPING_MODULE, MAPPING_TEST)}

README = '''\
# gemkit-{dist}

A gemkit {kind} plugin, generated by `gemkit plugins new {kind} {name}`.

```bash
pip install -e .          # registers the entry point '{name}' in group 'gemkit'
gemkit plugins list       # {kind}  {name}  gemkit-{dist} 0.1.0
pytest                    # conformance checks from gemkit.testing; CPU only, seconds
```

See gemkit's docs/plugins.md for every hook and the rules a {kind} must follow.
'''


def add_subparser(sub: Any) -> None:
    new = sub.add_parser("new", help="Write a working plugin package skeleton (pyproject, module, test).")
    new.add_argument("kind", choices=sorted(TEMPLATES), help="What the plugin adds.")
    new.add_argument("name", help="Component and entry-point name: lower case letters, digits, '_'.")
    new.add_argument("--dir", help="Directory to create (default: ./gemkit-NAME).")
    new.set_defaults(handler=run_new)


def write_skeleton(kind: str, name: str, directory: str | Path | None = None) -> Path:
    """Create the package and return its directory; refuses to touch an existing non-empty one."""
    if kind not in TEMPLATES:
        raise ConfigError(f"unknown plugin kind '{kind}'; choose one of: {', '.join(sorted(TEMPLATES))}")
    if not NAME_RE.match(name):
        raise ConfigError(f"plugin name must match {NAME_RE.pattern} (lower case, digits, '_'), got {name!r}")
    dist = name.replace("_", "-")
    target = Path(directory) if directory else Path(f"gemkit-{dist}")
    if target.exists() and any(target.iterdir()):
        raise ConfigError(f"{target} already exists and is not empty; choose another --dir")
    module = f"gemkit_{name}"
    values = {"kind": kind, "name": name, "dist": dist, "module": module, "gemkit_version": __version__,
              "cls": "".join(part.capitalize() for part in name.split("_"))}
    module_text, test_text = TEMPLATES[kind]
    (target / "tests").mkdir(parents=True, exist_ok=True)
    (target / "pyproject.toml").write_text(PYPROJECT.format(**values))
    (target / f"{module}.py").write_text(module_text.format(**values))
    (target / "tests" / f"test_{name}.py").write_text(test_text.format(**values))
    (target / "README.md").write_text(README.format(**values))
    return target


def run_new(args: argparse.Namespace) -> int:
    target = write_skeleton(args.kind, args.name, args.dir)
    print(f"Wrote {args.kind} plugin '{args.name}' to {target}/")
    print(f"Next: pip install -e {target} && pytest {target} && gemkit plugins list")
    return 0
