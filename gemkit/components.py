"""A component chosen inside another component's config: its name and its options, typed, in one value.

SEGA picks a scorer and a mapping, GRPO a reward, PRO a scorer. Each such field holds a
:class:`ComponentSpec`: the registered name plus the component's ``Config`` dataclass, built and
checked when the outer config is built (so ``gemkit bench`` catches ``scorer.lamda`` before the
first cell runs, and the objective builds its scorer from the object it was handed).

The user writes it in any of these forms, which all mean the same spec::

    scorer: entropy                              # name only, default options
    scorer: {name: entropy, lam: 0.5}            # name and options (YAML, --set scorer.lam=0.5)
    scorer: {name: entropy, options: {lam: 0.5}} # the form config.json records
    scorer_options: {lam: 0.5}                   # the older spelling, still read

Options given without a name apply to the field's default component.
"""
from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from gemkit.config import config_from_dict
from gemkit.errors import ConfigError, GemkitError
from gemkit.registry import registry


@dataclass(frozen=True)
class ComponentSpec:
    """A registered component of :attr:`kind`: ``name`` and its built ``options`` (its Config)."""

    kind: ClassVar[str]
    #: names served by the owning module itself, not by the registry (e.g. GRPO's ``answer`` reward)
    local: ClassVar[dict[str, type]] = {}

    name: str
    options: Any

    @classmethod
    def component_class(cls, name: str) -> type:
        return cls.local[name] if name in cls.local else registry(cls.kind).get(name).cls

    @classmethod
    def make(cls, name: str, options: dict[str, Any] | None = None, *, where: str = "config",
             key: str | None = None) -> ComponentSpec:
        """Resolve ``name`` and build its Config from ``options``; problems name the dotted ``key``."""
        component = cls.component_class(name)
        prefix = f"{key or cls.kind}."
        built = config_from_dict(component.Config, options or {}, where=f"{where}: {cls.kind} '{name}'",
                                 prefix=prefix)
        return cls(name, built)

    @classmethod
    def from_option(cls, value: Any, default: ComponentSpec | None, *, where: str, key: str) -> ComponentSpec:
        """The spec for a config value in any of the forms of the module docstring."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            return cls.make(value, where=where, key=key)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: '{key}' expects a {cls.kind} name or a mapping of name and options, "
                              f"got {value!r}")
        options = dict(value)
        name = options.pop("name", None) or (default.name if default is not None else None)
        if name is None:
            raise ConfigError(f"{where}: '{key}' needs a name, e.g. {key}=NAME")
        nested = options.pop("options", None) or {}
        if not isinstance(nested, dict):
            raise ConfigError(f"{where}: '{key}.options' expects a mapping, got {nested!r}")
        return cls.make(str(name), {**nested, **options}, where=where, key=key)

    def build(self) -> Any:
        """The component instance, made from the already-built options."""
        return self.component_class(self.name)(self.options)

    def to_option(self) -> dict[str, Any]:
        """The flat form ``{"name": ..., **options}``, which :meth:`from_option` reads back."""
        return {"name": self.name, **dataclasses.asdict(self.options)}


@dataclass(frozen=True)
class ScorerSpec(ComponentSpec):
    kind = "scorer"


@dataclass(frozen=True)
class MappingSpec(ComponentSpec):
    kind = "mapping"


def spec_field(spec: type[ComponentSpec], name: str, help: str) -> Any:
    """A dataclass field holding ``spec`` of component ``name`` with its default options."""
    return field(default_factory=lambda: spec.make(name), metadata={"help": help, "component": spec.kind})


def component_problems(kind: str, name: str, options: dict[str, Any],
                       tolerate: Callable[[str], bool] = lambda problem: False) -> list[str]:
    """Every problem with component ``name`` of ``kind`` configured by ``options``, nested
    components included (an unknown name, ``scorer.lamda``, a bad value), without building it.

    ``tolerate`` drops problems the caller fixes itself (bench trains rm-ppo's reward model when
    none is given). Lets a run check all its components before the first one starts.
    """
    try:
        registry(kind).get(name).make_config(options)
    except ConfigError as exc:
        return [problem for problem in exc.problems if not tolerate(problem)]
    except GemkitError as exc:
        return [str(exc)]
    return []


def resolve_component_fields(config: Any) -> None:
    """In a Config's ``__post_init__``: fields holding a component that were given a name or a
    mapping (a Config made directly in Python, ``SegaConfig(scorer="entropy")``) become specs."""
    hints = typing.get_type_hints(type(config))
    for item in dataclasses.fields(config):
        spec, value = hints.get(item.name), getattr(config, item.name)
        if isinstance(spec, type) and issubclass(spec, ComponentSpec) and not isinstance(value, spec):
            default = item.default_factory() if isinstance(value, dict) and "name" not in value else None  # type: ignore[misc]
            setattr(config, item.name, spec.from_option(value, default, where=type(config).__name__, key=item.name))
