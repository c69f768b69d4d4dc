"""Reliability, round 3: writes that fail (any writer, a full disk), checkpoints and bundles that were edited or
forged, starts that fail, and errors at the command line; each case ends in one clear error naming the file or
setting, never a traceback, a half-written file or a lost checkpoint.

The full disk is real: ``RLIMIT_FSIZE`` makes the kernel refuse every write past a few KiB, so each writer
(safetensors, torch.save, Pillow, numpy, json) fails with its own error type, as on a full disk.
"""

from __future__ import annotations

import json
import re
import resource
import shutil
import signal
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from fsq import app, storage
from fsq import checkpoint as ckpt
from fsq.bundles import BundleError
from fsq.cli import main
from fsq.config import ConfigError, TokenizerExperiment, load_config
from fsq.data import SourceUnavailable, load_images
from fsq.io import write_json_atomic

ROOT = Path(__file__).parents[1]
FSQ_MNIST = ROOT / "configs/tokenizer/fsq_mnist.yaml"
SMOKE = ROOT / "configs/presets/smoke.yaml"


@contextmanager
def disk_full(limit: int = 16 * 1024):
    """Every file write past ``limit`` bytes fails in the kernel (EFBIG), as on a full disk, for every writer."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the error, not the signal that would kill us
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def _error_lines(err: str) -> list[str]:
    """The ``fsq: error`` lines of a command's stderr (progress bars may share it), none of them a traceback."""
    assert "Traceback" not in err, err
    return [line[line.index("fsq: error") :] for line in re.split(r"[\r\n]", err) if "fsq: error" in line]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith(".") and p.name.endswith(".tmp"))


# ---- one storage-error path for every writer --------------------------------------------------------------------
BIG = {"w": torch.zeros(64 * 1024)}  # 256 KiB
WRITERS = [
    ("safetensors", "SafetensorError", lambda path: ckpt.save_safetensors_atomic(BIG, path)),
    ("torch.save", "RuntimeError", lambda path: ckpt.save_torch_atomic(BIG, path)),
    ("json", "OSError", lambda path: write_json_atomic({"x": "y" * 100_000}, path)),
    ("numpy", "OSError", lambda path: np.save(path, np.zeros(100_000))),
    ("Pillow", "OSError", lambda path: __import__("PIL.Image").Image.effect_noise((400, 400), 80).save(path, "PNG")),
]


@pytest.mark.parametrize("write, cause", [r[2:0:-1] for r in WRITERS], ids=[r[0] for r in WRITERS])
def test_every_writer_fails_the_same_clear_way_and_leaves_no_temporary(write, cause, tmp_path):
    target = tmp_path / "file.npy"  # numpy adds no suffix to this name
    with pytest.raises(storage.StorageError, match=r"cannot write test file .*file\.npy \(.+\); [\d.]+ MiB free") as e:
        with disk_full(), storage.writing(target, target, what="test file"):
            write(target)
    root = e.value
    while root.__cause__ is not None:
        root = root.__cause__
    assert type(root).__name__ == cause  # the writer's own error, recognised
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary


def test_an_error_that_is_no_storage_error_passes_unchanged_but_still_cleans_up(tmp_path):
    tmp = tmp_path / ".x.tmp"
    with pytest.raises(KeyError):
        with storage.writing(tmp_path / "x", tmp):
            tmp.write_text("half")
            raise KeyError("a bug")
    assert not tmp.exists()


def _save(run_dir, step, config_hash="abc"):
    weights = {"model": {"w": torch.full((3,), float(step)), "big": torch.zeros(64 * 1024)}}
    return ckpt.save_checkpoint(run_dir, step, weights, {"optimizer": {}}, {"config_hash": config_hash}, 3)


def test_checkpoint_on_a_full_disk_says_truly_what_is_intact(tmp_path):
    with pytest.raises(storage.StorageError, match="No checkpoint of this run exists yet"):
        with disk_full():
            _save(tmp_path, 10)
    assert ckpt.checkpoint_dirs(tmp_path) == [] and _leftovers(tmp_path) == []
    _save(tmp_path, 10)
    with pytest.raises(
        storage.StorageError, match=r"step_000020 .*MiB free.*previous checkpoint is intact \(step_000010\)"
    ):
        with disk_full():
            _save(tmp_path, 20)
    assert [p.name for p in ckpt.checkpoint_dirs(tmp_path)] == ["step_000010"] and _leftovers(tmp_path) == []
    assert ckpt.load_checkpoint(tmp_path / "checkpoints/step_000010", ["model"], "abc")[2]["step"] == 10


