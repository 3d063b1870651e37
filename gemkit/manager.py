"""Builds the pluggy plugin manager: built-ins first, then third-party entry points one at a time.

Built-ins are ordinary plugin modules listed in :data:`BUILTIN_PLUGINS`; they go through the same
``pm.register`` and the same registry checks as a third-party plugin, and can be blocked by name.
A third-party plugin that fails to import or register is recorded in :data:`LoadRecord` form and
shown by ``gemkit plugins list``; it never stops the host (unless ``GEMKIT_STRICT_PLUGINS=1``).

Environment controls:

- ``GEMKIT_PLUGINS=a,b`` — allow-list of third-party entry points (empty value: none).
- ``GEMKIT_DISABLE_PLUGINS=a,b`` — block plugins by name, built-ins included.
- ``GEMKIT_STRICT_PLUGINS=1`` — a load failure raises instead of being recorded.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy

from gemkit import hookspecs
from gemkit.errors import PluginError

ENTRY_POINT_GROUP = "gemkit"

#: plugin name -> module; each module is registered exactly like an entry-point plugin.
BUILTIN_PLUGINS: dict[str, str] = {
    "models": "gemkit.builtin.models",
    "entropy": "gemkit.builtin.entropy",
    "mappings": "gemkit.builtin.mappings",
    "sega": "gemkit.builtin.sega",
    "sft": "gemkit.builtin.sft",
    "dpo": "gemkit.builtin.dpo",
    "arithmetic": "gemkit.builtin.benchmarks.arithmetic",
    "rewardbench": "gemkit.builtin.benchmarks.rewardbench",
    "ultrafeedback": "gemkit.builtin.benchmarks.ultrafeedback",
    "pku-saferlhf": "gemkit.builtin.benchmarks.pku_saferlhf",
    "hh-rlhf": "gemkit.builtin.benchmarks.hh_rlhf",
    "pairs": "gemkit.builtin.benchmarks.pairs",
    "gsm8k": "gemkit.builtin.benchmarks.gsm8k",
    "math": "gemkit.builtin.benchmarks.math",
    "truthfulqa": "gemkit.builtin.benchmarks.truthfulqa",
    "mt-bench": "gemkit.builtin.benchmarks.mt_bench",
    "scorer-diagnostics": "gemkit.builtin.benchmarks.scorer_diagnostics",
    "judges": "gemkit.builtin.judges",
    "simpo": "gemkit.builtin.simpo",
    "orpo": "gemkit.builtin.orpo",
    "kto": "gemkit.builtin.kto",
    "pro": "gemkit.builtin.pro",
    "rm": "gemkit.builtin.reward_model",
    "grpo": "gemkit.builtin.grpo",
    "rm-ppo": "gemkit.builtin.ppo",
}


@dataclass
class LoadRecord:
    """Where a plugin came from and whether it loaded."""

    name: str
    distribution: str
    version: str | None
    module: str
    error: str | None = None
    blocked: bool = False


def _env_list(var: str) -> list[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return [part.strip() for part in raw.split(",") if part.strip()]


class GemkitPluginManager(pluggy.PluginManager):
    """A ``PluginManager`` that remembers the :class:`LoadRecord` of every plugin it saw."""

    def __init__(self) -> None:
        super().__init__("gemkit")
        self.add_hookspecs(hookspecs)
        self.load_records: dict[str, LoadRecord] = {}
        #: kind -> Registry, filled by :func:`gemkit.registry.registry` on first use
        self.registries: dict[str, Any] = {}

    def record_for(self, plugin_name: str) -> LoadRecord | None:
        return self.load_records.get(plugin_name)


def build_plugin_manager(
    *,
    load_entrypoints: bool = True,
    allow: list[str] | None = None,
    blocked: list[str] | None = None,
    strict: bool | None = None,
) -> GemkitPluginManager:
    """A fresh manager with the built-ins and (optionally) the installed entry-point plugins.

    ``allow``/``blocked`` default to ``GEMKIT_PLUGINS``/``GEMKIT_DISABLE_PLUGINS``.
    """
    pm = GemkitPluginManager()
    allow = _env_list("GEMKIT_PLUGINS") if allow is None else allow
    blocked = (_env_list("GEMKIT_DISABLE_PLUGINS") or []) if blocked is None else blocked
    strict = os.environ.get("GEMKIT_STRICT_PLUGINS") == "1" if strict is None else strict
    version = metadata.version("gemkit") if _is_installed("gemkit") else None
    for name in blocked:
        pm.set_blocked(name)
    for name, module_name in BUILTIN_PLUGINS.items():
        record = LoadRecord(name, "gemkit", version, module_name, blocked=name in blocked)
        pm.load_records[name] = record
        if not record.blocked:
            # A built-in that fails to import is a bug in gemkit: let it raise.
            pm.register(importlib.import_module(module_name), name=name)
    if load_entrypoints:
        _load_entrypoints(pm, allow, blocked, strict)
    return pm


def _is_installed(dist: str) -> bool:
    try:
        metadata.distribution(dist)
        return True
    except metadata.PackageNotFoundError:
        return False


def _load_entrypoints(pm: GemkitPluginManager, allow: list[str] | None, blocked: list[str], strict: bool) -> None:
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist else "unknown"
        record = LoadRecord(ep.name, dist, ep.dist.version if ep.dist else None, ep.value)
        if ep.name in pm.load_records:
            existing = pm.load_records[ep.name]
            record.error = (f"plugin name '{ep.name}' is already used by distribution "
                            f"'{existing.distribution}'; rename the entry point")
            pm.load_records[f"{ep.name} ({dist})"] = record
            if strict:
                raise PluginError(ep.name, dist, record.error)
            continue
        pm.load_records[ep.name] = record
        if ep.name in blocked or (allow is not None and ep.name not in allow and dist not in allow):
            record.blocked = True
            continue
        try:
            pm.register(ep.load(), name=ep.name)
            pm.check_pending()
        except Exception as exc:  # a broken third-party plugin must never take the host down
            if pm.get_plugin(ep.name) is not None:
                pm.unregister(name=ep.name)
            record.error = f"{type(exc).__name__}: {exc}"
            if strict:
                raise PluginError(ep.name, dist, f"failed to load: {record.error}") from exc


_DEFAULT_PM: GemkitPluginManager | None = None


def get_plugin_manager() -> GemkitPluginManager:
    """The process-wide manager (built on first use); tests build their own with build_plugin_manager."""
    global _DEFAULT_PM
    if _DEFAULT_PM is None:
        _DEFAULT_PM = build_plugin_manager()
    return _DEFAULT_PM


def set_plugin_manager(pm: GemkitPluginManager | None) -> None:
    """Replace (or with None, reset) the process-wide manager; its registries go with it."""
    global _DEFAULT_PM
    _DEFAULT_PM = pm
