"""A study's ``timing``: summed over the calls that trained runs into the same folder, rendered in its report."""

from __future__ import annotations

import pytest

from fsq.studies.common import combine_timing, timing_line


def _call(wall: float, cpu: float, runs: int, before: float, after: float) -> dict:
    return {
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "runs_trained": runs,
        "load_average_before": [before, 0.0, 0.0],
        "load_average_after": [after, 0.0, 0.0],
        "cpus": 2,
    }


def test_one_call_renders_as_before():
    line = timing_line(combine_timing(None, _call(120, 60, 4, 1.0, 2.0)))
    assert line == (
        "Measured: 2.0 min wall, 1.0 min CPU for 4 runs on a 2-core machine; its 1-minute load average (all "
        "processes) was 1.00 before and 2.00 after."
    )


def test_calls_are_summed_with_the_first_load_before_and_the_last_after():
    first = combine_timing(None, _call(120, 60, 4, 1.0, 2.0))
    both = combine_timing(first, _call(60.04, 30, 2, 3.0, 4.0))
    assert (both["wall_seconds"], both["cpu_seconds"], both["runs_trained"], both["calls"]) == (180.0, 90, 6, 2)
    three = combine_timing(both, _call(60, 30, 1, 5.0, 6.0))
    assert three["calls"] == 3 and three["runs_trained"] == 7
    assert timing_line(three) == (
        "Measured: 4.0 min wall, 2.0 min CPU for 7 runs over 3 training processes on a 2-core machine; its 1-minute "
        "load average (all processes) was 1.00 before the first and 6.00 after the last."
    )


def test_a_runs_logged_training_time_sums_its_step_times(tmp_path):
    """``logged_train_seconds``: each metrics row's seconds per step times the steps since the row before (a
    resumed run that logs a step again adds nothing for it); None for a run that logged nothing."""
    import json

    from fsq.studies.common import logged_train_seconds

    rows = [
        {"step": 25, "sec_per_step": 0.5},
        {"step": 50, "sec_per_step": 0.4},
        {"step": 50, "sec_per_step": 9.0},  # logged again after a resume: no steps since
        {"step": 60, "psnr": 20.0},  # a row without a step time
        {"step": 100, "sec_per_step": 1.0},
    ]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert logged_train_seconds(tmp_path) == pytest.approx(25 * 0.5 + 25 * 0.4 + 50 * 1.0)
    assert logged_train_seconds(tmp_path / "missing") is None


