"""A study folder's records without its weights (torch-free): what a long study publishes, and carries over.

A study that takes longer than one sitting (the UViM study with three seeds: hours on a CPU) publishes its folder's
records: ``study.json``, the report and results, its plots, and of every *evaluated* run (one with an evaluation at
its top level: a finished run) its resolved config, metadata, training metrics, evaluations and their images. No
checkpoint, no tensorboard file: tens of KB a run (about 60 KB a UViM run).

Copied back into a study folder, the records are the study's state: rerunning ``fsq study KIND --out FOLDER``
reuses every exported run (a run counts as finished by its final evaluation file) and trains only the others, and
``fsq report FOLDER`` rebuilds the report from the records alone. A run exported before its final evaluation
would have no weights to resume from, so runs without an evaluation are left out.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from fsq import rundir
from fsq.io import read_json, write_json_atomic
from fsq.studies.common import read_study, run_path

__all__ = ["MANIFEST", "RECORD_SUFFIXES", "export_records", "missing_records"]

MANIFEST = "records.json"  # what an export holds: its runs and files (how a checkout is checked to hold them all)

# what a record is: text and the evaluation's images (weights, optimizer state and tensorboard events are not)
RECORD_SUFFIXES = (".json", ".jsonl", ".yaml", ".md", ".csv", ".png", ".svg")
MAX_RECORD_BYTES = 2_000_000  # a larger file is not a record (it is listed as left out)


def _records(folder: Path, skip: set[Path]) -> list[Path]:
    """The record files under ``folder`` (sorted), leaving out checkpoint folders and the folders in ``skip``."""
    found = []
    for path in sorted(folder.rglob("*")):
        parts = path.relative_to(folder).parts
        if rundir.CHECKPOINTS in parts[:-1] or any(path == s or s in path.parents for s in skip):
            continue
        if path.is_file() and path.suffix in RECORD_SUFFIXES:
            found.append(path)
    return found


def export_records(study_dir: str | Path, dest: str | Path) -> dict[str, list[str]]:
    """Copy the records of ``study_dir`` (see the module docstring) into ``dest``, replacing what ``dest`` held
    (``dest`` must be empty, absent, or an earlier export: a folder with ``study.json``). Returns the runs exported
    (``runs``), those left out because they have no evaluation yet (``unfinished``) or live outside the study folder
    (``outside``: a study's shared tokenizer run, say), and the files left out for size (``too_large``)."""
    study_dir, dest = Path(study_dir), Path(dest)
    study = read_study(study_dir)
    if dest.resolve() == study_dir.resolve() or study_dir.resolve() in dest.resolve().parents:
        raise ValueError(f"the records of {study_dir} cannot go inside it ({dest})")
    if dest.exists() and any(dest.iterdir()) and not (dest / "study.json").is_file():
        raise ValueError(f"{dest} is neither empty nor an earlier export of a study (no study.json): not replaced")
    run_dirs = {run["name"]: run_path(study_dir, run) for run in study["runs"]}
    inside = {name: d for name, d in run_dirs.items() if study_dir.resolve() in d.resolve().parents}
    finished = {name: d for name, d in inside.items() if rundir.eval_files(d)}
    unfinished = sorted(set(inside) - set(finished))
    outside = sorted(set(run_dirs) - set(inside))
    # the study's own files (the runs' come next; a folder under runs/ the plan does not list is not the study's)
    files = _records(study_dir, skip={*run_dirs.values(), study_dir / "runs"})
    for run_dir in finished.values():
        files += _records(run_dir, skip=set())
    staging = dest.with_name(dest.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    too_large, copied = [], []
    for path in files:
        if path.stat().st_size > MAX_RECORD_BYTES:
            too_large.append(str(path.relative_to(study_dir)))
            continue
        copied.append(path.relative_to(study_dir).as_posix())
        target = staging / path.relative_to(study_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    staging.mkdir(parents=True, exist_ok=True)
    done = {"runs": sorted(finished), "unfinished": unfinished, "outside": outside, "too_large": too_large}
    write_json_atomic({**done, "files": sorted(f for f in copied if f != MANIFEST)}, staging / MANIFEST)
    old = dest.with_name(dest.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    staging.rename(dest)  # the export appears whole: an interrupted one leaves dest as it was (or as dest.old)
    shutil.rmtree(old, ignore_errors=True)
    return done


def missing_records(dest: str | Path) -> list[str]:
    """The files an export's manifest lists that ``dest`` lacks, and the exported runs without an evaluation there
    (empty when the records are whole): what a checkout that lost part of its records (a file ignored by version
    control, say) shows."""
    dest = Path(dest)
    manifest = read_json(dest / MANIFEST, "the records' manifest")
    missing = [f for f in manifest["files"] if not (dest / f).is_file()]
    run_dirs = {run["name"]: run_path(dest, run) for run in read_study(dest)["runs"]}
    for name in manifest["runs"]:
        if not rundir.eval_files(run_dirs[name]):
            missing.append(f"{run_dirs[name].relative_to(dest).as_posix()} (no evaluation)")
    return missing
