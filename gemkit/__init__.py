"""gemkit: few-shot preference alignment with GEM (Cognitive Filtering + SEGA) and its baselines."""
from gemkit.errors import ConfigError, DataError, GemkitError, ModelLoadError, PluginError
from gemkit.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["ConfigError", "DataError", "GemkitError", "ModelLoadError", "PluginError", "__version__", "hookimpl"]