def test_sampling_onto_a_full_disk_names_the_file_and_leaves_no_partial_file(tmp_path, capsys):
    out = tmp_path / "samples"
    with disk_full(limit=200):  # the PNG grid cannot be written
        code = main(["sample", "mnist-maskgit-fsq", "--out", str(out), "--num", "1", "--classes", "0", "--steps", "2"])
    err = capsys.readouterr().err
    assert code == 2 and len(_error_lines(err)) == 1, err
    assert f"cannot write image {out / 'class_0.png'} (File too large); " in err and "MiB free" in err
    assert not out.exists()  # the folder it created is gone too


# ---- state.json and weights that were edited --------------------------------------------------------------------
STATE_ROWS = [  # (edit of state.json, the error's words)
    ({"step": -5}, "step is -5, not a non-negative integer"),
    ({"step": "5"}, "step is '5', not a non-negative integer"),
    ({"step": True}, "step is True, not a non-negative integer"),
    ({"step": 7}, "step is 7, but the folder is step_000005"),
    ({"config_hash": 3}, "config_hash is 3, not a str"),
    ({"spec": [1, 2]}, "spec is \\[1, 2\\], not a dict"),
]


@pytest.mark.parametrize("edit, match", STATE_ROWS, ids=[str(r[0]) for r in STATE_ROWS])
def test_an_edited_state_json_is_refused_naming_the_file(edit, match, tmp_path):
    folder = _save(tmp_path, 5)
    state = json.loads((folder / "state.json").read_text())
    (folder / "state.json").write_text(json.dumps({**state, **edit}))
    with pytest.raises(ckpt.CheckpointError, match=f"step_000005/state.json: {match}"):
        ckpt.load_checkpoint(folder, ["model"], "abc")


def test_a_planted_negative_step_falls_back_and_is_kept_as_evidence(tmp_path):
    _save(tmp_path, 2)
    planted = _save(tmp_path, 4)
    (planted / "state.json").write_text(json.dumps({"config_hash": "abc", "step": -5}))
    with pytest.warns(
        UserWarning, match="skipped an unusable checkpoint, using step_000002.*step is -5.*never deleted"
    ):
        step = ckpt.load_newest(tmp_path, lambda folder: ckpt.load_checkpoint(folder, ["model"], "abc")[2]["step"])
    assert step == 2
    _save(tmp_path, 4)  # training writes step 4 again: the planted one is moved aside, not overwritten
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["step_000002", "step_000004", "step_000004.refused"]
    assert json.loads((tmp_path / "checkpoints/step_000004.refused/state.json").read_text())["step"] == -5
    assert not any("-" in p.name.split("_")[1] for p in (tmp_path / "checkpoints").iterdir())


