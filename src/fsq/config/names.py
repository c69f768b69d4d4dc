"""The shipped configs and presets, found by name, path or shipped path (torch-free).

The YAML files live in the checkout's ``configs/`` folder, which the wheel carries as ``fsq/configs``
(``pyproject.toml`` maps the one onto the other). A config item on the command line is, in this order:

- an existing file (``my.yaml``, ``configs/tokenizer/fsq_mnist.yaml`` from the checkout);
- a path relative to the shipped configs (``tokenizer/fsq_mnist.yaml``; a leading ``configs/`` is dropped);
- a name: ``fsq_mnist`` is ``<stage>/fsq_mnist.yaml`` when the stage has one, else ``presets/fsq_mnist.yaml``.
  Without a stage, a name found in several folders is an error that lists the candidates.

So ``fsq train tokenizer fsq_mnist smoke`` reads ``tokenizer/fsq_mnist.yaml`` and then ``presets/smoke.yaml``.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fsq.config.engine import ConfigError, read_yaml

PRESETS = "presets"
SUFFIXES = (".yaml", ".yml")


def configs_root() -> Path:
    """The shipped configs: ``fsq/configs`` of an installed wheel, else the source checkout's ``configs/``."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "configs"
    return packaged if packaged.is_dir() else package.parents[1] / "configs"


@dataclass(frozen=True)
class ShippedConfig:
    """One shipped YAML file: its name (file stem), the stage it records, its path and its first comment line."""

    name: str
    stage: str
    path: Path
    summary: str

    @property
    def relative(self) -> str:
        """The path below the shipped configs (``tokenizer/fsq_mnist.yaml``)."""
        return self.path.relative_to(configs_root()).as_posix()


def _summary(path: Path) -> str:
    """What the file is, from its leading comments, which form blocks: a ``Command:`` or ``Expected:`` line, or any
    line that starts with a capital letter, begins one; a line starting otherwise (lower case, a digit, a bracket)
    continues the block above (a sentence wrapped over lines). The summary is the ``Expected:`` block when it
    describes the config (it starts with "a", "an" or "the"), else the first other block past the ``Command:``
    (presets, starting points), else the ``Expected:`` block (what was measured); whole blocks, never a fragment."""
    blocks: list[str] = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            continue
        text = line.lstrip("#").strip()
        if not text:
            continue
        if blocks and not text[0].isupper():
            blocks[-1] += " " + text
        else:
            blocks.append(text)
    expected = [b.removeprefix("Expected:").strip() for b in blocks if b.startswith("Expected:")]
    plain = [b for b in blocks if not b.startswith(("Command:", "Expected:"))]
    if expected and expected[0].lower().startswith(("a ", "an ", "the ")):
        summary = expected[0]
    else:
        summary = (plain or expected or blocks or [""])[0]
    return summary[:1].upper() + summary[1:]


def shipped_configs() -> list[ShippedConfig]:
    """Every shipped config and preset, sorted by folder and name."""
    root = configs_root()
    found = []
    for path in sorted(p for suffix in SUFFIXES for p in root.rglob(f"*{suffix}")):
        stage = str(read_yaml(path).get("stage", ""))
        found.append(ShippedConfig(path.stem, stage, path, _summary(path)))
    return sorted(found, key=lambda c: (c.path.parent.name != PRESETS, c.relative))


def _candidates(name: str, stage: str | None) -> list[Path]:
    root = configs_root()
    if stage is not None:
        folders = [root / stage, root / PRESETS]
        return [p for folder in folders for p in (folder / f"{name}{s}" for s in SUFFIXES) if p.is_file()][:1]
    return [c.path for c in shipped_configs() if c.name == name]


def resolve_config(item: str | Path, stage: str | None = None) -> Path:
    """The config file ``item`` names: an existing path, a path below the shipped configs, or a name (see the
    module docstring). A :class:`ConfigError` lists what exists when nothing matches or a name is ambiguous."""
    given = Path(item)
    if given.is_file():
        return given
    root = configs_root()
    if len(given.parts) > 1:
        parts = given.parts[1:] if given.parts[0] == "configs" else given.parts
        shipped = root.joinpath(*parts)
        options = [shipped] if shipped.suffix in SUFFIXES else [shipped.with_name(shipped.name + s) for s in SUFFIXES]
        found = [o for o in options if o.is_file()]  # tokenizer/fsq_mnist(.yaml)
        if found and not given.is_absolute():
            return found[0]
        raise ConfigError(f"config file not found: {item} (neither here nor below the shipped configs {root})")
    name = given.stem if given.suffix in SUFFIXES else str(item)
    found = _candidates(name, stage)
    if len(found) == 1:
        return found[0]
    if found:
        listed = ", ".join(p.relative_to(root).as_posix() for p in found)
        raise ConfigError(
            f"config name {name!r} is ambiguous: {listed}; give its stage (`fsq train STAGE {name}`, `fsq config "
            f"--stage STAGE {name}`) or one of these paths"
        )
    valid = sorted({c.name for c in shipped_configs() if stage is None or c.stage == stage})
    where = f"{stage} config or preset" if stage else "shipped config"
    raise ConfigError(f"no file or {where} named {name!r}; valid names: {valid} (see `fsq configs list`)")


def resolve_configs(items: Sequence[str | Path], stage: str | None = None) -> list[Path]:
    """Resolve each item; without ``stage``, the stage the first file records resolves the names after it."""
    paths: list[Path] = []
    for item in items:
        paths.append(resolve_config(item, stage))
        if stage is None:
            recorded = read_yaml(paths[0]).get("stage")
            stage = str(recorded) if recorded is not None else None
    return paths


def copy_config(item: str, dest: str | Path, stage: str | None = None) -> Path:
    """Copy a shipped config to ``dest`` (a folder: existing or ending in ``/``; else the new file's path) to edit
    it; never overwrites."""
    source = resolve_config(item, stage)
    target = Path(dest)
    if target.is_dir() or str(dest).endswith("/"):
        target = target / source.name
    if target.exists():
        raise ConfigError(f"{target} exists already; remove it or name another destination")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target
