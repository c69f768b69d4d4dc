"""Bad inputs, one table per area, each row with its expected outcome: a clear error naming the problem (or the
documented recovery), never a silently wrong result, a raw traceback or a write outside the run dir.

Image folders have their own table in ``tests/data/test_bad_inputs.py``.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from fsq import FSQ, VQ, app, distributed, rundir
from fsq import checkpoint as ckpt
from fsq.cli import main
from fsq.config import ConfigError, TokenizerExperiment, load_config
from fsq.data import SourceUnavailable, load_images

ROOT = Path(__file__).parents[1]
FSQ_MNIST = ROOT / "configs/tokenizer/fsq_mnist.yaml"
SMOKE = ROOT / "configs/presets/smoke.yaml"

# ---- the quantizer API ----------------------------------------------------------------------------------------
QUANTIZER_ROWS: list[tuple[str, Callable[[], object], type[Exception], str]] = [
    ("no levels", lambda: FSQ([]), ValueError, "levels must not be empty"),
    ("a level below 2", lambda: FSQ([1, 5]), ValueError, "levels\\[0\\] = 1 is < 2"),
    ("a fractional level", lambda: FSQ([8.5, 5]), ValueError, "is not an integer"),
    ("unknown variant", lambda: FSQ([8, 5], variant="nope"), ValueError, "unknown FSQ variant 'nope'"),
    ("wrong channel count", lambda: FSQ([8, 5, 5, 5])(torch.zeros(2, 3)), ValueError, "has 3 channels"),
    ("NaN input", lambda: FSQ([8, 5, 5, 5])(torch.full((2, 4), float("nan"))), ValueError, "non-finite"),
    ("Inf input", lambda: FSQ([8, 5, 5, 5])(torch.full((2, 4), float("inf"))), ValueError, "non-finite"),
    ("integer input", lambda: FSQ([8, 5, 5, 5])(torch.zeros(2, 4, dtype=torch.long)), TypeError, "floating-point"),
    ("channel axis out of range", lambda: FSQ([8, 5], channel_axis=5)(torch.zeros(2, 2)), ValueError, "out of range"),
    ("index too large", lambda: FSQ([8, 5]).indices_to_codes(torch.tensor([40])), ValueError, "out of range"),
    ("negative index", lambda: FSQ([8, 5]).indices_to_codes(torch.tensor([-1])), ValueError, "out of range"),
    ("float indices", lambda: FSQ([8, 5]).indices_to_codes(torch.tensor([1.0])), TypeError, "integer tensor"),
    ("empty VQ codebook", lambda: VQ(0, 4), ValueError, "codebook_size must be a positive integer"),
    ("unknown VQ recipe", lambda: VQ(16, 4, recipe="x"), ValueError, "unknown VQ recipe 'x'"),
    ("VQ input of another width", lambda: VQ(16, 4)(torch.zeros(2, 3)), ValueError, "expected dim=4"),
]


@pytest.mark.parametrize("call, error, match", [r[1:] for r in QUANTIZER_ROWS], ids=[r[0] for r in QUANTIZER_ROWS])
def test_quantizer_api(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---- configs and the command line -----------------------------------------------------------------------------
CONFIG_ROWS = [  # (override, the error's words): every value is checked at load, before anything is written
    ("train.log_every=0", "train.log_every: 0 is outside \\[1, inf\\]"),
    ("train.checkpoint_every=0", "train.checkpoint_every: 0 is outside"),
    ("train.steps=-1", "train.steps: -1 is outside"),
    ("train.threads=-1", "train.threads: -1 is outside"),
    ("eval.batch_size=0", "eval.batch_size: 0 is outside"),
    ("model.filters=0", "model.filters: 0 is outside"),
    ("model.num_groups=7", "model.num_groups=7 must divide every width"),
    ("quantizer.levels=[1,5]", "quantizer.levels\\[0\\]: 1 is outside"),
    ("quantizer.levels=[]", "quantizer.levels: needs at least 1"),
    (
        "quantizer.kind=pq",
        "quantizer.kind: 'pq' is not one of \\['fsq', 'residual_fsq', 'vq', 'residual_vq', 'lfq', 'bsq'\\]",
    ),
    ("quantizer.num_stages=2", "unknown key\\(s\\) \\['quantizer.num_stages'\\]; valid keys under 'quantizer': "),
    ("optim.beta2=1.0", "optim.beta2: 1.0 is outside \\[0, 1\\)"),
    ("optim.lr=nan", "optim.lr: nan is outside"),
    ("train.ema_decay=1.5", "train.ema_decay: 1.5 is outside"),
    ("train.precision=fp8", "train.precision: 'fp8' is not one of"),
    ("data.on_error=ignore", "data.on_error: 'ignore' is not one of"),
    ("name=../../etc/x", "name: '../../etc/x' is not a run name"),
    ("name=/tmp/abs", "name: '/tmp/abs' is not a run name"),
    ("name=", "name: '' is not a run name"),
    ("name=.hidden", "is not a run name"),
    ("train.stepz=3", "unknown key\\(s\\) \\['train.stepz'\\]"),
    ("train.steps=2.5", "train.steps: expected an integer"),
]


@pytest.mark.parametrize("override, match", CONFIG_ROWS, ids=[r[0] for r in CONFIG_ROWS])
def test_config_values_are_checked_at_load(override, match, tmp_path, monkeypatch, capsys):
    with pytest.raises(ConfigError, match=match):
        load_config(TokenizerExperiment, [FSQ_MNIST], [override])
    monkeypatch.chdir(tmp_path)  # the CLI refuses it with exit code 2 and writes nothing anywhere
    assert main(["train", "tokenizer", str(FSQ_MNIST), override]) == 2
    assert "fsq: error:" in capsys.readouterr().err and not any(tmp_path.iterdir())


# ---- run dirs, checkpoints, concurrency -----------------------------------------------------------------------
def _cfg(*overrides: str) -> TokenizerExperiment:
    return load_config(
        TokenizerExperiment,
        [FSQ_MNIST, SMOKE],
        ["train.threads=1", "data.train_limit=64", "data.eval_limit=16", "train.eval_at_end=false", *overrides],
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished 4-step MNIST run (checkpoints at steps 2 and 4)."""
    try:
        load_images("mnist", "test", limit=1)
    except SourceUnavailable as error:
        pytest.skip(str(error))
    run = tmp_path_factory.mktemp("runs") / "run"
    app.train(_cfg(), run)
    return run


