"""The wheel as a user gets it: built from this checkout, installed in a fresh virtual environment (no system site
packages), and used from an empty folder outside the repository.

- the core install (torch + numpy, the wheel with ``--no-deps``) runs the README's quantizer example, with none
  of the extras' modules present; the CLI then names the extra it needs;
- then, with ``[all]`` added to the same venv, ``fsq train tokenizer fsq_mnist smoke`` (configs found by name
  inside the wheel) trains, and ``fsq eval``, ``fsq config`` and ``fsq configs copy`` work there too;
- a newcomer's first hour: the README's blocks marked ``<!-- first-hour -->``, in order, from an empty folder
  (quantizer snippet, data prepare, smoke training, own-folder training, sampling, export, loading the export).

The venv installs torch from the local CPU wheel (``constraints-cpu.txt``): about 2 minutes in all on 2 cores.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
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


@dataclass
class Venv:
    """One venv for the whole module: what the core install did is recorded before any extra is installed, so
    the tests may run in any order."""

    root: Path
    python: Path
    fsq: Path
    core: dict[str, subprocess.CompletedProcess]


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Venv:
    """A plain venv (no system site packages) with the CPU torch of ``constraints-cpu.txt``, numpy and the wheel
    (``--no-deps``), and the core checks' results, taken from an empty folder."""
    root = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", root / "venv"], root)
    python, constraints = root / "venv" / "bin" / "python", ROOT / "constraints-cpu.txt"
    _run([python, "-m", "pip", "install", "-q", "-c", constraints, "torch==2.13.0", "numpy"], root)
    _run([python, "-m", "pip", "install", "-q", "--no-deps", wheel], root)
    work = root / "empty"
    work.mkdir()
    example = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)[0]
    script = root / "example.py"
    script.write_text(f"{example}\nimport fsq as package, fsq.compat.vector_quantize_pytorch\nprint(package.__file__)")
    names = "from fsq import VQ, CodebookUsage, ResidualFSQ, Tokenizer, levels_for_codebook_size"
    probe = f"import importlib.util as u; print([m for m in {OPTIONAL!r} if u.find_spec(m)])"
    core = {
        "optional": _run([python, "-c", probe], work),
        "example": _run([python, script], work),
        "names": _run([python, "-c", names], work),
        "cli": _run([root / "venv" / "bin" / "fsq", "configs", "list"], work, expect=2),
    }
    return Venv(root, python, root / "venv" / "bin" / "fsq", core)


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


def test_core_install_runs_the_readme_example(venv):
    assert venv.core["optional"].stdout.strip() == "[]"  # truly torch + numpy only
    out = venv.core["example"].stdout
    assert "usage_fraction" in out and str(venv.root / "venv") in out  # the installed wheel, not the checkout
    assert "pip install 'fsq-toolkit[train]'" in venv.core["cli"].stderr


def test_all_extras_train_by_name_from_an_empty_folder(wheel, venv, tmp_path):
    try:
        load_images("mnist", "test", limit=1)
    except SourceUnavailable as error:
        pytest.skip(str(error))
    requirement = f"fsq-toolkit[all] @ {wheel.as_uri()}"
    _run([venv.python, "-m", "pip", "install", "-q", "-c", ROOT / "constraints-cpu.txt", requirement], tmp_path)
    fsq_cli = venv.fsq
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


FIRST_HOUR = re.compile(r"<!-- first-hour -->\n```(bash|python)\n(.*?)```", re.S)


def first_hour_steps(readme: str) -> list[tuple[str, str]]:
    """The README's marked blocks as steps: each command line of a bash block (its ``# comment`` dropped), each
    python block whole."""
    steps: list[tuple[str, str]] = []
    for kind, body in FIRST_HOUR.findall(readme):
        if kind == "python":
            steps.append((kind, body))
            continue
        for line in body.splitlines():
            command = re.split(r"\s+#\s", line, maxsplit=1)[0].strip()
            if command:
                steps.append((kind, command))
    return steps


def test_first_hour_steps_cover_what_a_newcomer_does():
    steps = first_hour_steps((ROOT / "README.md").read_text())
    wanted = ["from fsq import FSQ", "fsq data prepare", "fsq train tokenizer", "data.source=my_images"]
    wanted += ["fsq sample", "fsq export", "from_pretrained"]
    found = [next((i for i, (_, text) in enumerate(steps) if w in text), None) for w in wanted]
    assert None not in found and found == sorted(found), list(zip(wanted, found))  # all there, in this order


def test_first_hour_from_the_readme_in_a_fresh_venv(wheel, venv, tmp_path):
    """The marked blocks run as printed, in order, in an empty folder outside the checkout, with the wheel and
    ``[all]``; the only thing the test adds is the user's own image folder the README's command names."""
    import numpy as np
    from PIL import Image

    try:
        load_images("mnist", "test", limit=1)
    except SourceUnavailable as error:
        pytest.skip(str(error))
    requirement = f"fsq-toolkit[all] @ {wheel.as_uri()}"
    _run([venv.python, "-m", "pip", "install", "-q", "-c", ROOT / "constraints-cpu.txt", requirement], tmp_path)
    work = tmp_path / "first_hour"
    (work / "my_images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(work / "my_images" / f"{i}.png")
    for i, (kind, text) in enumerate(first_hour_steps((ROOT / "README.md").read_text())):
        if kind == "python":
            script = tmp_path / f"step_{i}.py"
            script.write_text(text)
            _run([venv.python, script], work)
        else:
            argv = shlex.split(text)
            assert argv[0] == "fsq", text
            _run([venv.fsq, *argv[1:]], work)
    assert (work / "runs" / "fsq_mnist_smoke" / "config.yaml").is_file()
    assert (work / "runs" / "fsq_folder_256_smoke" / "config.yaml").is_file()
    assert (work / "samples" / "samples.npz").is_file() and (work / "my-tokenizer" / "README.md").is_file()
