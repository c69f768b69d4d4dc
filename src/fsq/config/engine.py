"""The config engine: nested dataclasses are the schema, YAML files merge left to right, dotted overrides.

``load_config(TokenizerExperiment, ["configs/tokenizer/fsq_mnist.yaml", "configs/presets/smoke.yaml"],
["train.steps=20", "quantizer.levels=[8,5,5,5]"])`` merges the dataclass defaults, each file in order and then
the overrides, and returns a frozen dataclass. Unknown keys, wrong types and values outside a ``Literal``
annotation's choices raise :class:`ConfigError` listing what is valid. A schema's ``presets`` class attribute
(``{"model": {name: values}}``) lets ``model.preset`` name values that sit under the keys given explicitly; its
``stage`` field names the stage a config belongs to. A section class with ``config_variant`` (the quantizer: its
``kind`` picks a registered family's section) is read as the class it names; a later layer naming another variant
replaces the section, and a schema's ``section_defaults`` give its own defaults per variant. Stage-agnostic: the
schemas live beside it.
This module imports no torch, so configs can be checked and reports written without it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import MISSING, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

SCHEMA_VERSION = 1

T = TypeVar("T", bound="DataclassInstance")  # a config dataclass

# Keys a resumed run may change (everything else must match the run dir's config).
RESUMABLE_CHANGES = (
    "train.steps",
    "train.oracle_steps",
    "train.lm_steps",
    "train.log_every",
    "train.checkpoint_every",
    "train.keep_last",
    "train.threads",
    "train.dist_timeout_minutes",
)
RESUMABLE_PREFIXES = ("eval.", "train.progress", "train.eval_at_end")


class ConfigError(ValueError):
    """A config file or override that does not fit the schema."""


# ------------------------------------------------------------------------------------------------ constraints
@dataclass(frozen=True)
class Range:
    """``Annotated[int | float, Range(...)]``: inclusive bounds (``open_min`` / ``open_max`` make them strict)."""

    min: float | None = None
    max: float | None = None
    open_min: bool = False
    open_max: bool = False

    def check(self, value: Any, where: str) -> None:
        low = self.min is None or (value > self.min if self.open_min else value >= self.min)
        high = self.max is None or (value < self.max if self.open_max else value <= self.max)
        if not (low and high and value == value):  # NaN fails every bound
            left = "(" if self.open_min else "["
            right = ")" if self.open_max else "]"
            lo = "-inf" if self.min is None else f"{self.min:g}"
            hi = "inf" if self.max is None else f"{self.max:g}"
            raise ConfigError(f"{where}: {value!r} is outside {left}{lo}, {hi}{right}")


@dataclass(frozen=True)
class Length:
    """``Annotated[list[...], Length(min=1)]``: a list of at least ``min`` items."""

    min: int = 1

    def check(self, value: Any, where: str) -> None:
        if len(value) < self.min:
            raise ConfigError(f"{where}: needs at least {self.min} item(s), got {value!r}")


@dataclass(frozen=True)
class Pattern:
    """``Annotated[str, Pattern(regex, meaning)]``: the whole string must match ``regex``."""

    regex: str
    meaning: str

    def check(self, value: Any, where: str) -> None:
        if re.fullmatch(self.regex, value) is None:
            raise ConfigError(f"{where}: {value!r} is not {self.meaning}")


# ----------------------------------------------------------------------------------------------- conversion
def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` (int, float, str, bool, list[X], X | None, dataclass)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        base, *constraints = typing.get_args(tp)
        value = _convert(value, base, where)
        for constraint in constraints:
            try:
                constraint.check(value, where)
            except ConfigError:
                raise
            except ValueError as error:  # a constraint defined outside the engine (torch-free library sections)
                raise ConfigError(str(error)) from error
        return value
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{where}: {value!r} is not one of {list(choices)}")
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(value, option, where)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if errors else f"{where}: got {value!r}")
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, tuple):
            value = list(value)
        if isinstance(value, str) and "," in value:  # what users type: levels=8,5,5,5 as [8,5,5,5]
            value = [_scalar(part, where) for part in value.split(",")]
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of {sorted(f.name for f in dataclasses.fields(tp))}")
        tp, value = _variant(tp, value, where)
        return from_dict(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {_type_name(tp)}")


def _variant(tp: type, value: dict[str, Any], where: str) -> tuple[type, dict[str, Any]]:
    """A section whose class depends on its values (its ``config_variant(value) -> (class, value)``, e.g. the
    quantizer's ``kind``): that class; any other section: itself."""
    choose = getattr(tp, "config_variant", None)
    if choose is None:
        return tp, value
    try:
        chosen: tuple[type, dict[str, Any]] = choose(value)
    except ValueError as error:
        raise ConfigError(f"{where}.{error}" if where else str(error)) from error
    return chosen


def _section_base(cls: type, name: str, default: Any, value: dict[str, Any]) -> dict[str, Any]:
    """What a partial section ``value`` of field ``name`` is merged onto: the schema's default section, or for a
    section of another variant (``quantizer.kind`` changed) the schema's default of that variant among its
    ``section_defaults[name]`` (sections), else just the variant (the variant's class defaults)."""
    tag = getattr(type(default), "variant_key", None)
    if tag is None or value.get(tag, getattr(default, tag)) == getattr(default, tag):
        return to_dict(default)
    given = value[tag]
    for other in getattr(cls, "section_defaults", {}).get(name, ()):
        if getattr(other, tag) == given:
            return to_dict(other)
    return {tag: given}


def _scalar(text: str, where: str) -> Any:
    """One item of a comma-separated list value, read as YAML (``8`` -> 8, ``0.5`` -> 0.5, ``a`` -> 'a')."""
    try:
        return yaml.safe_load(text.strip()) if text.strip() else ""
    except yaml.YAMLError as error:
        raise ConfigError(f"{where}: list item {text!r} is not valid YAML: {error}") from error


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build dataclass ``cls`` from a (nested) dict; unknown keys and wrong types raise :class:`ConfigError`."""
    hints = typing.get_type_hints(cls, include_extras=True)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"unknown key(s) {[prefix + k for k in unknown]}; valid keys under '{where or '<root>'}': {names}"
        )
    defaults = {f.name: f.default_factory() for f in dataclasses.fields(cls) if f.default_factory is not MISSING}
    kwargs = {}
    for name, value in data.items():
        default = defaults.get(name)
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            value = merge(_section_base(cls, name, default, value), value)  # keys not given keep the schema's default
        kwargs[name] = _convert(value, hints[name], f"{where}.{name}" if where else name)
    return cls(**kwargs)


def to_dict(config: Any) -> dict[str, Any]:
    """The plain nested dict of a config dataclass (lists stay lists)."""
    return dataclasses.asdict(config)


# ------------------------------------------------------------------------------------------ files, overrides
def merge_layer(cls: type, data: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    """:func:`merge` of one more config layer (a file, an override) onto ``data``, except that a layer naming
    another variant of a section (``quantizer.kind: lfq`` over a file's FSQ section) replaces that section: the
    earlier layers' keys belonged to the other variant."""
    hints = typing.get_type_hints(cls, include_extras=True)
    out = dict(data)
    for name, section in layer.items():
        tag = getattr(hints.get(name), "variant_key", None)
        old = out.get(name)
        if tag is not None and isinstance(section, dict) and isinstance(old, dict) and tag in section:
            if tag in old and old[tag] != section[tag]:
                out[name] = {}
    return merge(out, layer)


def merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Recursive merge: mappings merge key by key, anything else in ``overlay`` replaces."""
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read one YAML config file (safe loader); an empty file is an empty mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def parse_override(text: str) -> dict[str, Any]:
    """``"train.steps=20"`` -> ``{"train": {"steps": 20}}``; the value is parsed as YAML (``[8,5]``, ``null``)."""
    key, sep, raw = text.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r} is not of the form section.key=value")
    try:
        value: Any = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as error:
        raise ConfigError(f"override {text!r}: value is not valid YAML: {error}") from error
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def _apply_presets(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """Overlay each section's named preset (``section.preset``) under the keys given explicitly."""
    for section, presets in getattr(cls, "presets", {}).items():
        values = data.get(section)
        if isinstance(values, dict) and values.get("preset") is not None:
            name = values["preset"]
            if name not in presets:
                raise ConfigError(f"{section}.preset: unknown preset {name!r}; valid presets: {sorted(presets)}")
            data = dict(data, **{section: merge(presets[name], values)})
    return data


def check_stage(cls: type, data: dict[str, Any], where: str = "config") -> None:
    """A config that names its stage must name the schema's own (a MaskGIT file is no tokenizer config)."""
    expected = getattr(cls, "stage", None)
    given = data.get("stage", expected)
    if expected is not None and given != expected:
        raise ConfigError(f"{where} is a {given!r} config, not a {expected!r} one (its 'stage' key)")


PREVIOUS = "{previous}"


def expand_previous(part: dict[str, Any], data: dict[str, Any], defaults: dict[str, Any], where: str) -> dict[str, Any]:
    """A file's string values with ``{previous}`` replaced by the value they override (the files before it, else
    the schema's default): a preset says ``name: "{previous}_smoke"`` and works on top of any config. A key whose
    previous value is empty is left out (the preset alone keeps the default: ``fsq config smoke_maskgit``)."""
    skip = object()

    def expand(value: Any, key: str, before: Any) -> Any:
        if isinstance(value, dict):
            inner = before if isinstance(before, dict) else {}
            items = {k: expand(v, f"{key}.{k}", inner.get(k, defaults.get(f"{key}.{k}"))) for k, v in value.items()}
            return {k: v for k, v in items.items() if v is not skip}
        if isinstance(value, str) and PREVIOUS in value:
            if before is not None and not isinstance(before, str):
                raise ConfigError(f"{where}: {key}={value!r}: {PREVIOUS} stands for a string, {key} was {before!r}")
            return value.replace(PREVIOUS, before) if before else skip
        return value

    expanded = {k: expand(v, k, data.get(k, defaults.get(k))) for k, v in part.items()}
    return {k: v for k, v in expanded.items() if v is not skip}


def load_config(
    cls: type[T], files: Sequence[str | Path] = (), overrides: Sequence[str] = (), base: dict[str, Any] | None = None
) -> T:
    """Defaults <- ``base`` <- each file in order <- each override; validated into ``cls``.

    A string value of a file may hold ``{previous}``: the value it replaces (see :func:`expand_previous`)."""
    data: dict[str, Any] = dict(base or {})
    for path in files:
        part = read_yaml(path)
        check_stage(cls, part, str(path))
        if PREVIOUS in json.dumps(part):
            part = expand_previous(part, data, flatten(to_dict(cls())), str(path))
        data = merge_layer(cls, data, part)
    for text in overrides:
        data = merge_layer(cls, data, parse_override(text))
    data = _apply_presets(cls, data)
    data.setdefault("schema_version", SCHEMA_VERSION)
    if data["schema_version"] != SCHEMA_VERSION:
        raise ConfigError(f"schema_version {data['schema_version']} is not supported (this fsq reads {SCHEMA_VERSION})")
    return from_dict(cls, data)


def with_overrides(config: T, overrides: list[str]) -> T:
    """A copy of ``config`` with dotted ``key=value`` overrides applied, validated like :func:`load_config`.

    An override that changes a section's variant (``quantizer.kind=vq``) starts that section afresh: its other
    keys are the given ones over the schema's defaults for the new variant.
    """
    data = to_dict(config)
    given: dict[str, Any] = {}
    for text in overrides:
        given = merge(given, parse_override(text))
    for name, section in given.items():
        current = getattr(config, name, None)
        tag = getattr(type(current), "variant_key", None)
        if (
            tag is not None
            and isinstance(section, dict)
            and section.get(tag, getattr(current, tag)) != getattr(current, tag)
        ):
            data[name] = {}
    return from_dict(type(config), merge(data, given))


def dump_yaml(config: Any) -> str:
    """The config as YAML text (what a run dir's ``config.yaml`` holds)."""
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def config_hash(config: Any, ignore: tuple[str, ...] = (), ignore_prefixes: tuple[str, ...] = ()) -> str:
    """A short stable hash of the config, leaving out the dotted keys in ``ignore`` / under ``ignore_prefixes``."""
    flat = {k: v for k, v in flatten(to_dict(config)).items() if k not in ignore and not k.startswith(ignore_prefixes)}
    return hashlib.sha256(json.dumps(flat, sort_keys=True).encode()).hexdigest()[:16]


def spec_from(spec_cls: type[T], section: Any, **given: Any) -> T:
    """A model spec built from a config section by field name: each spec field comes from ``given`` or the section.

    A spec field found in neither is an error (no silent spec default), so a model knob cannot drift away from
    its config key; section keys the spec lacks (``preset``) are left out.
    """
    names = [f.name for f in dataclasses.fields(spec_cls)]
    values = {f.name: getattr(section, f.name) for f in dataclasses.fields(section) if f.name in names}
    values.update(given)
    missing = [n for n in names if n not in values]
    if missing:
        raise ConfigError(f"{spec_cls.__name__} fields {missing} come from no config key")
    return spec_cls(**values)


def resume_hash(config: Any) -> str:
    """The hash a checkpoint records: the fields that differ from the schema's defaults, except those a resumed
    run may change (``RESUMABLE_*``). Keys a later version adds with a default leave it unchanged, so its runs
    stay loadable."""
    defaults = flatten(to_dict(type(config)()))
    # a section of another variant than the default's (a VQ quantizer): its own keys compare with its own defaults
    variants = {}
    for f in dataclasses.fields(config):
        tag = getattr(type(getattr(config, f.name)), "variant_key", None)
        if tag is not None:
            variants[f.name] = {tag: getattr(getattr(config, f.name), tag)}
    own = flatten(to_dict(from_dict(type(config), variants))) if variants else defaults
    defaults = {**own, **defaults}
    ignore = tuple(k for k, v in flatten(to_dict(config)).items() if k in defaults and defaults[k] == v)
    return config_hash(config, RESUMABLE_CHANGES + ignore, RESUMABLE_PREFIXES)


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def differing_keys(a: Any, b: Any) -> list[str]:
    """Dotted keys whose values differ between two configs of the same schema."""
    fa, fb = flatten(to_dict(a)), flatten(to_dict(b))
    return sorted(k for k in set(fa) | set(fb) if fa.get(k) != fb.get(k))
