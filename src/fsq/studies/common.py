"""What every study shares (torch-free): the one ``study.json`` schema, run lookup, number formatting, results.

A study folder holds ``study.json`` (``kind``, ``title``, ``description``, ``overrides`` and ``runs``: one entry
per run with at least ``name``, ``label`` and ``run_dir``, the latter relative to the study folder), the run
dirs under ``runs/``, and what a report writes: ``results.json`` / ``results.csv``, ``plots/``, ``report.md``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fsq import rundir
from fsq.io import read_json, write_text_atomic

STUDY_KEYS = ("kind", "title", "description", "overrides", "runs")
RUN_KEYS = ("name", "label", "run_dir")


def write_study(study_dir: Path, study: dict[str, Any], clock: Stopwatch | None = None, trained: int = 0) -> None:
    """Write ``study.json`` after checking it has the schema's keys (every study writes the same shape).

    Several calls may work in one study folder at once (each skips the runs another is training), so the write
    merges with the file on disk under a lock: ``timing`` is the disk's (the calls so far) with this call's share,
    ``clock.record(trained)``, put in place of the share it wrote before (no ``clock``: the disk's timing is kept,
    or the study's own in a new folder); a run's ``seconds`` that this call does not know is kept from the disk.
    The ``study`` dict is updated in place."""
    missing = [k for k in STUDY_KEYS if k not in study]
    missing += [f"runs[{i}].{k}" for i, run in enumerate(study["runs"]) for k in RUN_KEYS if k not in run]
    if missing:
        raise ValueError(f"study.json lacks {missing}")
    study_dir.mkdir(parents=True, exist_ok=True)
    path = study_dir / "study.json"
    with _study_lock(study_dir):
        on_disk = read_json(path, "the study's plan") if path.is_file() else {}
        timing = on_disk.get("timing") if path.is_file() else study.get("timing")
        if clock is not None:
            timing = clock.share(timing, trained)
        study.pop("timing", None)
        if timing:
            study["timing"] = timing
        known = {r.get("name"): r.get("seconds") for r in on_disk.get("runs", [])}
        for run in study["runs"]:
            if run.get("seconds") is None and known.get(run["name"]) is not None:
                run["seconds"] = known[run["name"]]
        write_text_atomic(json.dumps(study, indent=2) + "\n", path)


@contextmanager
def _study_lock(study_dir: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``study_dir/.study.lock`` while ``study.json`` is read, merged and written."""
    import fcntl

    with open(study_dir / ".study.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def train_phase(
    jobs: int,
    work: Callable[..., int],
    out_dir: Path,
    study: dict[str, Any],
    args: tuple[Any, ...],
    log: Callable[[str], Any],
    clock: Stopwatch,
    before: int,
) -> int:
    """One phase of a study's plan, ``work(out_dir, study, *args, log, clock, before)`` (it trains the runs no
    other process holds, writing ``study.json`` with ``clock``'s time share after each, and returns how many): in
    this process (``before`` runs trained earlier in it), or with ``jobs`` > 1 in that many workers
    (:func:`in_workers`), each of which writes its own share as a call of its own does (so that a call stopped
    before its workers finish keeps the time of every run they finished)."""
    if jobs == 1:
        return work(out_dir, study, *args, log, clock, before)
    return in_workers(jobs, work, out_dir, study, *args)


def in_workers(jobs: int, work: Callable[..., int], *args: Any) -> int:
    """``work(*args, print, clock)`` in ``jobs`` worker processes at once, each with its own :class:`Stopwatch`
    ``clock``, going down the same plan and taking the runs no other holds (:func:`unless_busy`); returns the runs
    they trained, summed. Workers are spawned, not forked (CUDA cannot be forked)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = [pool.submit(_timed_worker, work, args) for _ in range(jobs)]
        return sum(future.result() for future in futures)


def _timed_worker(work: Callable[..., int], args: tuple[Any, ...]) -> int:
    """One worker of :func:`in_workers`: ``work`` with a stopwatch started in this process."""
    return work(*args, print, Stopwatch())


def unless_busy(work: Callable[[], Any], log: Callable[[str], Any]) -> bool:
    """Call ``work`` (training or evaluating one run of a study); False, after a line in ``log``, when another
    process holds the run dir (another call of the same study working in the same folder): that call records it."""
    try:
        work()
    except rundir.RunDirBusy as busy:
        log(f"    skipped: {busy}")
        return False
    return True


def read_study(study_dir: str | Path) -> dict[str, Any]:
    """The ``study.json`` of a study folder."""
    path = Path(study_dir) / "study.json"
    if not path.is_file():
        raise FileNotFoundError(f"{study_dir} is not a study folder (no study.json); run `fsq study ...` first")
    return read_json(path, "the study's plan")


def run_path(study_dir: str | Path, run: dict[str, Any]) -> Path:
    """A run's dir: ``run_dir`` relative to the study folder (an absolute path stays as it is)."""
    return Path(study_dir) / run["run_dir"]


def relative_to_study(path: str | Path, study_dir: str | Path) -> str:
    """``path`` as a study records it: relative to the study folder (``..`` where it lies outside), so that a
    published study names no folder of the machine it ran on and still finds the path when the folders move
    together; absolute only where no relative path exists (another drive)."""
    try:
        return Path(os.path.relpath(Path(path).resolve(), Path(study_dir).resolve())).as_posix()
    except ValueError:
        return str(Path(path).resolve())


def fmt(value: Any, digits: int = 2) -> str:
    """A table cell: ``-`` for missing or NaN, floats to ``digits`` decimals."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


class Stopwatch:
    """Wall time, CPU time (this process and its finished children) and load average since it was made: a study's
    ``timing`` record (:func:`timing_line` renders it)."""

    def __init__(self) -> None:
        self.wall, self.cpu, self.load = time.perf_counter(), _cpu_seconds(), os.getloadavg()
        self.written: dict[str, Any] | None = None  # the record this call last put into study.json

    def share(self, total: dict[str, Any] | None, runs_trained: int) -> dict[str, Any]:
        """A study's ``timing`` over its calls: ``total`` (as on disk: every call so far, this one's last record
        included once it wrote one) with this call's record now in place of the one it wrote before."""
        mine = self.record(runs_trained)
        others = _without(total, self.written)
        self.written = mine
        return combine_timing(others, mine)

    def record(self, runs_trained: int) -> dict[str, Any]:
        """The ``timing`` entry of ``study.json`` for a call that trained ``runs_trained`` runs."""
        return {
            "wall_seconds": round(time.perf_counter() - self.wall, 1),
            "cpu_seconds": round(_cpu_seconds() - self.cpu, 1),
            "runs_trained": runs_trained,
            "load_average_before": [round(v, 2) for v in self.load],
            "load_average_after": [round(v, 2) for v in os.getloadavg()],
            "cpus": os.cpu_count(),
        }


