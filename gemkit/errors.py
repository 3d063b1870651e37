"""The one user-facing error family.

The CLI catches :class:`GemkitError` only, prints ``Error: <message>`` and exits with code 2.
Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations


class GemkitError(Exception):
    """Base class of every error a user can fix (bad input, bad config, missing package)."""


class ConfigError(GemkitError):
    """One or more configuration problems, all reported at once."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems) if len(self.problems) == 1 else
                         f"{len(self.problems)} configuration problems:\n  - " + "\n  - ".join(self.problems))


class DataError(GemkitError):
    """A data file is unusable. The message names the file, the line (1-based) and the field."""

    def __init__(self, path: str, message: str, *, line: int | None = None, field: str | None = None):
        self.path, self.line, self.field = str(path), line, field
        where = self.path + (f", line {line}" if line is not None else "")
        what = f"field '{field}': " if field else ""
        super().__init__(f"{where}: {what}{message}")


class ModelLoadError(GemkitError):
    """A model or tokenizer could not be located or loaded."""


class UnknownComponentError(GemkitError):
    """A component name that no plugin registered."""


class DuplicateComponentError(GemkitError):
    """Two plugins registered the same component name."""


class PluginError(GemkitError):
    """A plugin broke its contract or raised inside a hook; names the plugin and its distribution."""

    def __init__(self, plugin: str, distribution: str | None, message: str):
        self.plugin, self.distribution = plugin, distribution
        origin = f"plugin '{plugin}'" + (f" ({distribution})" if distribution else "")
        super().__init__(f"{origin}: {message}")


class TrainingError(GemkitError):
    """Training stopped for a reason the user must act on (e.g. a non-finite loss)."""
