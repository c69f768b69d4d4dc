"""Typed experiment configs (torch-free): the engine, the shared sections and one schema per stage.

``SCHEMAS`` maps a stage name to its schema (:mod:`fsq.config.registry`: the built-in stages' schemas are
registered here, others by :func:`fsq.stages.register` or an entry point); every config records its ``stage``, so
a run dir's ``config.yaml`` (and any config file that names its stage) says by itself which schema reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fsq import rundir
from fsq.config.engine import (
    RESUMABLE_CHANGES,
    RESUMABLE_PREFIXES,
    SCHEMA_VERSION,
    ConfigError,
    config_hash,
    differing_keys,
    dump_yaml,
    flatten,
    from_dict,
    load_config,
    merge,
    parse_override,
    read_yaml,
    resume_hash,
    spec_from,
    to_dict,
    with_overrides,
)
from fsq.config.maskgit import TRANSFORMER_PRESETS, MaskGITExperiment
from fsq.config.names import configs_root, resolve_config, resolve_configs
from fsq.config.registry import SCHEMAS, description_of, register_schema, schema_for, schema_name, stage_names
from fsq.config.sections import LoopConfig, OptimConfig, QuantizerConfig, TrainConfig
from fsq.config.tokenizer import MODEL_PRESETS, TokenizerExperiment
from fsq.config.uvim import ORACLE_PRESETS, UViMExperiment

for _schema in (TokenizerExperiment, MaskGITExperiment, UViMExperiment):  # the built-in stages, torch-free
    register_schema(_schema)


def config_path(path: str | Path, stage: str | None = None) -> Path:
    """A config file as given when it exists, else the shipped one of that relative path or name.

    Studies name their configs relative to the project (``configs/uvim/depth_fsq.yaml``), so they work from any
    working directory, in a source checkout and from an installed wheel (:mod:`fsq.config.names`).
    """
    return resolve_config(path, stage)


def stage_of(data: dict[str, Any], where: str) -> str:
    """The ``stage`` a config mapping records (a clear error when it records none)."""
    stage = data.get("stage")
    if stage is None:
        raise ConfigError(f"{where} records no 'stage' (add `stage: {' | '.join(stage_names())}` at its top)")
    schema_for(stage)
    return str(stage)


def load_stage_config(files: Sequence[str | Path], overrides: Sequence[str] = (), stage: str | None = None) -> Any:
    """A config of any stage: ``stage`` when given, else the one the first file records."""
    if stage is None:
        if not files:
            raise ConfigError("give a config file (or the stage) to know which schema to use")
        stage = stage_of(read_yaml(files[0]), str(files[0]))
    return load_config(schema_for(stage), files, overrides)


def read_run_config(run_dir: str | Path) -> Any:
    """The config a run dir holds, read by the schema of the stage it records."""
    path = Path(run_dir) / rundir.CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run dir (no {rundir.CONFIG})")
    data = read_yaml(path)
    return from_dict(schema_for(stage_of(data, str(path))), data)


__all__ = [
    "MODEL_PRESETS",
    "ORACLE_PRESETS",
    "RESUMABLE_CHANGES",
    "RESUMABLE_PREFIXES",
    "SCHEMAS",
    "SCHEMA_VERSION",
    "TRANSFORMER_PRESETS",
    "ConfigError",
    "LoopConfig",
    "MaskGITExperiment",
    "OptimConfig",
    "QuantizerConfig",
    "TokenizerExperiment",
    "TrainConfig",
    "UViMExperiment",
    "config_hash",
    "config_path",
    "configs_root",
    "description_of",
    "differing_keys",
    "dump_yaml",
    "flatten",
    "from_dict",
    "load_config",
    "load_stage_config",
    "merge",
    "parse_override",
    "read_run_config",
    "read_yaml",
    "register_schema",
    "resolve_config",
    "resolve_configs",
    "resume_hash",
    "schema_for",
    "schema_name",
    "spec_from",
    "stage_names",
    "stage_of",
    "to_dict",
    "with_overrides",
]
