"""Component registries filled through the ``register_*`` hooks.

``registry("scorer").get("entropy")`` returns the :class:`Entry` for a name; ``.build(options)``
makes an instance from a dict of options checked against the component's ``Config`` dataclass, or
from a Config already built (the CLI builds it once and hands the object on).
Each hook implementation is called on its own, so every component is tagged with the plugin (and
distribution) that registered it, and a plugin that raises while registering is reported by name
instead of breaking the others.
"""
from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass, field, is_dataclass
from typing import Any

from gemkit.config import config_from_dict
from gemkit.errors import DuplicateComponentError, PluginError, UnknownComponentError
from gemkit.manager import get_plugin_manager

#: kind -> (registration hook, methods the component class must define)
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "scorer": ("register_scorers", ("score",)),
    "mapping": ("register_mappings", ("__call__",)),
    "objective": ("register_objectives", ("compute_loss",)),
    "benchmark": ("register_benchmarks", ("load", "evaluate")),
    "judge": ("register_judges", ("compare",)),
}


@dataclass
class Entry:
    """One registered component and where it came from."""

    kind: str
    name: str
    cls: type
    plugin: str
    distribution: str
    version: str | None
    aliases: tuple[str, ...] = ()

    @property
    def description(self) -> str:
        return str(getattr(self.cls, "description", "")).strip()

    def make_config(self, options: Any = None) -> Any:
        """The component's Config from a dict of options; an already-built Config is handed on as is."""
        if isinstance(options, self.cls.Config):
            return options
        return config_from_dict(self.cls.Config, options or {}, where=f"{self.kind} '{self.name}'")

    def build(self, options: Any = None) -> Any:
        """Instantiate the component with its Config (built from ``options`` when they are a dict)."""
        return self.cls(self.make_config(options))