def test_an_unusable_newer_checkpoint_never_makes_room_by_pruning_the_intact_one(tmp_path):
    _save(tmp_path, 4)
    planted = _save(tmp_path, 10)
    (planted / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.warns(UserWarning, match="using step_000004 instead"):
        ckpt.load_newest(tmp_path, lambda folder: ckpt.load_checkpoint(folder, ["model"], "abc"))
    weights = {"model": {"w": torch.zeros(3)}}  # resumed from step 4, training writes step 6 with keep_last=2
    ckpt.save_checkpoint(tmp_path, 6, weights, {}, {"config_hash": "abc"}, keep_last=2)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["step_000004", "step_000006", "step_000010.refused"]


def test_a_tampered_checkpoint_is_kept_and_the_warning_carries_no_unsafe_advice(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (print, ("this must never run",))

    _save(tmp_path, 2)
    tampered = _save(tmp_path, 4)
    torch.save({"x": Exploit()}, tampered / "optimizer.pt")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ckpt.load_newest(tmp_path, lambda folder: ckpt.load_checkpoint(folder, ["model"], "abc"))
    (message,) = [str(w.message) for w in caught]
    assert "refused and nothing in it was executed" in message and "Unsupported global" in message
    for unsafe in ("\x1b[", "can still be loaded", "weights_only", "safe_globals", "trust"):
        assert unsafe not in message
    _save(tmp_path, 4)
    kept = tmp_path / "checkpoints/step_000004.refused/optimizer.pt"
    assert kept.read_bytes() != (tmp_path / "checkpoints/step_000004/optimizer.pt").read_bytes()


class _SystemCall:
    def __reduce__(self):
        import os

        return (os.system, ("echo this must never run",))


@pytest.mark.parametrize("payload", [print, _SystemCall()], ids=["a function", "os.system"])
def test_a_refused_pickle_says_why_without_torch_advice(payload, tmp_path):
    class Call:
        def __reduce__(self):
            return payload.__reduce__() if isinstance(payload, _SystemCall) else (payload, ("never",))

    torch.save({"x": Call()}, tmp_path / "optimizer.pt")
    with pytest.raises(ckpt.CheckpointError) as refused:
        ckpt.load_torch_safe(tmp_path / "optimizer.pt")
    message = str(refused.value)
    assert "nothing in it was executed" in message and ("print" in message or "system" in message), message
    for unsafe in ("\x1b[", "can still be loaded", "weights_only", "safe_globals", "trust", "likely succeed"):
        assert unsafe not in message, message


def test_weights_overwritten_with_0xff_are_refused_naming_the_file_and_tensor(tmp_path):
    folder = _save(tmp_path, 5)
    path = folder / "model.safetensors"
    data = bytearray(path.read_bytes())
    header = 8 + int.from_bytes(data[:8], "little")
    data[header:] = b"\xff" * (len(data) - header)
    path.write_bytes(bytes(data))
    with pytest.raises(ckpt.CheckpointError, match=r"step_000005/model.safetensors: tensor '\w+' .* holds NaN"):
        ckpt.load_checkpoint(folder, ["model"], "abc")


# ---- the command line -------------------------------------------------------------------------------------------
def _fail_with(monkeypatch, error: BaseException):
    """``fsq export`` raises ``error`` (build_parser looks its command functions up when main calls it)."""
    import fsq.cli

    def command(args):
        raise error

    monkeypatch.setattr(fsq.cli, "_export", command)


GLOO = [
    "[../third_party/gloo/gloo/transport/tcp/pair.cc:534] Connection closed by peer [127.0.0.1]:29501",
    "[../third_party/gloo/gloo/transport/tcp/unbound_buffer.cc:81] Timed out waiting 60000ms for recv operation",
]


@pytest.mark.parametrize("text", GLOO, ids=["a killed rank", "a frozen rank"])
def test_a_dead_or_frozen_rank_is_one_line_per_rank(text, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    _fail_with(monkeypatch, RuntimeError(text))
    assert main(["export", str(tmp_path / "run"), str(tmp_path / "out")]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fsq: error (rank 0 of 2): a collective operation failed")
    assert "gloo/transport" not in err[0] and "Traceback" not in err[0]


def test_other_runtime_errors_still_show_their_traceback(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    _fail_with(monkeypatch, RuntimeError("a bug in fsq"))
    with pytest.raises(RuntimeError, match="a bug in fsq"):
        main(["export", "run", "out"])


def test_a_writer_error_that_reaches_the_cli_is_one_line(monkeypatch, capsys):
    from safetensors import SafetensorError

    _fail_with(
        monkeypatch, SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
    )
    assert main(["export", "run", "out"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "fsq: error: a write failed (No space left on device): Error while serializing: I/O error: No "
        "space left on device (os error 28)"
    ]


# ---- image sizes against the model ------------------------------------------------------------------------------
SIZE_ROWS = [
    ("data.image_size=1", "data.image_size=1 gives a 1x1 token grid .*channel_multipliers=\\[1, 2, 2\\].*>= 5"),
    ("data.image_size=3", "data.image_size=3 gives a 1x1 token grid"),
    ("data.image_size=4097", "data.image_size=4097 is above the largest supported size, 4096"),
]


@pytest.mark.parametrize("override, match", SIZE_ROWS, ids=[r[0] for r in SIZE_ROWS])
def test_image_sizes_are_checked_against_the_model_at_load(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config(TokenizerExperiment, [FSQ_MNIST, SMOKE], [override])


def test_an_image_size_that_cannot_fit_in_memory_is_refused_up_front(monkeypatch):
    from fsq.config import sizes

    monkeypatch.setattr(sizes, "physical_memory", lambda: 2**30)
    with pytest.raises(ConfigError, match="data.image_size=2048 with train.batch_size=16 needs at least 2.0 GiB"):
        load_config(TokenizerExperiment, [FSQ_MNIST, SMOKE], ["data.image_size=2048"])
    load_config(TokenizerExperiment, [FSQ_MNIST, SMOKE], ["data.image_size=1024"])  # 0.5 GiB: fine


# ---- bundles: config.json checked against the weights -----------------------------------------------------------
def _bundle(name: str, tmp_path: Path) -> Path:
    from fsq import hub

    return Path(shutil.copytree(hub.shipped_root() / name, tmp_path / name))


def _edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


BUNDLE_ROWS = [  # (bundle, file edited, edit, the error's words)
    (
        "mnist-fsq",
        "config.json",
        lambda c: c["spec"].update(filters=8),
        r"model.safetensors does not fit the model .*config.json describes: \d+ tensor\(s\) of another shape "
        r"\(encoder.\S+ is \(16, .*\) in the file, \(8, ",
    ),
    ("mnist-fsq", "config.json", lambda c: c["spec"].update(colour=3), r"spec has unknown key\(s\) \['colour'\]"),
    ("mnist-fsq", "config.json", lambda c: c["spec"].update(filters="16"), r"spec.filters: '16' is not a int"),
    ("mnist-fsq", "config.json", lambda c: c["spec"]["quantizer"].update(levels=[8, "5"]), r"spec.quantizer.levels"),
    ("mnist-fsq", "config.json", lambda c: c["spec"]["quantizer"].update(kind="nope"), r"spec.quantizer.kind: 'nope'"),
    (
        "mnist-fsq",
        "config.json",
        lambda c: c["spec"].update(quantizer={"kind": "lfq", "levels": [8, 5, 5, 5]}),
        r"spec.quantizer has unknown key\(s\) \['levels'\]; LFQSection takes",
    ),
    (
        "mnist-fsq",
        "config.json",
        lambda c: c["spec"]["quantizer"].update(colour=1),
        r"quantizer has unknown key\(s\) \['colour'\]; FSQ",
    ),
    ("mnist-fsq", "config.json", lambda c: c["spec"].update(quantizer="fsq8"), r"unknown quantizer 'fsq8'"),
    ("mnist-maskgit-fsq", "config.json", lambda c: c["spec"].update(width=64), r"model.safetensors does not fit"),
    ("mnist-maskgit-fsq", "config.json", lambda c: c["sampling"].update(stepz=3), r"sampling has unknown key"),
    ("mnist-maskgit-fsq", "config.json", lambda c: c["sampling"].update(steps=0), r"steps is 0, must be >= 1"),
    ("mnist-maskgit-fsq", "config.json", lambda c: c["sampling"].update(steps=1.5), r"sampling.steps: 1.5 is not"),
    ("mnist-maskgit-fsq", "tokenizer/config.json", lambda c: c["spec"].update(num_res_blocks=2), r"does not fit"),
]


@pytest.mark.parametrize("bundle, file, edit, match", BUNDLE_ROWS, ids=[f"{r[0]}:{r[3][:30]}" for r in BUNDLE_ROWS])
def test_an_edited_bundle_is_refused_naming_the_file_and_key(bundle, file, edit, match, tmp_path, capsys):
    from fsq import Tokenizer
    from fsq.inference.sampling import MaskGITPipeline

    folder = _bundle(bundle, tmp_path)
    _edit(folder / file, edit)
    load = Tokenizer.from_pretrained if bundle == "mnist-fsq" else MaskGITPipeline.from_pretrained
    with pytest.raises(BundleError, match=match):
        load(folder)
    out = tmp_path / "out"  # the command line: one line, exit 2, nothing written
    if bundle == "mnist-maskgit-fsq":
        assert main(["sample", str(folder), "--out", str(out), "--num", "1", "--classes", "0"]) == 2
    else:
        assert main(["tokenize", str(folder), "--split", "test", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(_error_lines(err)) == 1 and not out.exists()


# ---- whole runs: a trained tokenizer run, copied per test -------------------------------------------------------
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


@pytest.fixture
def run(trained, tmp_path) -> Path:
    return Path(shutil.copytree(trained, tmp_path / "run"))


@pytest.mark.integration
def test_training_onto_a_full_disk_keeps_the_previous_checkpoint_and_resumes(run):
    with pytest.raises(storage.StorageError, match=r"step_000006 \(File too large\).*is intact \(step_000004\)"):
        with disk_full():
            app.train(_cfg("train.steps=6"), run)
    assert [p.name for p in ckpt.checkpoint_dirs(run)] == ["step_000004"] and _leftovers(run) == []
    app.train(_cfg("train.steps=6"), run)  # space again: it resumes from step 4
    assert ckpt.latest_checkpoint(run).name == "step_000006"


@pytest.mark.integration
def test_metrics_and_tensorboard_onto_a_full_disk_are_one_line(trained, tmp_path, capsys, monkeypatch):
    import threading

    monkeypatch.setattr(threading, "excepthook", threading.excepthook)  # main() installs its own: restored after
    small = ["data.train_limit=64", "train.eval_at_end=false", "train.threads=1", "train.log_every=1"]
    argv = ["train", "tokenizer", str(FSQ_MNIST), str(SMOKE), *small, "train.steps=200", "train.checkpoint_every=1000"]
    with disk_full(limit=6000):  # metrics.jsonl or TensorBoard's event file (written by its thread) fills first
        code = main([*argv, "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    (line,) = _error_lines(err)
    assert code == 2 and re.match(r"fsq: error: cannot write (TensorBoard events|metrics) .*\(File too large\); ", line)
    assert not (tmp_path / "run").exists()  # no checkpoint was written: the failed start leaves nothing


@pytest.mark.integration
def test_export_and_tokenize_onto_a_full_disk_leave_nothing(run, tmp_path, capsys):
    for argv in (
        ["export", str(run), str(tmp_path / "bundle")],
        ["tokenize", str(run), "--out", str(tmp_path / "tok")],
    ):
        with disk_full():
            code = main([*argv, *(["--split", "test"] if argv[0] == "tokenize" else [])])
        err = capsys.readouterr().err
        assert code == 2 and "File too large" in err and "MiB free" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no bundle, no tokens, no temporaries


@pytest.mark.integration
def test_a_foreign_checkpoint_with_a_forged_config_hash_is_not_evaluated(run, tmp_path):
    foreign = tmp_path / "foreign"
    app.train(_cfg("quantizer.levels=[5,5,5]", "train.steps=2"), foreign)
    own_hash = json.loads((run / "checkpoints/step_000004/state.json").read_text())["config_hash"]
    shutil.rmtree(run / "checkpoints/step_000004")
    shutil.copytree(foreign / "checkpoints/step_000002", run / "checkpoints/step_000008")
    _edit(run / "checkpoints/step_000008/state.json", lambda s: s.update(config_hash=own_hash, step=8))
    with pytest.raises(ckpt.CheckpointMismatch, match=r"step_000008/state.json: .*quantizer.levels: \[5, 5, 5\]"):
        app.evaluate(run)
    assert not (run / "eval").exists()
    # the state.json kept, only the weights copied in: refused naming the file, the tensor and both shapes
    shutil.rmtree(run / "checkpoints/step_000008")
    shutil.copy(foreign / "checkpoints/step_000002/ema.safetensors", run / "checkpoints/step_000002/ema.safetensors")
    expected = r"step_000002/ema.safetensors does not fit the model .*state.json describes: 3 tensor\(s\) of another"
    with pytest.raises(ckpt.CheckpointMismatch, match=expected + r" shape \(encoder\.\S+ is \(3, "):
        app.evaluate(run)
    assert not (run / "eval").exists()


@pytest.mark.integration
def test_a_planted_negative_step_never_becomes_a_checkpoint_name(run):
    _edit(run / "checkpoints/step_000004/state.json", lambda s: s.update(step=-5))
    with pytest.warns(UserWarning, match="step is -5"):
        app.train(_cfg("train.steps=6"), run)
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["step_000004", "step_000004.refused", "step_000006"]


FAILED_STARTS = [  # (override, the error, its words): a start that fails before any checkpoint leaves nothing
    ("train.precision=fp16", ConfigError, "train.precision=fp16 needs CUDA"),
    ("optim.lr=1e30", FloatingPointError, r"non-finite .* at step \d+.*No checkpoint had been written in .*fresh\.$"),
]


@pytest.mark.integration
@pytest.mark.skipif(torch.cuda.is_available(), reason="fp16 trains on CUDA")
@pytest.mark.parametrize("override, error, match", FAILED_STARTS, ids=[r[0] for r in FAILED_STARTS])
def test_a_start_that_fails_leaves_nothing_so_the_corrected_command_runs(override, error, match, trained, tmp_path):
    fresh = tmp_path / "fresh"
    with pytest.raises(error, match=match):
        app.train(_cfg(override, "train.steps=2"), fresh)
    assert not fresh.exists()
    app.train(_cfg("train.steps=2"), fresh)  # not refused as "a different config"
    assert ckpt.latest_checkpoint(fresh).name == "step_000002"


@pytest.mark.integration
def test_a_diverging_resume_names_the_checkpoint_that_is_really_there(run):
    from fsq.stages import NonFiniteLossError

    def diverge(phase: str, step: int) -> None:  # the loss of step 5 becomes NaN (a resumed run's own divergence)
        if step == 5:
            raise NonFiniteLossError(f"{phase}: non-finite loss (nan) at step {step}; lower optim.lr.")

    before = sorted(p.name for p in run.iterdir())
    with pytest.raises(NonFiniteLossError, match=r"step 5; lower optim.lr. The newest checkpoint, .*step_000004, is"):
        app.train(_cfg("train.steps=6"), run, hooks=[diverge])
    assert sorted(p.name for p in run.iterdir()) == before and ckpt.latest_checkpoint(run).name == "step_000004"


@pytest.mark.integration
def test_a_failed_start_in_a_folder_keeps_what_was_there(trained, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(FloatingPointError):
        app.train(_cfg("optim.lr=1e30", "train.steps=2"), folder)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


@pytest.mark.integration
def test_maskgit_on_an_empty_token_export_is_a_clear_error_and_leaves_nothing(run, tmp_path):
    from fsq.config import MaskGITExperiment

    tokens = tmp_path / "tokens"
    tokens.mkdir()
    manifest = {"format": "fsq-tokens", "version": 1, "split": "train", "source": "mnist", "shards": [], "skipped": []}
    write_json_atomic({**manifest, "num_images": 0}, tokens / "manifest.json")
    files = [ROOT / "configs/maskgit/fsq_mnist.yaml", ROOT / "configs/presets/smoke_maskgit.yaml"]
    cfg = load_config(MaskGITExperiment, files, [f"data.tokenizer={run}", f"data.tokens={tokens}", "train.threads=1"])
    maskgit_run = tmp_path / "maskgit"
    with pytest.raises(ValueError, match=r"tokens/manifest.json lists no token grids: the 'train' split of 'mnist'"):
        app.train(cfg, maskgit_run)
    assert not maskgit_run.exists()  # not even RUN/tokenizer/


# ---- a rank killed under torchrun ------------------------------------------------------------------------------
KILLED_RANK = """
import os, signal, sys
import fsq.cli
from fsq import distributed

def command(args):  # rank 1 is killed (kill -9) while rank 0 waits for it in a collective
    distributed.setup("cpu", timeout_minutes=1)
    if os.environ["RANK"] == "1":
        os.kill(os.getpid(), signal.SIGKILL)
    distributed.barrier()
    distributed.barrier()
    return 0

fsq.cli._eval = command
sys.exit(fsq.cli.main(["eval", "run"]))
"""


@pytest.mark.integration
def test_a_killed_rank_gives_rank_0_one_line_and_no_fsq_traceback(tmp_path):
    import os
    import subprocess
    import sys

    script = tmp_path / "killed_rank.py"
    script.write_text(KILLED_RANK)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", str(script)]
    done = subprocess.run(launcher, env=env, capture_output=True, text=True, timeout=240)
    ours = [line for line in done.stderr.splitlines() if line.startswith("fsq: error")]
    assert done.returncode != 0 and len(ours) == 1, done.stderr
    assert ours[0].startswith("fsq: error (rank 0 of 2): a collective operation failed or timed out (")
    assert "/fsq/" not in done.stderr.split("fsq: error")[0]  # no traceback through fsq before the line
    assert 'fsq/cli.py", line' not in done.stderr and "fsq/distributed.py" not in done.stderr


UVIM_ROWS = [  # (edit of a UViM bundle's config.json, the error's words)
    (lambda c: c["oracle"].update(width=32), r"oracle.safetensors does not fit the model .*config.json describes"),
    (lambda c: c["lm"].update(depth_x=1), r"lm has unknown key\(s\) \['depth_x'\]"),
    (lambda c: c["lm"].update(codebook_size=12), r"lm.safetensors does not fit"),
    (lambda c: c.update(image_size="8"), r"image_size is '8', not a positive integer"),
    (lambda c: c.update(task=None), r"task is None, not a mapping"),
]


@pytest.mark.parametrize("edit, match", UVIM_ROWS, ids=[r[1][:30] for r in UVIM_ROWS])
def test_an_edited_uvim_bundle_is_refused_naming_the_file_and_key(edit, match, tmp_path):
    from fsq.inference.prediction import UViMPredictor
    from fsq.models.quantizer import QuantizerSpec
    from fsq.models.uvim import LanguageModelSpec, OracleSpec, UViMLanguageModel, UViMOracle

    sizes = {"image_size": 8, "context_channels": 3, "patch": 4, "width": 16, "heads": 2, "mlp_dim": 32}
    quantizer = QuantizerSpec(kind="fsq", levels=[5, 3])
    oracle = UViMOracle(OracleSpec(**sizes, target_channels=1, output_channels=1, code_grid=2, quantizer=quantizer))
    lm = UViMLanguageModel(LanguageModelSpec(**sizes, codebook_size=15, sequence_length=4))
    UViMPredictor(oracle, lm, {"name": "depth", "options": {}}, 8).save_pretrained(tmp_path / "bundle")
    UViMPredictor.from_pretrained(tmp_path / "bundle")  # as written: loads
    _edit(tmp_path / "bundle/config.json", edit)
    with pytest.raises(BundleError, match=match):
        UViMPredictor.from_pretrained(tmp_path / "bundle")


def test_a_uvim_bundle_saved_by_fsq_0_1_with_flat_quantizer_keys_loads(tmp_path):
    """fsq 0.1 wrote the oracle's quantizer settings flat beside its own (``quantizer: fsq``, ``levels``, ...): such a
    bundle still loads, with the same quantizer."""
    from fsq.inference.prediction import UViMPredictor
    from fsq.models.quantizer import QuantizerSpec
    from fsq.models.uvim import LanguageModelSpec, OracleSpec, UViMLanguageModel, UViMOracle

    sizes = {"image_size": 8, "context_channels": 3, "patch": 4, "width": 16, "heads": 2, "mlp_dim": 32}
    quantizer = QuantizerSpec(kind="fsq", levels=[5, 3])
    oracle = UViMOracle(OracleSpec(**sizes, target_channels=1, output_channels=1, code_grid=2, quantizer=quantizer))
    lm = UViMLanguageModel(LanguageModelSpec(**sizes, codebook_size=15, sequence_length=4))
    UViMPredictor(oracle, lm, {"name": "depth", "options": {}}, 8).save_pretrained(tmp_path / "bundle")

    def flatten(config: dict) -> None:
        nested = config["oracle"].pop("quantizer")
        config["oracle"].update({"quantizer": nested.pop("kind"), **nested})

    _edit(tmp_path / "bundle/config.json", flatten)
    loaded = UViMPredictor.from_pretrained(tmp_path / "bundle")
    assert loaded.oracle.spec.quantizer == oracle.spec.quantizer
