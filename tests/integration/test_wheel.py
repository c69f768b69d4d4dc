"""The wheel as a user gets it: built from this checkout, installed in fresh virtual environments (no system site
packages), and used from an empty folder outside the repository.

- the core install (torch + numpy, the wheel with ``--no-deps``) runs the README's quantizer example, with none
  of the extras' modules present; the CLI then names the extra it needs;
- with ``[all]``, ``fsq train tokenizer fsq_mnist smoke`` (configs found by name inside the wheel) trains, and
  ``fsq eval``, ``fsq config`` and ``fsq configs copy`` work there too.

Each venv installs torch from the local CPU wheel (``constraints-cpu.txt``), so this takes a few minutes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import fsq
from fsq.data import SourceUnavailable, load_images

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
OPTIONAL = ["yaml", "safetensors", "tqdm", "tensorboard", "PIL", "scipy", "matplotlib", "skimage", "sklearn"]


def _run(command: list[str | Path], cwd: Path, expect: int = 0) -> subprocess.CompletedProcess:
    """A command with the environment of a user's shell: no PYTHONPATH pointing into this checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    done = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == expect, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built offline from the checkout's files (copied, so no build folder lands in the repository)."""
    tree = tmp_path_factory.mktemp("tree")
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "src", tree / "src", ignore=ignore)
    shutil.copytree(ROOT / "configs", tree / "configs", ignore=ignore)
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", dist, tree], tree)
    (built,) = dist.glob("fsq_toolkit-*.whl")
    return built


def _venv(path: Path) -> Path:
    """A plain venv with the CPU torch of ``constraints-cpu.txt`` and numpy; returns its python."""
    _run([sys.executable, "-m", "venv", path], path.parent)
    python = path / "bin" / "python"
    _run([python, "-m", "pip", "install", "-q", "-c", ROOT / "constraints-cpu.txt", "torch==2.13.0", "numpy"], path)
    return python


def test_wheel_holds_configs_py_typed_and_core_dependencies(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = Parser().parsestr(archive.read(metadata).decode())
    shipped = {f"fsq/configs/{p.relative_to(ROOT / 'configs').as_posix()}" for p in (ROOT / "configs").rglob("*.yaml")}
    assert len(shipped) >= 17 and shipped <= names, sorted(shipped - names)
    assert "fsq/py.typed" in names
    assert meta["Name"] == "fsq-toolkit" and meta["Version"] == fsq.__version__
    core = [r for r in meta.get_all("Requires-Dist") if "extra ==" not in r]
    assert sorted(re.split(r"[<>=;\s]", r)[0] for r in core) == ["numpy", "torch"]


def test_core_install_runs_the_readme_example(wheel, tmp_path):
    python = _venv(tmp_path / "venv")
    _run([python, "-m", "pip", "install", "-q", "--no-deps", wheel], tmp_path)
    probe = f"import importlib.util as u; print([m for m in {OPTIONAL!r} if u.find_spec(m)])"
    assert _run([python, "-c", probe], tmp_path).stdout.strip() == "[]"  # truly torch + numpy only

    work = tmp_path / "empty"
    work.mkdir()
    readme = (ROOT / "README.md").read_text()
    example = re.findall(r"```python\n(.*?)```", readme, flags=re.S)[0]
    script = tmp_path / "example.py"
    script.write_text(f"{example}\nimport fsq as package, fsq.compat.vector_quantize_pytorch\nprint(package.__file__)")
    out = _run([python, script], work).stdout
    assert "usage_fraction" in out and str(tmp_path / "venv") in out  # the installed wheel, not the checkout

    _run([python, "-c", "from fsq import VQ, CodebookUsage, ResidualFSQ, Tokenizer, levels_for_codebook_size"], work)
    cli = _run([tmp_path / "venv" / "bin" / "fsq", "configs", "list"], work, expect=2)
    assert "pip install 'fsq-toolkit[train]'" in cli.stderr


def test_all_extras_train_by_name_from_an_empty_folder(wheel, tmp_path):
    try:
        load_images("mnist", "test", limit=1)
    except SourceUnavailable as error:
        pytest.skip(str(error))
    python = _venv(tmp_path / "venv")
    constraints = ROOT / "constraints-cpu.txt"
    _run([python, "-m", "pip", "install", "-q", "-c", constraints, f"fsq-toolkit[all] @ {wheel.as_uri()}"], tmp_path)
    fsq_cli = tmp_path / "venv" / "bin" / "fsq"
    work = tmp_path / "empty"
    work.mkdir()
    assert not work.resolve().is_relative_to(ROOT.resolve())

    trained = _run([fsq_cli, "train", "tokenizer", "fsq_mnist", "smoke", "train.threads=1", "--run-dir", "X"], work)
    assert "run dir: X" in trained.stdout and (work / "X" / "config.yaml").is_file()
    _run([fsq_cli, "eval", "X"], work)
    assert "key" in _run([fsq_cli, "config", "--schema", "tokenizer"], work).stdout
    assert "stage: uvim" in _run([fsq_cli, "config", "depth_fsq", "smoke_uvim"], work).stdout
    _run([fsq_cli, "configs", "copy", "fsq_mnist", ".", "--stage", "tokenizer"], work)
    assert (work / "fsq_mnist.yaml").read_text() == (ROOT / "configs" / "tokenizer" / "fsq_mnist.yaml").read_text()
    listed = _run([fsq_cli, "configs", "list"], work).stdout
    assert "site-packages" in listed and "presets/smoke.yaml" in listed
