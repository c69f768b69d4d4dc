"""The torch-free half of the stage registry: stage name -> experiment schema (and its one-line description).

A stage's name is spelled once, in its schema: the ``stage`` field's default (``stage: Literal["x"] = "x"``), which
every config file and run dir records. :func:`fsq.stages.register` fills this table when it registers a stage
(schema, builders, evaluation, export, run loading; torch); the config package registers the schemas of the
built-in stages itself, so that configs load, ``fsq config`` works and the CLI knows its stage choices without
importing torch. Stages of other packages declare an entry point in the group ``fsq.stages`` (the object: their
:class:`~fsq.stages.base.Stage`); their names are known without loading them, and a stage is loaded (its module
imported) the first time its schema is asked for.
"""

from __future__ import annotations

import dataclasses
from importlib import metadata
from typing import Any

from fsq.config.engine import ConfigError

ENTRY_POINTS = "fsq.stages"  # the entry-point group of stages defined in other packages

SCHEMAS: dict[str, type] = {}  # stage name -> schema, in registration order


def schema_name(schema: type) -> str:
    """The stage name a schema records: the default of its ``stage`` field (a clear error when it has none)."""
    fields = {f.name: f for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else {}
    stage = fields.get("stage")
    if stage is None or not isinstance(stage.default, str) or not stage.default:
        raise ConfigError(
            f"{schema.__qualname__} is not a stage schema: it needs a `stage` field whose default is the stage's "
            'name (stage: Literal["name"] = "name")'
        )
    return stage.default


def description_of(schema: type) -> str:
    """What the stage is, in one line: the schema's ``description`` class attribute (empty when it has none)."""
    return str(getattr(schema, "description", "") or "")


def register_schema(schema: type) -> str:
    """Register a stage's schema under its name; returns the name. Registering the same schema again is a no-op;
    another schema under a registered name is refused."""
    name = schema_name(schema)
    known = SCHEMAS.get(name)
    if known is not None and known is not schema:
        raise ConfigError(
            f"stage {name!r} is registered already (schema {known.__module__}.{known.__qualname__}); "
            f"{schema.__module__}.{schema.__qualname__} cannot take its name"
        )
    SCHEMAS[name] = schema
    return name


def unregister_schema(name: str) -> None:
    """Remove a stage's schema (a test's or a plugin's); unknown names are ignored."""
    SCHEMAS.pop(name, None)


def entry_point_names() -> list[str]:
    """The stage names other packages declare in the ``fsq.stages`` entry-point group (nothing is imported)."""
    return sorted({ep.name for ep in metadata.entry_points(group=ENTRY_POINTS)})


def load_entry_point(name: str) -> Any:
    """The object the ``fsq.stages`` entry point ``name`` names (its module imported), or ``None`` when no
    package declares it. A failing import is a :class:`ConfigError` naming the entry point."""
    found = list(metadata.entry_points(group=ENTRY_POINTS, name=name))
    if not found:
        return None
    if len(found) > 1:
        values = ", ".join(sorted(ep.value for ep in found))
        raise ConfigError(f"stage {name!r} is declared by several {ENTRY_POINTS} entry points: {values}")
    try:
        return found[0].load()
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"stage {name!r}: its entry point {found[0].value!r} does not load: {error}") from error


def stage_names() -> list[str]:
    """Every stage name: the registered ones in registration order, then those other packages declare."""
    return [*SCHEMAS, *(n for n in entry_point_names() if n not in SCHEMAS)]


def schema_for(stage: str) -> type:
    """The experiment schema of a stage name (an entry-point stage is loaded on first use)."""
    if stage not in SCHEMAS:
        loaded = load_entry_point(stage)
        if loaded is not None:
            schema = getattr(loaded, "schema", loaded)  # a Stage, or the schema itself
            if schema_name(schema) != stage:
                raise ConfigError(f"the {ENTRY_POINTS} entry point {stage!r} names the stage {schema_name(schema)!r}")
            register_schema(schema)
    if stage not in SCHEMAS:
        raise ConfigError(f"unknown stage {stage!r}; valid stages: {sorted(stage_names())}")
    return SCHEMAS[stage]
