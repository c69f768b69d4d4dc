"""The process group's end under torchrun (``fsq.distributed.process_group``): on a clean end no rank leaves
before the others are done (a rank that destroyed the group and exited while rank 0 still wrote its run dir could
abort it inside gloo); on an error the group is destroyed at once and the error goes on. A torchrun worker of the
``fsq`` command then ends with its exit status and without the interpreter's finalization (``distributed.leave``),
where gloo's threads could still abort it; a single process returns its status as before."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fsq import cli, distributed

SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from fsq import cli, distributed

    out = Path(sys.argv[1])
    info = distributed.setup("cpu")
    with distributed.process_group():
        if info.rank == 0:
            time.sleep(1.5)  # rank 0's last work (writing the run dir), long after rank 1 is done
            (out / "rank0_done").write_text(repr(time.time()))
    (out / f"rank{info.rank}_left").write_text(repr(time.time()))
    """
)


def test_a_clean_end_waits_for_every_rank(tmp_path):
    script = tmp_path / "ranks.py"
    script.write_text(SCRIPT)
    src = Path(__file__).parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    run = subprocess.run([*command, str(script), str(tmp_path)], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    done = float((tmp_path / "rank0_done").read_text())
    assert float((tmp_path / "rank1_left").read_text()) >= done  # rank 1 waited for rank 0's last work


def test_outside_torchrun_the_block_runs_and_errors_go_on():
    with distributed.process_group():
        value = 1 + 1
    assert value == 2
    with pytest.raises(KeyError, match="boom"), distributed.process_group():
        raise KeyError("boom")


class _Left(Exception):
    """What the stand-in for ``os._exit`` raises: the status the process would have ended with."""


@pytest.fixture
def exits(monkeypatch, capsys):
    """``os._exit`` replaced by a recorder that raises :class:`_Left`; the standard streams must be flushed first."""

    def fake_exit(code: int) -> None:
        raise _Left(code)

    monkeypatch.setattr(os, "_exit", fake_exit)
    return monkeypatch


@pytest.mark.parametrize(
    ("argv", "status"),
    [(["configs", "list"], 0), (["train", "tokenizer", "no_such_config.yaml"], 2)],
    ids=["ok", "error"],
)
def test_a_torchrun_worker_of_the_command_leaves_with_its_status(exits, capsys, argv, status):
    exits.setenv("WORLD_SIZE", "2")
    exits.setenv("RANK", "1")
    exits.setattr(distributed, "_started", [True])  # as when the command's setup() started the group
    with pytest.raises(_Left) as left:
        cli.main(argv)
    assert left.value.args == (status,)
    out, err = capsys.readouterr()
    assert (out if status == 0 else err).strip()  # what the command printed, before it left
    if status:
        assert "(rank 1 of 2)" in err


def test_a_single_process_returns_its_status(exits, capsys):
    exits.delenv("WORLD_SIZE", raising=False)
    assert cli.main(["configs", "list"]) == 0
    assert cli.main(["train", "tokenizer", "no_such_config.yaml"]) == 2


def test_a_rank_that_started_no_group_returns_its_status(exits, capsys):
    """Under torchrun a command that failed before it started the group (a bad config) returns as usual."""
    exits.setenv("WORLD_SIZE", "2")
    exits.setattr(distributed, "_started", [])
    assert cli.main(["train", "tokenizer", "no_such_config.yaml"]) == 2
