"""Every registered component — built-in or installed plugin — passes the same checks a plugin
author runs with gemkit.testing (scikit-learn's parametrize_with_checks idea)."""
import dataclasses

import pytest

from gemkit.errors import ConfigError
from gemkit.registry import KINDS, registry
from gemkit.testing import check_mapping, check_scorer

ENTRIES = [registry(kind).get(name) for kind in KINDS for name in registry(kind).names()]


def ids(entry):
    return f"{entry.kind}:{entry.name}"


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.kind == "scorer"], ids=ids)
def test_scorer_conforms(entry):
    check_scorer(entry.build())


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.kind == "mapping"], ids=ids)
def test_mapping_conforms(entry):
    # Built-in mappings turn scores into rewards monotonically; a plugin's need not.
    check_mapping(entry.build(), monotone=entry.distribution == "gemkit")


@pytest.mark.parametrize("entry", ENTRIES, ids=ids)
def test_component_is_documented_and_builds_from_defaults(entry):
    assert entry.description and "\n" not in entry.description
    undocumented = [f.name for f in dataclasses.fields(entry.cls.Config) if not f.metadata.get("help")]
    assert undocumented == [], f"{entry.kind} '{entry.name}': options without help: {undocumented}"
    try:
        assert entry.build() is not None
    except ConfigError as exc:  # an input no default can give (rm-ppo's reward model) must be named
        assert "needs" in str(exc) or "required" in str(exc), f"{entry.kind} '{entry.name}': {exc}"
    assert entry.distribution and (entry.distribution == "gemkit") == (entry.plugin in _builtin_names())


def _builtin_names():
    from gemkit.manager import BUILTIN_PLUGINS

    return set(BUILTIN_PLUGINS)


def test_the_checks_catch_a_scorer_that_reads_padding():
    """check_scorer must fail a scorer that averages over all positions, padding included."""
    from dataclasses import dataclass

    import torch

    from gemkit.scoring import ScoreResult

    @dataclass
    class NoOptions:
        pass

    class Sloppy:
        name, description, Config, needs_logits = "sloppy", "reads padding", NoOptions, False

        def score(self, inputs):
            scores = inputs.token_entropies.mean(-1)  # padding positions included: a bug
            return ScoreResult(scores, torch.ones_like(scores, dtype=torch.bool))

    with pytest.raises(AssertionError, match="reads masked"):
        check_scorer(Sloppy())


def test_the_checks_catch_a_scorer_that_leaks_grad():
    from dataclasses import dataclass

    import torch

    from gemkit.scoring import ScoreResult

    @dataclass
    class NoOptions:
        pass

    class Leaky:
        name, description, Config, needs_logits = "leaky", "keeps a graph", NoOptions, False
        weight = torch.nn.Parameter(torch.ones(()))

        def score(self, inputs):
            scores = (inputs.token_logps * inputs.response_mask).sum(-1) * self.weight
            return ScoreResult(scores, torch.ones_like(scores, dtype=torch.bool))

    with pytest.raises(AssertionError, match="autograd graph"):
        check_scorer(Leaky())