def test_the_logged_time_sentence_sums_every_phase_of_every_run_that_logged(tmp_path):
    import json

    from fsq.studies.common import logged_time_sentence

    def log(folder, rows):
        folder.mkdir(parents=True)
        (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    log(tmp_path / "a" / "oracle", [{"step": 100, "sec_per_step": 0.6}])  # 60 s
    log(tmp_path / "a" / "lm", [{"step": 200, "sec_per_step": 0.3}])  # 60 s
    log(tmp_path / "b" / "oracle", [{"step": 60, "sec_per_step": 1.0}])  # 60 s; its language model not started
    runs = [[tmp_path / r / p for p in ("oracle", "lm")] for r in ("a", "b", "c")]  # c logged nothing
    assert logged_time_sentence(runs, "runs") == (
        "Training time logged by the 2 runs (the sum of their step times, evaluations not included): 3.0 min."
    )
    assert logged_time_sentence(runs[2:], "runs") is None


def _study(names, seconds=None):
    runs = [{"name": n, "label": n, "run_dir": f"runs/{n}", "seconds": (seconds or {}).get(n)} for n in names]
    return {"kind": "k", "title": "t", "description": "d", "overrides": [], "runs": runs}


def test_two_calls_writing_one_study_folder_at_once_keep_both_shares(tmp_path):
    """Two calls of a study working in one folder side by side (each trains the runs the other does not): every
    write merges with the file, so neither call's time nor a run's seconds is lost, and a call's repeated writes
    replace its own share instead of adding it again."""
    from fsq.studies.common import Stopwatch, read_study, write_study

    a, b = Stopwatch(), Stopwatch()
    write_study(tmp_path, _study(["r1", "r2"]))  # a's plan
    write_study(tmp_path, _study(["r1", "r2"]))  # b's plan
    write_study(tmp_path, _study(["r1", "r2"], {"r1": 10.0}), a, 1)  # a finished r1
    write_study(tmp_path, _study(["r1", "r2"], {"r2": 20.0}), b, 1)  # b finished r2, not knowing r1's seconds
    on_disk = read_study(tmp_path)
    assert [r["seconds"] for r in on_disk["runs"]] == [10.0, 20.0]
    assert on_disk["timing"]["calls"] == 2 and on_disk["timing"]["runs_trained"] == 2
    write_study(tmp_path, _study(["r1", "r2"], {"r1": 10.0}), a, 1)  # a writes again: its share replaced, not added
    again = read_study(tmp_path)["timing"]
    assert again["calls"] == 2 and again["runs_trained"] == 2
    assert again["wall_seconds"] >= on_disk["timing"]["wall_seconds"]
    write_study(tmp_path, _study(["r1", "r2"]))  # a later plan write keeps the timing and the seconds on disk
    assert read_study(tmp_path)["timing"] == again
    assert [r["seconds"] for r in read_study(tmp_path)["runs"]] == [10.0, 20.0]


def test_one_call_after_another_sums_as_before(tmp_path):
    from fsq.studies.common import Stopwatch, read_study, write_study

    first = Stopwatch()
    write_study(tmp_path, _study(["r1"]), first, 1)
    write_study(tmp_path, _study(["r1"]), first, 1)
    once = read_study(tmp_path)["timing"]
    assert "calls" not in once and once["runs_trained"] == 1
    write_study(tmp_path, _study(["r1"]), Stopwatch(), 0)  # a second call that trained nothing
    both = read_study(tmp_path)["timing"]
    assert both["calls"] == 2 and both["runs_trained"] == 1
    assert both["load_average_before"] == once["load_average_before"]  # the first call's


def _one_run(out_dir, study, log, clock=None, before=0):
    """A study's work function that "trains" the first run no other worker has claimed and writes its share."""
    for run in study["runs"]:
        try:
            (out_dir / f"{run['name']}.claim").open("x").close()
        except FileExistsError:
            continue
        run["seconds"] = 1.0
        from fsq.studies.common import write_study

        write_study(out_dir, study, clock, before + 1)
        return 1
    return 0


def test_each_worker_of_a_jobs_call_writes_its_own_share_after_each_run(tmp_path):
    """``--jobs 2``: every worker has its own stopwatch and writes its share when it finishes a run, as a call of its
    own, so that a call stopped before its workers end (a machine's lease running out) keeps the time of the runs
    they finished; the parent writes nothing of its own (its CPU time would count the workers' again)."""
    from fsq.studies.common import read_study, train_phase, write_study

    write_study(tmp_path, _study(["r1", "r2"]))
    trained = train_phase(2, _one_run, tmp_path, _study(["r1", "r2"]), (), print, None, 0)  # type: ignore[arg-type]
    timing = read_study(tmp_path)["timing"]
    assert trained == 2 and timing["runs_trained"] == 2 and timing["calls"] == 2
    assert [r["seconds"] for r in read_study(tmp_path)["runs"]] == [1.0, 1.0]


def test_work_on_a_run_dir_another_process_holds_is_skipped_with_a_line(tmp_path):
    from fsq.rundir import RunDirLock
    from fsq.studies.common import unless_busy

    def work():
        with RunDirLock(tmp_path / "run", "training"):
            done.append(True)

    done: list[bool] = []
    lines: list[str] = []
    with RunDirLock(tmp_path / "run", "training"):  # another call of the study, training this run
        assert unless_busy(work, lines.append) is False
    assert done == [] and len(lines) == 1 and "skipped: " in lines[0] and "in use by pid" in lines[0]
    assert unless_busy(work, lines.append) is True and done == [True]  # free again: the work runs

    def failing():
        raise ValueError("a real error")

    with pytest.raises(ValueError, match="a real error"):  # only a busy run dir is skipped
        unless_busy(failing, lines.append)


def test_results_csv_takes_every_rows_keys(tmp_path):
    """Rows of one study may carry different keys (a UViM colorization row has ``fid_check``, depth rows do not):
    the CSV has every column, empty where a row lacks it; both files are complete."""
    import csv
    import json

    from fsq.studies.common import write_results

    rows = [{"name": "depth", "rmse": 0.4}, {"name": "colour", "psnr": 20.0, "fid_check": "failed"}]
    write_results(tmp_path, {"kind": "uvim"}, rows)
    with (tmp_path / "results.csv").open(newline="") as handle:
        table = list(csv.DictReader(handle))
    assert list(table[0]) == ["name", "rmse", "psnr", "fid_check"]
    assert table[0]["fid_check"] == "" and table[1]["fid_check"] == "failed" and table[1]["rmse"] == ""
    assert json.loads((tmp_path / "results.json").read_text())["results"] == rows
    assert not list(tmp_path.glob(".results*"))  # no temporary file left behind
