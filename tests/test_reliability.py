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
    ("quantizer.kind=pq", "quantizer.kind: 'pq' is not one of \\['fsq', 'residual_fsq', 'vq', 'lfq', 'bsq'\\]"),
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
