"""Dataclass configs from dicts, YAML and ``key=value`` flags, with errors that list valid keys."""
from __future__ import annotations

import dataclasses
import difflib
import typing
from typing import Any

from gemkit.errors import ConfigError


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


def config_from_dict(cls: type, options: dict[str, Any], *, where: str = "config") -> Any:
    """Build dataclass ``cls`` from ``options``; every problem is reported at once."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    problems: list[str] = []
    kwargs: dict[str, Any] = {}
    for key, value in options.items():
        key_norm = key.replace("-", "_")
        if key_norm not in fields:
            close = difflib.get_close_matches(key_norm, list(fields), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            problems.append(f"{where}: unknown option '{key}'.{hint} Valid options: {', '.join(fields) or 'none'}")
            continue
        try:
            kwargs[key_norm] = _coerce(value, hints.get(key_norm, Any), key_norm, where)
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def parse_key_values(pairs: list[str] | None) -> dict[str, str]:
    """``["lam=0.5", "rho=0.1"]`` -> ``{"lam": "0.5", "rho": "0.1"}``."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ConfigError(f"expected KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out

