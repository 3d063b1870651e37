"""Dataclass configs from dicts, YAML and ``key=value`` flags, with errors that list valid keys.

Keys may be dotted at any depth (``scorer.lam=0.5``, ``method_options.sega.k=4``): they set the
option inside the nested group. A field holding a component (a :class:`gemkit.components.ComponentSpec`)
takes the component's name (``mapping=softmax``) and its options (``mapping.temperature=0.5``) alike.
"""
from __future__ import annotations

import dataclasses
import difflib
import typing
from typing import Any

from gemkit.errors import ConfigError, GemkitError


def _coerce(value: Any, annotation: Any, key: str, where: str) -> Any:
    """Convert CLI strings to the field's declared type; leave already-typed values alone."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        if value is None and type(None) in args:
            return None
        if isinstance(value, str) and value.lower() in ("none", "null") and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: bad value for '{key}'")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: '{key}' must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise ConfigError(f"{where}: '{key}' expects true/false, got {value!r}")
    if annotation in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{where}: '{key}' expects {annotation.__name__}, got {value!r}")
        try:
            number = annotation(value) if not isinstance(value, str) or annotation is float else int(value, 10)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: '{key}' expects {annotation.__name__}, got {value!r}") from None
        if annotation is int and isinstance(value, float) and value != int(value):
            raise ConfigError(f"{where}: '{key}' expects int, got {value!r}")
        return number
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: '{key}' expects a string, got {value!r}")
        return value
    if origin in (list, tuple):
        items = value.split(",") if isinstance(value, str) else list(value)
        inner = args[0] if args else Any
        coerced = [_coerce(v, inner, key, where) if inner is not Any else v for v in items]
        return coerced if origin is list else tuple(coerced)
    return value


def set_option(tree: dict[str, Any], key: str, value: Any) -> None:
    """Set the dotted ``key`` in the nested ``tree`` of options, in place.

    A group first given as a name (``scorer: entropy``) and then given options (``scorer.lam``)
    becomes ``{"name": "entropy", "lam": ...}``; a name given to a group that has options sets its
    ``name``. A mapping given to a mapping merges into it.
    """
    *parents, last = key.split(".")
    node = tree
    for depth, part in enumerate(parents):
        child = node.get(part)
        if child is None:
            child = {}
        elif isinstance(child, str):
            child = {"name": child}
        elif hasattr(child, "to_option"):  # an already-built component spec
            child = child.to_option()
        elif not isinstance(child, dict):
            path = ".".join(parents[:depth + 1])
            raise ConfigError(f"cannot set '{key}': '{path}' is {child!r}, not a group of options")
        node[part] = child = dict(child)
        node = child
    current = node.get(last)
    if isinstance(current, dict) and isinstance(value, dict):
        node[last] = {**current, **value}
    elif isinstance(current, dict) and isinstance(value, str):
        node[last] = {**current, "name": value}
    else:
        node[last] = value


def expand_dotted(options: dict[str, Any]) -> dict[str, Any]:
    """``{"scorer.lam": 1}`` -> ``{"scorer": {"lam": 1}}``, applied key by key in order."""
    tree: dict[str, Any] = {}
    for key, value in options.items():
        set_option(tree, str(key), value)
    return tree


def _normalise(key: str) -> str:
    head, dot, tail = key.partition(".")
    return head.replace("-", "_") + dot + tail


def _component_spec(annotation: Any) -> Any:
    """The ComponentSpec class a field is annotated with (its ``from_option`` reads the value), or None."""
    return annotation if isinstance(annotation, type) and hasattr(annotation, "from_option") else None


def config_from_dict(cls: type, options: dict[str, Any], *, where: str = "config", prefix: str = "") -> Any:
    """Build dataclass ``cls`` from ``options``; every problem is reported at once.

    ``prefix`` is the dotted path of this config inside an outer one (``"scorer."``), so that a
    problem names the key as the user typed it.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    problems: list[str] = []
    kwargs: dict[str, Any] = {}
    # Only this config's own key is normalised: a dotted tail may hold names such as ``rm-ppo``.
    options = expand_dotted({_normalise(str(k)): v for k, v in options.items()})
    for name in fields:
        # The older spelling of a component's options, ``scorer_options: {...}`` next to ``scorer: NAME``.
        legacy = f"{name}_options"
        if _component_spec(hints.get(name)) and legacy in options and legacy not in fields:
            value = options.pop(legacy)
            if not isinstance(value, dict):
                problems.append(f"{where}: '{prefix}{legacy}' expects a mapping of options, got {value!r}")
                continue
            for key, option in value.items():
                set_option(options, f"{name}.{key}", option)
    for key, value in options.items():
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f" Did you mean '{prefix}{close[0]}'?" if close else ""
            problems.append(f"{where}: unknown option '{prefix}{key}'.{hint} Valid options: {', '.join(fields) or 'none'}")
            continue
        spec = _component_spec(hints.get(key))
        try:
            if spec is not None:
                factory = fields[key].default_factory
                default = factory() if isinstance(value, dict) and "name" not in value and \
                    factory is not dataclasses.MISSING else None
                kwargs[key] = spec.from_option(value, default, where=where, key=f"{prefix}{key}")
            else:
                kwargs[key] = _coerce(value, hints.get(key, Any), f"{prefix}{key}", where)
        except ConfigError as exc:
            problems.extend(exc.problems)
        except GemkitError as exc:  # an unknown component name, with its did-you-mean
            problems.append(f"{where}: '{prefix}{key}': {exc}")
    if problems:
        raise ConfigError(problems)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def parse_key_values(pairs: list[str] | None) -> dict[str, str]:
    """``["lam=0.5", "scorer.lam=0.5"]`` -> ``{"lam": "0.5", "scorer.lam": "0.5"}`` (keys stay dotted)."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ConfigError(f"expected KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out

