"""Validation of a bundle's files against each other: ``config.json``'s sections against the classes they build, the
weights against the model those sections describe.

A bundle is data anyone may edit or forge. Loading one (``Tokenizer.from_pretrained``, ``MaskGITPipeline`` and
``UViMPredictor.from_pretrained``, ``fsq tokenize``, ``fsq sample``, ``fsq predict``) checks, before anything is
built or run:

* every section (``spec``, ``sampling``, ``oracle``, ``lm``) holds only known keys, each of its declared type
  (:func:`build_section`), and the class it builds accepts the values (a nested section, such as the quantizer
  family's, is checked by its own class);
* the safetensors file holds exactly the model's tensors, each of the model's shape (:func:`load_into`).

Every refusal is a ``ValueError`` naming the file, the key or tensor, and what was found and expected.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

T = TypeVar("T")
M = TypeVar("M", bound=nn.Module)
_SCALARS: dict[type, tuple[type, ...]] = {int: (int,), float: (int, float), bool: (bool,), str: (str,)}


class BundleError(ValueError):
    """A bundle whose files do not agree: an unknown or mistyped key, or weights that do not fit its model."""


def _type_error(hint: Any, value: Any) -> str | None:
    """Why ``value`` does not match the annotation ``hint`` (``None`` when it does, or the hint is not checked)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        return None if any(_type_error(o, value) is None for o in options) else f"{value!r} is not {hint}"
    if hint is type(None):
        return None if value is None else f"{value!r} is not None"
    if hint in _SCALARS:
        ok = isinstance(value, _SCALARS[hint]) and (hint is bool or not isinstance(value, bool))
        return None if ok else f"{value!r} is not a {hint.__name__}"
    if origin is list:
        if not isinstance(value, list):
            return f"{value!r} is not a list"
        (item,) = typing.get_args(hint) or (Any,)
        errors = [_type_error(item, v) for v in value]
        return next((e for e in errors if e), None)
    return None  # nested specs and anything else: checked by the class that takes them


def check_section(data: Any, cls: type, where: str, aliases: Mapping[str, str] | None = None) -> None:
    """Refuse a mapping that is not a valid set of keyword arguments of the dataclass ``cls``: unknown keys
    (``aliases``: older names it also accepts), values of another type, a nested section that is not a mapping."""
    if not isinstance(data, Mapping):
        raise BundleError(f"{where} is a {type(data).__name__}, not a mapping of {cls.__name__} settings")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known - set(aliases or {}))
    if unknown:
        raise BundleError(f"{where} has unknown key(s) {unknown}; {cls.__name__} takes {sorted(known)}")
    for key, value in data.items():
        if key not in known:
            continue
        hint = hints[key]
        if key in (aliases or {}) and not isinstance(value, Mapping):
            continue  # an older flat form the class still reads (fsq 0.1's ``quantizer: fsq``)
        if dataclasses.is_dataclass(hint) and isinstance(hint, type):
            choose = getattr(hint, "config_variant", None)  # a section whose class follows a value (quantizer.kind)
            if choose is not None and isinstance(value, Mapping):
                try:
                    hint, value = choose(value)
                except ValueError as error:
                    raise BundleError(f"{where}.{key}.{error}") from error
            check_section(value, hint, f"{where}.{key}")
            continue
        problem = _type_error(hint, value)
        if problem is None and isinstance(value, float) and not math.isfinite(value):
            problem = f"{value!r} is not finite"
        if problem is not None:
            raise BundleError(f"{where}.{key}: {problem}")


def build_section(
    path: Path, section: str, data: Any, cls: type, make: Callable[[], T], aliases: Mapping[str, str] | None = None
) -> T:
    """``make()`` (which builds from ``data``) once ``data`` passed :func:`check_section`; a value the class refuses
    becomes a :class:`BundleError` naming ``path`` and ``section``."""
    where = f"{path}: {section}"
    check_section(data, cls, where, aliases)
    try:
        return make()
    except (TypeError, ValueError, KeyError, RuntimeError, ZeroDivisionError) as error:
        raise BundleError(f"{where} cannot build a {cls.__name__}: {error}") from None


def load_into(model: M, tensors: Mapping[str, torch.Tensor], path: str | Path, described_by: str) -> M:
    """Load ``tensors`` (read from ``path``) into ``model`` once every name and shape matches; otherwise a
    :class:`BundleError` naming the file, the first differing tensors and their shapes (``described_by``: the file
    whose settings built the model, which was edited or belongs to other weights)."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in tensors.items()}
    missing = sorted(expected.keys() - found.keys())
    unexpected = sorted(found.keys() - expected.keys())
    shapes = [f"{k} is {found[k]} in the file, {expected[k]} for the model" for k in expected if k in found]
    shapes = [s for s, k in zip(shapes, [k for k in expected if k in found]) if found[k] != expected[k]]
    if missing or unexpected or shapes:
        parts = [f"{len(shapes)} tensor(s) of another shape ({'; '.join(shapes[:3])})"] if shapes else []
        parts += [f"missing {missing[:5]}"] if missing else []
        parts += [f"unexpected {unexpected[:5]}"] if unexpected else []
        raise BundleError(
            f"{path} does not fit the model {described_by} describes: {', '.join(parts)} ({Path(described_by).name} "
            "edited, or these weights belong to another model)"
        )
    model.load_state_dict(dict(tensors), strict=True)
    return model