def _copy(run: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(run, tmp_path / "copy"))


def _second_trainer(run: Path, tmp_path: Path) -> None:
    with rundir.RunDirLock(run, "training"):  # as another trainer holding the run dir
        with pytest.raises(rundir.RunDirBusy, match=r"is in use by pid \d+ on .* \(training"):
            app.train(_cfg("train.steps=6"), run)
        with pytest.raises(rundir.RunDirBusy, match="before evaluating it"):
            app.evaluate(run)
    app.train(_cfg("train.steps=6"), run)  # released (also when its process dies: flock): it resumes


def _fewer_steps(run: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="checkpoint of step 4, past this config's train steps \\(2\\)"):
        app.train(_cfg("train.steps=2"), run)
    assert not (run / "eval" / "step_000002.json").exists()


def _edited_config(run: Path, tmp_path: Path) -> None:
    text = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(text.replace("eval_limit: 16", "eval_limit: 8"))
    with pytest.raises(ckpt.CheckpointMismatch, match="different config .*config.yaml was edited since"):
        app.evaluate(run)
    assert not (run / "eval").exists()


def _unexpected_files(run: Path, tmp_path: Path) -> None:
    (run / "checkpoints" / "notes.txt").write_text("mine")
    (run / "checkpoints" / "step_abc").mkdir()
    (run / "checkpoints" / ".step_000010.tmp").mkdir()  # a write interrupted by a kill
    (run / "checkpoints" / "step_000099").mkdir()  # no state.json: never finished
    assert [p.name for p in ckpt.checkpoint_dirs(run)] == ["step_000002", "step_000004"]
    assert app.evaluate(run)["step"] == 4


