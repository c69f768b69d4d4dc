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
        "Measured: 4.0 min wall, 2.0 min CPU for 7 runs over 3 calls on a 2-core machine; its 1-minute load "
        "average (all processes) was 1.00 before the first call and 6.00 after the last."
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
