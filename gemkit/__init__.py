"""gemkit: few-shot preference alignment with GEM (Cognitive Filtering + SEGA) and its baselines.

The names below are the public API that plugins build on (the example plugins under ``plugins/``
import nothing else from gemkit): the hook marker, the error family, what a scorer reads and
returns, what an objective implements and is handed, the preference record, the data-reading
helpers of reader and judge plugins, and the typed component fields of a Config. Everything else
is internal and may change; ``gemkit.testing`` holds the conformance checks for plugin tests.
"""
from gemkit.components import ComponentSpec, MappingSpec, ScorerSpec, spec_field
from gemkit.data.readers import read_rows, require_fields
from gemkit.data.records import PreferencePair
from gemkit.errors import ConfigError, DataError, GemkitError, ModelLoadError, PluginError
from gemkit.gem.spans import MARKER as FINAL_ANSWER_MARKER
from gemkit.hookspecs import hookimpl
from gemkit.scoring import ScoreResult, ScoringInputs
from gemkit.train.objective import LossOutput, Objective, StepContext

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