def _failed_start(run: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    with pytest.raises(ValueError, match="no-such-folder"):
        app.train(_cfg("data.source=no-such-folder"), fresh)
    assert not fresh.exists()  # nothing left behind: the corrected command starts cleanly
    app.train(_cfg("train.steps=2"), fresh)
    assert (fresh / "config.yaml").is_file()


def _disk_full(run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_space(tensors, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt, "save_safetensors_atomic", no_space)
    expected = r"cannot write checkpoint .*step_000006.*MiB free.*previous checkpoint is intact"
    with pytest.raises(OSError, match=expected):
        app.train(_cfg("train.steps=6"), run)
    assert [p.name for p in ckpt.checkpoint_dirs(run)] == ["step_000004"]  # pruned to make room, newest intact
    assert not list((run / "checkpoints").glob(".*.tmp"))
    monkeypatch.undo()
    app.train(_cfg("train.steps=6"), run)  # space again: it resumes from step 4


RUN_DIR_ROWS = [
    ("a second trainer, then an evaluation, of a run being written", _second_trainer),
    ("resuming with fewer steps than the checkpoint", _fewer_steps),
    ("config.yaml edited after training", _edited_config),
    ("unexpected files in checkpoints/", _unexpected_files),
    ("a start that fails before training", _failed_start),
]


@pytest.mark.integration
@pytest.mark.parametrize("case", [r[1] for r in RUN_DIR_ROWS], ids=[r[0] for r in RUN_DIR_ROWS])
def test_run_dirs_and_checkpoints(case, trained, tmp_path):
    case(_copy(trained, tmp_path), tmp_path)


@pytest.mark.integration
def test_disk_full_names_the_path_and_free_space(trained, tmp_path, monkeypatch):
    _disk_full(_copy(trained, tmp_path), tmp_path, monkeypatch)


def test_a_pickle_with_code_is_refused_without_unsafe_advice(tmp_path):
    class Boom:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "optimizer.pt"
    torch.save({"x": Boom()}, path)
    with pytest.raises(ckpt.CheckpointError, match="refused and nothing in it was executed") as refused:
        ckpt.load_torch_safe(path)
    assert "weights_only=False" not in str(refused.value) and "will likely succeed" not in str(refused.value)


# ---- distributed ----------------------------------------------------------------------------------------------
def test_process_group_timeout_is_minutes_not_half_an_hour(monkeypatch):
    seen = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda **kwargs: seen.update(kwargs))
    monkeypatch.setattr(distributed, "_started", [])  # no group was started: the CLI tests after this return
    distributed.setup("cpu")
    assert seen["backend"] == "gloo" and seen["timeout"].total_seconds() == 600
    distributed.setup("cpu", timeout_minutes=0.5)
    assert seen["timeout"].total_seconds() == 30
    assert load_config(TokenizerExperiment, [], ["train.dist_timeout_minutes=2"]).train.dist_timeout_minutes == 2


def test_errors_under_torchrun_name_the_rank(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert main(["eval", str(tmp_path / "missing")]) == 2
    assert "fsq: error (rank 1 of 2):" in capsys.readouterr().err


@pytest.mark.integration
def test_uvim_refuses_to_retrain_its_oracle_under_a_trained_language_model(tmp_path):
    """Raising train.oracle_steps after Stage II trained would pair the LM with another oracle: refused."""
    from fsq.config import UViMExperiment

    files = [ROOT / "configs/uvim/depth_fsq.yaml", ROOT / "configs/presets/smoke_uvim.yaml"]
    cfg = load_config(UViMExperiment, files, ["train.threads=1", "train.eval_at_end=false"])
    app.train(cfg, tmp_path)
    longer = load_config(UViMExperiment, files, ["train.threads=1", "train.eval_at_end=false", "train.oracle_steps=6"])
    with pytest.raises(ConfigError, match="language model was trained on the codes of the oracle at its step 4"):
        app.train(longer, tmp_path)


def test_the_uvim_oracle_takes_the_configured_fsq_variant():
    from fsq.config import UViMExperiment
    from fsq.stages.uvim import build_task, oracle_spec

    cfg = load_config(UViMExperiment, [ROOT / "configs/uvim/depth_fsq.yaml"], ["quantizer.variant=symmetric"])
    assert oracle_spec(cfg, build_task(cfg)).quantizer.variant == "symmetric"  # it was silently dropped before


# ---- loader workers and the run-dir lock ----------------------------------------------------------------------
_TRAINER = """
import os, sys, time
from fsq import rundir
from fsq.data.datasets import open_items
from fsq.data.loader import StepLoader
from fsq.data.transforms import ItemTransform

run, folder = sys.argv[1:3]
with rundir.RunDirLock(run, "training"):
    items = open_items(folder, "all")
    loader = StepLoader(items, ItemTransform("random", 8), global_batch=2, seed=0, stop=10**6, workers=2)
    loader.batch(0)
    print(open(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read(), flush=True)
    time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"  # a zombie is dead
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
def test_kill_9_of_a_trainer_frees_its_run_dir_and_workers_at_once(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    import numpy as np
    from PIL import Image

    (tmp_path / "images").mkdir()
    for i in range(4):
        Image.fromarray(np.full((12, 12, 3), 40 * i, np.uint8)).save(tmp_path / "images" / f"{i}.png")
    trainer = subprocess.Popen(
        [sys.executable, "-c", _TRAINER, str(tmp_path / "run"), str(tmp_path / "images")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        workers = [int(pid) for pid in trainer.stdout.readline().split()]  # type: ignore[union-attr]
        assert len(workers) == 2
    finally:
        trainer.send_signal(signal.SIGKILL)
        trainer.wait()
        trainer.stdout.close()  # type: ignore[union-attr]
    with rundir.RunDirLock(tmp_path / "run", "training"):  # at once: no orphan holds the lock
        pass
    deadline = time.monotonic() + 2  # the workers die with their parent (torch's own watchdog takes ~5 s)
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in workers)


# ---- counts and sizes: refused at parse or call, naming the option (a shard size of 0 looped forever) ----------
@pytest.mark.parametrize(
    "argv",
    [
        ["tokenize", "mnist-fsq", "--split", "test", "--out", "tok", "--shard-size", "0"],
        ["tokenize", "mnist-fsq", "--split", "test", "--out", "tok", "--shard-size", "-1"],
        ["tokenize", "mnist-fsq", "--out", "tok", "--shard-size", "ten"],
        ["sample", "mnist-maskgit-fsq", "--num", "0"],
        ["sample", "mnist-maskgit-fsq", "--steps", "-3"],
        ["eval", "runs/x", "--fid-samples", "-1"],
    ],
    ids=["shard-size-0", "shard-size-negative", "shard-size-text", "sample-num-0", "sample-steps", "fid-samples"],
)
def test_counts_on_the_command_line_are_checked_at_parse(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    option = next(a for a in argv if a.startswith("--") and a not in ("--split", "--out"))
    assert stopped.value.code == 2 and f"argument {option}: expected an integer >=" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"shard_size": 0}, r"shard_size \(--shard-size\) must be an integer >= 1, got 0"),
        ({"shard_size": -1}, r"shard_size \(--shard-size\) must be an integer >= 1, got -1"),
        ({"shard_size": 2.5}, r"shard_size \(--shard-size\) must be an integer >= 1, got 2.5"),
        ({"batch_size": 0}, r"batch_size must be an integer >= 1"),
        ({"limit": -1}, r"limit must be an integer >= 1"),
        ({"workers": -2}, r"workers must be an integer >= 0"),
    ],
)
def test_token_export_counts_are_checked_before_anything_runs(kwargs, match, tmp_path):
    from fsq.stages.tokens import export_tokens

    with pytest.raises(ValueError, match=match):
        export_tokens(tmp_path / "no-run", "test", tmp_path / "tok", **kwargs)
    assert not (tmp_path / "tok").exists()


def test_loader_counts_are_checked(tmp_path):
    from fsq.data.datasets import open_items
    from fsq.data.loader import StepLoader, iterate_batches
    from fsq.data.transforms import ItemTransform

    with pytest.raises(ValueError, match="limit must be an integer >= 1, got -1"):
        open_items(str(tmp_path), "all", limit=-1)  # a limit of -1 dropped the last image silently
    from fsq.data.datasets import MemoryItems
    from fsq.data.images import ImageSet

    items = MemoryItems(ImageSet(torch.zeros(3, 1, 4, 4, dtype=torch.uint8), None, None, "x", "train"))
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        next(iterate_batches(items, ItemTransform("center", 4), range(3), 0))
    with pytest.raises(ValueError, match="data.workers must be an integer >= 0, got -1"):
        StepLoader(items, ItemTransform("center", 4), global_batch=2, seed=0, stop=1, workers=-1)


# ---- JSON files: one checked reader, the path (and line, column) in every message ---------------------------------
def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _run_meta(tmp_path: Path, text: str) -> None:
    from fsq.training.state import write_run_dir

    _write(tmp_path / "meta.json", text)
    write_run_dir(_cfg(), tmp_path)


def _bundle(tmp_path: Path, text: str) -> None:
    from fsq import hub

    _write(tmp_path / "config.json", text)
    hub.read_bundle_config(tmp_path, "fsq-tokenizer")


JSON_ROWS = [  # (what reads it, the file's text, the error's words after the path)
    ("meta.json cut short", _run_meta, '{"runs": [{"argv"', r"meta.json \(the run's start record\) is not valid JSON"),
    ("meta.json without runs", _run_meta, '{"run": []}', r"meta.json \(the run's start record\) has no 'runs'"),
    ("meta.json runs not a list", _run_meta, '{"runs": 3}', r"'runs' must be an array, not int"),
    ("bundle config.json cut short", _bundle, '{"format": "fsq-tok', r"config.json \(the bundle's config\) is not"),
    (
        "bundle config.json not UTF-8",
        _bundle,
        b'{"format": "\xff"}',
        r"config.json \(the bundle's config\) is not UTF-8",
    ),
    (
        "checkpoint state.json",
        lambda t, x: ckpt.read_state(_write(t / "step_000002" / "state.json", x).parent, None, ""),
        '{"step": 2,',
        r"step_000002/state.json \(the checkpoint's state\) is not valid JSON.*line 1, column 12",
    ),
    (
        "metrics.jsonl line",
        lambda t, x: rundir.read_metrics(_write(t / "metrics.jsonl", x).parent),
        '{"step": 1}\n{"step": 2, "lo',
        r"metrics.jsonl line 2 \(training metrics\) is not valid JSON",
    ),
    (
        "an evaluation",
        lambda t, x: rundir.latest_eval(_write(t / "eval" / "step_000004.json", x).parents[1]),
        "[1, 2]",
        r"step_000004.json \(an evaluation\) must hold an object at its top level, not list",
    ),
]


@pytest.mark.parametrize("read, text, match", [r[1:] for r in JSON_ROWS], ids=[r[0] for r in JSON_ROWS])
def test_damaged_json_files_are_named(read, text, match, tmp_path):
    with pytest.raises((ValueError, ckpt.CheckpointError), match=match):
        read(tmp_path, text)


def test_damaged_hf_saved_datasets_are_named(tmp_path):
    datasets = pytest.importorskip("datasets")
    from fsq.data.datasets import open_items

    def saved(name):
        rows = {"image": [{"bytes": _png_bytes(i), "path": None} for i in range(40)], "label": list(range(40))}
        features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})
        folder = tmp_path / name
        datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows, features=features)}).save_to_disk(str(folder))
        return folder

    broken = saved("dict")
    (broken / "dataset_dict.json").write_text('{"splits": ["train"')
    with pytest.raises(ValueError, match=r"dict/dataset_dict.json \(a saved DatasetDict's split list\) is not valid"):
        open_items(f"hf:{broken}", "train")
    cut = saved("arrow")
    arrow = next((cut / "train").glob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[: arrow.stat().st_size // 2])
    with pytest.raises(ValueError, match=rf"cannot load the saved dataset: {arrow} is damaged or cut short"):
        open_items(f"hf:{cut}", "train")


def _png_bytes(value: int) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (value * 5, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


# JSON parsed from memory or deliberately tolerant, each with its reason; every other JSON read is read_json's
JSON_PARSES_ALLOWED = {
    "io.py": "the checked reader itself",
    "weights.py": "a safetensors header in memory; its errors name the file",
    "tracking.py": "metrics lines on resume: unreadable lines are dropped by design",
    "data/loader.py": "skip records the loader's own workers wrote, in memory",
    "studies/codebook.py": "json.loads(json.dumps(...)): a deep copy of presets",
    "studies/maskgit.py": "json.loads(json.dumps(...)): a deep copy of presets",
    "checkpoint.py": "json.loads(json.dumps(...)): a spec value normalised as JSON holds it (tuples as lists)",
}


def test_every_json_file_is_read_through_the_checked_reader():
    package = ROOT / "src" / "fsq"
    for path in sorted(package.rglob("*.py")):
        name = path.relative_to(package).as_posix()
        text = path.read_text()
        calls = [line.strip() for line in text.splitlines() if "json.load(" in line or "json.loads(" in line]
        if name in JSON_PARSES_ALLOWED:
            continue
        assert not calls, f"{name} parses JSON without fsq.io.read_json (path in the message): {calls}"
