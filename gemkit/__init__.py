"""gemkit: few-shot preference alignment with GEM (Cognitive Filtering + SEGA) and its baselines.

The names below are the public API that plugins build on (the example plugins under ``plugins/``
import nothing else from gemkit): the hook marker, the error family, what a scorer reads and
returns, what an objective implements and is handed, the preference record, the data-reading
helpers of reader and judge plugins, and the typed component fields of a Config. Everything else
is internal and may change; ``gemkit.testing`` holds the conformance checks for plugin tests.
"""
from __future__ import annotations

import importlib
from typing import Any

#: public name -> (module, attribute). Resolved on first use (PEP 562), so ``import gemkit`` loads
#: no torch: the CLI must set the OpenMP wait policy before torch starts its runtime (gemkit.threads).
_PUBLIC = {
    "ComponentSpec": ("gemkit.components", "ComponentSpec"),
    "MappingSpec": ("gemkit.components", "MappingSpec"),
    "ScorerSpec": ("gemkit.components", "ScorerSpec"),
    "spec_field": ("gemkit.components", "spec_field"),
    "read_rows": ("gemkit.data.readers", "read_rows"),
    "require_fields": ("gemkit.data.readers", "require_fields"),
    "PreferencePair": ("gemkit.data.records", "PreferencePair"),
    "ConfigError": ("gemkit.errors", "ConfigError"),
    "DataError": ("gemkit.errors", "DataError"),
    "GemkitError": ("gemkit.errors", "GemkitError"),
    "ModelLoadError": ("gemkit.errors", "ModelLoadError"),
    "PluginError": ("gemkit.errors", "PluginError"),
    "FINAL_ANSWER_MARKER": ("gemkit.gem.spans", "MARKER"),
    "hookimpl": ("gemkit.hookspecs", "hookimpl"),
    "ScoreResult": ("gemkit.scoring", "ScoreResult"),
    "ScoringInputs": ("gemkit.scoring", "ScoringInputs"),
    "LossOutput": ("gemkit.train.objective", "LossOutput"),
    "Objective": ("gemkit.train.objective", "Objective"),
    "StepContext": ("gemkit.train.objective", "StepContext"),
}


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'gemkit' has no attribute '{name}'")
    module, attribute = _PUBLIC[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])


__version__ = "0.1.0"

__all__ = [
    "FINAL_ANSWER_MARKER",
    "ComponentSpec",
    "ConfigError",
    "DataError",
    "GemkitError",
    "LossOutput",
    "MappingSpec",
    "ModelLoadError",
    "Objective",
    "PluginError",
    "PreferencePair",
    "ScoreResult",
    "ScorerSpec",
    "ScoringInputs",
    "StepContext",
    "__version__",
    "hookimpl",
    "read_rows",
    "require_fields",
    "spec_field",
]
