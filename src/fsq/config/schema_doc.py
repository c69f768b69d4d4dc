"""Every key of a stage's schema with its type, default and meaning (``fsq config --schema STAGE``; torch-free).

The meaning is the trailing ``# comment`` of the field in its dataclass (the source is read with ``ast`` and
``tokenize``; a subclass field without one takes its parent's); defaults are those of the schema built with no
arguments, so section defaults a stage overrides (MaskGIT's optimizer) show the stage's own values.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import io
import json
import textwrap
import tokenize
import types
import typing
from dataclasses import dataclass
from typing import Any

from fsq.config.engine import Length, Pattern, Range


@dataclass(frozen=True)
class KeyDoc:
    """One leaf key of a schema: dotted key, readable type, default (JSON) and meaning."""

    key: str
    type: str
    default: str
    meaning: str


@functools.cache
def _own_comments(cls: type) -> dict[str, str]:
    """Field name -> the comment on the field's lines, for the fields ``cls`` declares itself."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # no source (frozen app, stripped install): no meanings
        return {}
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments.setdefault(token.start[0], token.string.lstrip("#").strip())
    (node,) = ast.parse(source).body
    found = {}
    for stmt in getattr(node, "body", []):
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            lines = range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1)
            text = next((comments[n] for n in lines if n in comments), "")
            if text:
                found[stmt.target.id] = text
    return found


def _meaning(cls: type, name: str) -> str:
    for klass in cls.__mro__:
        if dataclasses.is_dataclass(klass) and name in _own_comments(klass):
            return _own_comments(klass)[name]
    return ""


def _bound(constraint: Any) -> str:
    if isinstance(constraint, Range):
        if constraint.min is not None and constraint.max is not None:
            left, right = "(" if constraint.open_min else "[", ")" if constraint.open_max else "]"
            return f"in {left}{constraint.min:g}, {constraint.max:g}{right}"
        if constraint.min is not None:
            return f"{'>' if constraint.open_min else '>='} {constraint.min:g}"
        return f"{'<' if constraint.open_max else '<='} {constraint.max:g}"
    if isinstance(constraint, Length):
        return f"({constraint.min}+ items)"
    if isinstance(constraint, Pattern):
        return f"({constraint.meaning.split(':')[0]})"
    return ""


def type_text(tp: Any) -> str:
    """A short readable form of an annotation: ``int >= 1``, ``list[int >= 2] (1+ items)``, ``cosine|constant``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return " ".join([type_text(args[0]), *filter(None, map(_bound, args[1:]))])
    if origin is typing.Literal:
        return "|".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join("None" if a is type(None) else type_text(a) for a in args)
    if origin is list:
        return f"list[{type_text(args[0])}]"
    return getattr(tp, "__name__", str(tp))


def describe(schema: type) -> list[KeyDoc]:
    """Every leaf key of ``schema`` (an experiment dataclass), in declaration order."""
    presets = getattr(schema, "presets", {})
    rows: list[KeyDoc] = []

    def walk(cls: type, value: Any, prefix: str) -> None:
        hints = typing.get_type_hints(cls, include_extras=True)
        for field in dataclasses.fields(cls):
            key, current, tp = f"{prefix}{field.name}", getattr(value, field.name), hints[field.name]
            if dataclasses.is_dataclass(tp):  # a section whose class follows a value (quantizer.kind): the default's
                walk(type(current) if dataclasses.is_dataclass(current) else typing.cast(type, tp), current, f"{key}.")
                continue
            meaning = _meaning(cls, field.name)
            if field.name == "preset" and prefix[:-1] in presets:
                meaning = f"{meaning} (one of: {', '.join(presets[prefix[:-1]])})".strip()
            rows.append(KeyDoc(key, type_text(tp), json.dumps(current), meaning))

    walk(schema, schema(), "")
    return rows


def variant_keys(schema: type) -> list[str]:
    """For each section whose class follows a value (``quantizer.kind``): one line per variant with its own keys
    and this schema's defaults for them (``vq: codebook_size=1024, dim=256, recipe="maskgit"``)."""
    lines: list[str] = []
    default = schema()
    for field in dataclasses.fields(schema):
        current = getattr(default, field.name)
        variants = getattr(type(current), "config_variants", None)
        if variants is None:
            continue
        tag = type(current).variant_key
        lines.append(f"{field.name}.{tag} picks the other keys of `{field.name}` (this schema's defaults):")
        own = {getattr(d, tag): d for d in getattr(schema, "section_defaults", {}).get(field.name, ())}
        for name, cls in variants().items():
            section = current if getattr(current, tag) == name else own.get(name) or cls()
            values = [
                f"{f.name}={json.dumps(getattr(section, f.name))}" for f in dataclasses.fields(cls) if f.name != tag
            ]
            lines.append(f"  {name}: {', '.join(values)}")
    return lines


def format_schema(schema: type) -> str:
    """``describe(schema)`` as an aligned table: key, type, default, meaning; then :func:`variant_keys`."""
    rows = [KeyDoc("key", "type", "default", "meaning"), *describe(schema)]
    widths = [max(len(getattr(r, f)) for r in rows) for f in ("key", "type", "default")]
    lines = [
        f"{r.key:<{widths[0]}}  {r.type:<{widths[1]}}  {r.default:<{widths[2]}}  {r.meaning}".rstrip() for r in rows
    ]
    variants = variant_keys(schema)
    return "\n".join(lines + ([""] + variants if variants else [])) + "\n"
