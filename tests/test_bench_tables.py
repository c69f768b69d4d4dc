"""Benchmark results (``benchmarks/data.py``, ``benchmarks/data_scaling.py``) render as README tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fsq.studies.bench_tables import markdown_table
from fsq.studies.readme import update

ROOT = Path(__file__).parents[1]
META = {"date": "2026-01-01", "cpu_model": "CPU", "cpu_count": 2, "torch_threads": 1, "torch": "2.x", "repeats": 3}
META |= {"batch": 16, "loadavg_1_5_15min": {"start": [4.5, 5, 5], "end": [5.0, 5, 5]}, "machine_note": "shared"}


def _data() -> dict:
    rows = [
        {"what": "loader", "resolution": px, "source": s, "workers": w, "images_per_s": 100.0 * (w + 1) / px}
        for px in (64, 256)
        for s in ("wds", "folder")
        for w in (0, 2)
    ]
    rows += [
        {"what": "model", "resolution": px, "preset": "cpu-tiny", "step_s": 2.0, "images_per_s": 8.0}
        for px in (64, 256)
    ]
    return {"benchmark": {"kind": "data", **META}, "results": rows}


def _scaling(large_rss: float) -> dict:
    rows = [
        {"images": 20000, "peak_rss_mib": large_rss, "first_step_s": 5.0, "run_1_step_s": 6.0, "run_3_steps_s": 7.0},
        {"images": 2000, "peak_rss_mib": 600.0, "first_step_s": 4.0, "run_1_step_s": 5.0, "run_3_steps_s": 6.5},
    ]
    return {"benchmark": {"kind": "data_scaling", **META}, "results": rows}


def test_data_table_rows_by_resolution_and_source():
    lines = markdown_table(_data()).splitlines()
    assert lines[0] == "| px | source | 0 workers | 2 workers | tokenizer fwd+bwd (cpu-tiny) |"
    assert lines[2] == "| 64 | PNG folder | 2 | 5 | 8.0 (2.00 s/step) |"
    assert lines[3] == "| 64 | WebDataset shard | 2 | 5 |  |"
    assert "1-min load average start 4.5, end 5.0" in lines[-1] and "shared" in lines[-1]
    assert "Fastest loader cell over the tokenizer's images/s: x1 at 64 px, x0 at 256 px." in lines[-2]


def test_scaling_table_states_both_targets():
    text = markdown_table(_scaling(630.0))
    assert "| 2,000 | 600 | 4.0 | 5.0 | 6.5 |" in text and text.index("| 2,000 |") < text.index("| 20,000 |")
    assert "peak memory x1.050 (target within 10%: met), time to first step x1.25 (target within 1.5x: met)" in text
    assert "(target within 10%: NOT met)" in markdown_table(_scaling(700.0))


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown benchmark kind"):
        markdown_table({"benchmark": {"kind": "nope"}, "results": []})


def test_readme_block_renders_a_benchmark_file(tmp_path):
    (tmp_path / "data.json").write_text(json.dumps(_data()))
    page = tmp_path / "page.md"
    page.write_text("<!-- fsq:table data.json -->\nold\n<!-- /fsq -->\n")
    assert update(page) == ["table data.json"] and "| 256 | PNG folder |" in page.read_text()
    page.write_text("<!-- fsq:claims data.json -->\nold\n<!-- /fsq -->\n")
    with pytest.raises(ValueError, match="render as a table"):
        update(page)


@pytest.mark.parametrize(
    "name",
    [
        "data.json",
        "data_scaling.json",
        "audio_data.json",
        "audio_anchors.json",
        "video_data.json",
        "speech_codec_speed.json",
    ],
)
def test_published_benchmark_results_render(name):
    path = ROOT / "benchmarks" / "results" / name
    if not path.is_file():
        pytest.skip(f"{path} not published yet")
    assert markdown_table(json.loads(path.read_text())).startswith("| ")


def _gpu(fused_ms: float, vqp_gpu_ms: float | None = None) -> dict:
    """A GPU table with vqp at 1 ms, the floor at 0.5 ms and the fused kernels at ``fused_ms`` everywhere; the
    fused kernels' GPU time 0.75 ms, vqp's ``vqp_gpu_ms`` (not measured when None)."""
    rows = []
    for n in (2**12, 2**16, 2**24):
        for name, value in (("fused", fused_ms), ("eager", 1.2), ("vqp", 1.0), ("vqp_c", 0.6), ("floor", 0.5)):
            rows.append({"N": n, "d": 4, "quantizer": name, "median_ms": value, "peak_mb": 1.0})
            if name == "vqp" and vqp_gpu_ms is not None:
                rows[-1]["graph_ms"] = vqp_gpu_ms
        rows.append({"N": n, "d": 4, "quantizer": "fused_nc", "median_ms": fused_ms / 2, "graph_ms": 0.75})
    meta = {"kind": "fsq_gpu", "date": "2026-01-01", "device": "GPU X", "torch": "2.x", "args": {"repeats": 30}}
    return {"benchmark": meta | {"copy_bandwidth_bytes_per_s": 3e12, "floor": "N (20 d + 8) B / bw"}, "results": rows}


def test_gpu_table_checks_both_targets():
    fast = markdown_table(_gpu(0.25))  # 4x vqp, 0.5x the floor (impossible, but the arithmetic is the point)
    assert (
        "| 4 | 2^16 | 0.250 | 0.125 | 1.200 | 1.000 | 0.600 | - | 0.750 | - | 0.500 | 4.00 | 8.00 | 2.40 | - | 0.50 | "
        "1.50 |" in fast
    )
    assert "GPU time (CUDA graph): fused over" not in fast  # vqp's GPU time not measured: no verdict
    assert (
        "Fused over vector-quantize-pytorch eager at N >= 2^16: at least x4.00 (d=4, N=2^16); target >= 3x: met" in fast
    )
    assert "Fused (step time) at N = 2^24: at most x0.50 the bandwidth floor (d=4); target within 2x: met" in fast
    assert "GPU time (CUDA graph) at N = 2^24: at most x1.50 the bandwidth floor (d=4); target within 2x: met" in fast
    assert "GPU X" in fast and "3000 GB/s" in fast
    slow = markdown_table(_gpu(1.5))  # slower than vqp and 3x the floor
    assert "eager at N >= 2^16: at least x0.67 (d=4, N=2^16); target >= 3x: NOT met" in slow
    assert "the NaN check over vector-quantize-pytorch eager at N >= 2^16: at least x1.33" in slow
    assert "(step time) at N = 2^24: at most x3.00 the bandwidth floor (d=4); target within 2x: NOT met" in slow
    graphed = markdown_table(_gpu(1.5, vqp_gpu_ms=3.0))
    assert "| 0.750 | 3.000 | 0.500 | 0.67 | 1.33 | 0.40 | 4.00 | 3.00 | 1.50 |" in graphed
    assert "GPU time (CUDA graph): fused over vector-quantize-pytorch eager at N >= 2^16: at least x4.00" in graphed
    assert "target >= 3x: met" in graphed and "at least x2.00" in markdown_table(_gpu(1.5, vqp_gpu_ms=1.5))


def test_audio_tables_show_the_measured_numbers():
    anchors = {
        "benchmark": {"kind": "audio_anchors", "date": "d"},
        "clips": 2,
        "seconds_per_clip": [1.0, 2.5],
        "source": "synthetic speech",
        "anchors": {
            "codec2-2400": {
                "bits_per_second": 2400.0,
                "file_bits_per_second": 2603.7,
                "pesq_wb": 1.625,
                "stoi": 0.8148,
                "mel_distance": 7.878,
                "stft_distance": 3.12,
                "si_snr_db": -27.04,
                "delay_ms": 24.0,
            }
        },
        "load_average_before": [1.0],
        "load_average_after": [2.0],
    }
    text = markdown_table(anchors)
    assert "| codec2-2400 | 2400 | 2604 | 1.62 | 0.815 | 7.88 | 3.12 | -27.0 | 24 |" in text
    assert "2 clips of synthetic speech (up to 2.5 s)" in text
    meta = {
        "kind": "audio_data",
        "date": "d",
        "cpu_model": "cpu",
        "cpu_count": 2,
        "torch_threads": 1,
        "clip_seconds": 2.0,
        "batch": 16,
        "repeats": 3,
        "machine_note": "idle",
        "loadavg_1_5_15min": {"start": [0.5, 0, 0], "end": [0.7, 0, 0]},
    }
    rows = [
        {"what": "loader", "format": ".wav", "workers": 2, "realtime": 390.6, "realtime_per_worker": 195.3,
         "first_batch_s": 0.48},
        {"what": "memory", "clips": 100, "peak_rss_mib": 500.0, "samples": [1, 2, 3]},
        {"what": "memory", "clips": 10000, "peak_rss_mib": 510.0, "samples": [1, 2, 3]},
    ]  # fmt: skip
    text = markdown_table({"benchmark": meta, "results": rows})
    assert "| .wav | 2 | 391 | 195 | 0.48 |" in text and "Peak memory 10000 vs 100 clips: x1.020." in text