def combine_timing(previous: dict[str, Any] | None, current: dict[str, Any]) -> dict[str, Any]:
    """The ``timing`` of a study over its calls: ``current`` (this call) added to ``previous`` (the calls before
    into the same folder): wall and CPU time and runs summed, ``calls`` counted, load before the first call."""
    if not previous:
        return current
    out = dict(current)
    out["wall_seconds"] = round(previous["wall_seconds"] + current["wall_seconds"], 1)
    out["cpu_seconds"] = round(previous["cpu_seconds"] + current["cpu_seconds"], 1)
    out["runs_trained"] = previous["runs_trained"] + current["runs_trained"]
    out["calls"] = previous.get("calls", 1) + current.get("calls", 1)
    out["load_average_before"] = previous["load_average_before"]
    return out


def _without(total: dict[str, Any] | None, part: dict[str, Any] | None) -> dict[str, Any] | None:
    """``total`` less one call's record ``part`` (None when no other call is left)."""
    if total is None or part is None:
        return total
    calls = total.get("calls", 1) - part.get("calls", 1)
    if calls < 1:
        return None
    out = dict(total)
    for key in ("wall_seconds", "cpu_seconds"):
        out[key] = round(total[key] - part[key], 1)
    out["runs_trained"] = total["runs_trained"] - part["runs_trained"]
    out["calls"] = calls
    return out


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def mean_std(values: list[Any]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation of the known values (``None``/NaN skipped); std ``None`` below two."""
    known = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not known:
        return None, None
    return statistics.fmean(known), (statistics.stdev(known) if len(known) > 1 else None)


def over_seeds(rows: list[dict[str, Any]], by: Sequence[str], numeric: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of the same configuration (equal values of the ``by`` keys) joined, in first-seen order: the first row
    of each group with every ``numeric`` key replaced by its mean over the group, ``<key>_std`` beside it (sample
    std; ``None`` for one row), and ``seeds`` (sorted) in place of ``seed``."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r.get(k) for k in by), []).append(r)
    out = []
    for members in groups.values():
        g = {k: v for k, v in members[0].items() if k != "seed"}
        g["seeds"] = sorted(m.get("seed", 0) for m in members)
        for key in numeric:
            g[key], g[f"{key}_std"] = mean_std([m.get(key) for m in members])
        out.append(g)
    return out


def pm(mean: float | None, std: float | None, digits: int, scale: float = 1.0, unit: str = "") -> str:
    """``mean ± std`` (``std`` left out when ``None``; ``-`` without a mean), both times ``scale``, then ``unit``."""
    if mean is None:
        return "-"
    text = f"{scale * mean:.{digits}f}"
    return text + (f" ± {scale * std:.{digits}f}" if std is not None else "") + unit


def latest_eval(run_dir: Path) -> dict[str, Any] | None:
    """The newest evaluation of a run (``None`` before its first)."""
    return rundir.latest_eval(run_dir)


def write_results(study_dir: Path, study: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """``results.json`` (the study's plan and its rows) and ``results.csv`` (the rows; a key some rows lack is an
    empty cell in theirs) of a study folder, each written atomically (an interrupted write leaves the previous
    file)."""
    write_text_atomic(json.dumps({"study": study, "results": rows}, indent=2) + "\n", study_dir / "results.json")
    table = io.StringIO(newline="")
    columns = list(dict.fromkeys(key for row in rows for key in row))  # every row's keys, in first-seen order
    writer = csv.DictWriter(table, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(table.getvalue(), study_dir / "results.csv")


def logged_train_seconds(run_dir: Path) -> float | None:
    """The training time a run logged itself: over its metrics rows, ``sec_per_step`` times the steps since the row
    before (evaluations and start-up not included; None without rows). It counts the run's cost whoever trained it,
    where a study's own stopwatch sees only the runs that study call trained."""
    total, previous, found = 0.0, 0, False
    for row in rundir.read_metrics(run_dir):
        if "sec_per_step" in row and "step" in row:
            total += row["sec_per_step"] * max(0, row["step"] - previous)
            previous, found = max(previous, row["step"]), True
    return total if found else None


def logged_time_sentence(run_dirs: Sequence[Sequence[Path]], what: str, steps: str = "step times") -> str | None:
    """The sentence "Training time logged by the N <what> (the sum of their <steps>, ...): M min." over runs given
    as their metrics folders (one per phase: a UViM run's ``oracle`` and ``lm``), counting a run when any of its
    folders logged step times; None when none did. The runs' own cost, whichever process trained them, so it holds
    for a study resumed from its records and for calls whose own time share was lost."""
    logged = [[logged_train_seconds(d) for d in dirs] for dirs in run_dirs]
    counted = [sum(v for v in run if v is not None) for run in logged if any(v is not None for v in run)]
    if not counted:
        return None
    return (
        f"Training time logged by the {len(counted)} {what} (the sum of their {steps}, evaluations not "
        f"included): {sum(counted) / 60:.1f} min."
    )


def timing_line(timing: dict[str, Any]) -> str:
    """The measured cost of the study's calls that trained something, with the machine's load around them."""
    before, after = timing["load_average_before"], timing["load_average_after"]
    calls = timing.get("calls", 1)
    return (
        f"Measured: {timing['wall_seconds'] / 60:.1f} min wall, {timing['cpu_seconds'] / 60:.1f} min CPU for "
        f"{timing['runs_trained']} runs" + (f" over {calls} training processes" if calls > 1 else "") + f" on a "
        f"{timing['cpus']}-core machine; its 1-minute load average (all processes) was {before[0]:.2f} before"
        + (" the first" if calls > 1 else "")
        + f" and {after[0]:.2f} after"
        + (" the last." if calls > 1 else ".")
    )


def finish_report(study_dir: Path, lines: list[str], missing: Sequence[str]) -> Path:
    """Write a study's ``report.md``: ``lines``, then the runs not finished yet (``missing``) and where every number
    is; returns its path."""
    if missing:
        lines = [*lines, f"Runs not finished yet (rerun the study to resume them): {', '.join(missing)}", ""]
    lines = [*lines, "Every number is also in `results.json` and `results.csv`; each run dir is under `runs/`.", ""]
    path = study_dir / "report.md"
    write_text_atomic("\n".join(lines), path)
    return path