@dataclass
class Registry:
    """All components of one kind."""

    kind: str
    entries: dict[str, Entry] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    plugin_errors: dict[str, str] = field(default_factory=dict)

    def names(self) -> list[str]:
        return sorted(self.entries)

    def get(self, name: str) -> Entry:
        key = self.aliases.get(name, name)
        if key in self.entries:
            return self.entries[key]
        known = sorted(set(self.entries) | set(self.aliases))
        close = difflib.get_close_matches(name, known, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        broken = ""
        if self.plugin_errors:
            broken = " (" + "; ".join(f"plugin '{p}' failed: {e}" for p, e in self.plugin_errors.items()) + ")"
        raise UnknownComponentError(
            f"Unknown {self.kind} '{name}'.{hint} Available: {', '.join(self.names()) or 'none'}.{broken}"
        )

    def __contains__(self, name: str) -> bool:
        return name in self.entries or name in self.aliases


def _check_component(kind: str, cls: Any, required: tuple[str, ...]) -> str:
    if not inspect.isclass(cls):
        raise TypeError(f"register() expects a class, got {cls!r}")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{kind} class {cls.__qualname__} needs a non-empty string attribute 'name'")
    if not isinstance(getattr(cls, "description", None), str):
        raise TypeError(f"{kind} '{name}' needs a one-line string attribute 'description'")
    config = getattr(cls, "Config", None)
    if not (inspect.isclass(config) and is_dataclass(config)):
        raise TypeError(f"{kind} '{name}' needs a dataclass attribute 'Config'")
    missing = [m for m in required if not callable(getattr(cls, m, None))]
    if missing:
        raise TypeError(f"{kind} '{name}' lacks {', '.join(m + '()' for m in missing)}")
    return name


def collect(pm: Any, kind: str) -> Registry:
    """Call every implementation of the kind's registration hook and build the registry."""
    hook_name, required = KINDS[kind]
    reg = Registry(kind)
    # Plugins that failed to import are named in "unknown name" errors too: the name a user typed
    # may be the component of exactly that plugin.
    reg.plugin_errors.update({n: r.error for n, r in getattr(pm, "load_records", {}).items() if r.error})
    hook = getattr(pm.hook, hook_name)
    for impl in hook.get_hookimpls():  # registration order (pluggy calls in reverse): built-ins first
        plugin_name = impl.plugin_name
        record = pm.record_for(plugin_name) if hasattr(pm, "record_for") else None
        dist = record.distribution if record else "unknown"
        version = record.version if record else None

        def register(cls: Any, *, aliases: tuple[str, ...] | list[str] = (), _plugin=plugin_name,
                     _dist=dist, _version=version) -> None:
            name = _check_component(kind, cls, required)
            for key in (name, *aliases):
                if key in reg.entries or key in reg.aliases:
                    owner = reg.entries[reg.aliases.get(key, key)]
                    raise DuplicateComponentError(
                        f"{kind} '{key}' registered twice: by plugin '{owner.plugin}' ({owner.distribution}) "
                        f"and by plugin '{_plugin}' ({_dist}); block one with GEMKIT_DISABLE_PLUGINS"
                    )
            reg.entries[name] = Entry(kind, name, cls, _plugin, _dist, _version, tuple(aliases))
            for alias in aliases:
                reg.aliases[alias] = name

        try:
            impl.function(*[{"register": register}[arg] for arg in impl.argnames])
        except DuplicateComponentError:
            raise
        except Exception as exc:  # reported by name; the other plugins keep working
            message = f"{type(exc).__name__}: {exc}"
            reg.plugin_errors[plugin_name] = message
            if record is not None and record.distribution != "gemkit":
                record.error = record.error or f"{hook_name}: {message}"
            elif record is not None:
                raise PluginError(plugin_name, dist, f"{hook_name} failed: {message}") from exc
    return reg


def registry(kind: str, pm: Any | None = None) -> Registry:
    """The registry of ``kind`` for ``pm`` (default: the process-wide plugin manager).

    The process-wide manager keeps its registries (``pm.registries``), so replacing the manager
    (:func:`gemkit.manager.set_plugin_manager`) also drops them; an explicit ``pm`` is collected anew.
    """
    if kind not in KINDS:
        raise UnknownComponentError(f"Unknown plugin kind '{kind}'. Kinds: {', '.join(KINDS)}.")
    if pm is not None:
        return collect(pm, kind)
    default = get_plugin_manager()
    if kind not in default.registries:
        default.registries[kind] = collect(default, kind)
    return default.registries[kind]


def blame(exc: BaseException, pm: Any | None = None) -> str | None:
    """Which third-party plugin raised ``exc``: "scorer 'x' from plugin 'p' (dist 1.0)", or None.

    Walks the traceback innermost frame first, matching methods of registered components (only
    registries already built, so nothing is loaded) and hook implementations of ``pm`` (default:
    the process-wide manager). Code from gemkit itself gives None. The CLI prints this above the
    traceback of an unexpected exception, so a plugin's bug is not mistaken for gemkit's.
    """
    default = get_plugin_manager()
    pm = default if pm is None else pm
    owners = {entry.cls: entry for reg in default.registries.values() for entry in reg.entries.values()}
    hooks = {impl.function.__code__: (name, impl.plugin_name)
             for name in dir(pm.hook) if not name.startswith("_")
             for impl in getattr(pm.hook, name).get_hookimpls()}
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        owner = frame.f_locals.get("self")
        entry = next((owners[c] for c in type(owner).__mro__ if c in owners), None) if owner is not None else None
        if entry is not None:
            what, plugin, dist, version = f"{entry.kind} '{entry.name}'", entry.plugin, entry.distribution, entry.version
        elif frame.f_code in hooks:
            hook_name, plugin = hooks[frame.f_code]
            record = pm.record_for(plugin) if hasattr(pm, "record_for") else None
            what, dist, version = f"hook {hook_name}", record.distribution if record else "unknown", \
                record.version if record else None
        else:
            continue
        if dist == "gemkit":
            return None
        return f"{what} from plugin '{plugin}' ({dist}{' ' + version if version else ''})"
    return None
