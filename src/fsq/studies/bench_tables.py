"""Markdown tables of benchmarks' JSON results (``benchmarks/data.py``, ``benchmarks/data_scaling.py`` and the GPU
table of ``benchmarks/quantizers.py --gpu-table``).

A results file whose top level has ``"benchmark": {"kind": ...}`` renders here, both for the scripts' own printout
and for the README blocks of :mod:`fsq.studies.readme`, so the printed and published numbers are the same. The
machine note (CPU, threads, load average seen) goes under each table: timings on a shared machine vary with it.
Torch-free.
"""

from __future__ import annotations

from typing import Any

from fsq import markdown


def _machine(meta: dict[str, Any]) -> str:
    load = meta.get("loadavg_1_5_15min", {})
    seen = ", ".join(f"{k} {v[0]:.1f}" for k, v in load.items())
    return (
        f"_{meta.get('date', '?')}, {meta.get('cpu_model', '?')} ({meta.get('cpu_count', '?')} cores, "
        f"{meta.get('torch_threads', '?')} torch threads), torch {meta.get('torch', '?')}; "
        f"{meta.get('machine_note', 'machine shared with other work')}: 1-min load average {seen}._"
    )


def data_table(data: dict[str, Any]) -> str:
    """Loader images/s by source, resolution and workers, beside the tokenizer's training images/s."""
    meta, rows = data["benchmark"], data["results"]
    workers = sorted({r["workers"] for r in rows if r["what"] == "loader"})
    sources = sorted({r["source"] for r in rows if r["what"] == "loader"}, key=["folder", "wds"].index)
    model: dict[str, Any] = next((r for r in rows if r["what"] == "model"), {})
    loader = {(r["resolution"], r["source"], r["workers"]): r for r in rows if r["what"] == "loader"}
    head = ["px", "source"] + [f"{w} workers" for w in workers] + [f"tokenizer fwd+bwd ({model.get('preset', '?')})"]
    lines = markdown.table(head)
    for px in sorted({r["resolution"] for r in rows}):
        step = next((r for r in rows if r["what"] == "model" and r["resolution"] == px), None)
        for k, source in enumerate(sources):
            cells = [str(px), "PNG folder" if source == "folder" else "WebDataset shard"]
            for w in workers:
                hit = loader.get((px, source, w))
                cells.append(f"{hit['images_per_s']:.0f}" if hit else "-")
            cells.append(f"{step['images_per_s']:.1f} ({step['step_s']:.2f} s/step)" if step and k == 0 else "")
            lines.append(markdown.row(cells))
    ratios = []
    for px in sorted({r["resolution"] for r in rows}):
        step = next((r for r in rows if r["what"] == "model" and r["resolution"] == px), None)
        best = max((r["images_per_s"] for (p, _, _), r in loader.items() if p == px), default=None)
        if step and best:
            ratios.append(f"x{best / step['images_per_s']:.0f} at {px} px")
    note = (
        f"Images/s, median of {meta.get('repeats', '?')} interleaved repeats; batch {meta.get('batch', '?')}; "
        f"{meta.get('what', '')}"
    )
    if ratios:
        note += f" Fastest loader cell over the tokenizer's images/s: {', '.join(ratios)}."
    return "\n".join(lines) + "\n\n" + note + "\n" + _machine(meta)


def scaling_table(data: dict[str, Any]) -> str:
    """Peak memory and start-up of the same short training run over a small and a large image folder."""
    meta, rows = data["benchmark"], sorted(data["results"], key=lambda r: r["images"])
    head = ["PNG files", "peak RSS (MiB)", "time to first step (s)", "1-step run (s)", "3-step run (s)"]
    lines = markdown.table(head)
    for r in rows:
        cells = [f"{r['images']:,}", f"{r['peak_rss_mib']:.0f}", f"{r['first_step_s']:.1f}"]
        cells += [f"{r['run_1_step_s']:.1f}", f"{r['run_3_steps_s']:.1f}"]
        lines.append(markdown.row(cells))
    small, large = rows[0], rows[-1]
    memory = large["peak_rss_mib"] / small["peak_rss_mib"]
    startup = large["first_step_s"] / small["first_step_s"]
    verdict = (
        f"{large['images']:,} vs {small['images']:,} files: peak memory x{memory:.3f} (target within 10%: "
        f"{'met' if abs(memory - 1) <= 0.10 else 'NOT met'}), time to first step x{startup:.2f} (target within 1.5x: "
        f"{'met' if startup <= 1.5 else 'NOT met'})."
    )
    return "\n".join(lines) + "\n\n" + verdict + " " + meta.get("what", "") + "\n" + _machine(meta)


def gpu_table(data: dict[str, Any]) -> str:
    """FSQ fwd+bwd on a GPU (``benchmarks/quantizers.py --gpu-table``): fused kernels, eager paths, the floors.

    One line per (d, N): median ms of each path (``fused``: the default, NaN check included; ``no check``: with
    ``check_finite=False``; ``x*1``: a one-op step, the harness's own floor; ``GPU``: the fused no-check step
    replayed as a CUDA graph, i.e. the kernels' time alone; ``vqp GPU``: the same for vector-quantize-pytorch
    eager), the speed-ups over vector-quantize-pytorch, the fused times over the bandwidth floor, peak MiB; then
    the two targets checked, on step time and on GPU time: fused >= 3x vector-quantize-pytorch eager at every
    N >= 2^16, and within 2x of the floor at N = 2^24.
    """
    meta, rows = data["benchmark"], data["results"]
    cell: dict[tuple[int, int], dict[str, dict[str, Any]]] = {}
    for r in rows:
        cell.setdefault((r["d"], r["N"]), {})[r["quantizer"]] = r

    def ms(c: dict[str, dict[str, Any]], name: str, key: str = "median_ms") -> float | None:
        return c.get(name, {}).get(key)

    def f(v: float | None, spec: str = ".3f") -> str:
        return "-" if v is None else format(v, spec)

    def div(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a / b

    head = ["d", "N", "fused ms", "no check ms", "eager ms", "vqp ms", "vqp compiled ms", "x*1 ms", "GPU ms"]
    head += ["vqp GPU ms", "floor ms", "vqp / fused", "vqp / no check", "vqp compiled / fused", "vqp GPU / GPU"]
    head += ["fused / floor", "GPU / floor"]
    head += ["fused MiB", "vqp MiB"]
    lines = markdown.table(head)
    checks: dict[str, list[tuple[float, int, int]]] = {
        "speed": [],
        "speed_nc": [],
        "speed_gpu": [],
        "floor": [],
        "gpu_floor": [],
    }
    for (d, n), c in sorted(cell.items()):
        fused, nocheck, vqp, floor = ms(c, "fused"), ms(c, "fused_nc"), ms(c, "vqp"), ms(c, "floor")
        gpu, vqp_gpu = ms(c, "fused_nc", "graph_ms"), ms(c, "vqp", "graph_ms")
        values = {
            "speed": div(vqp, fused),
            "speed_nc": div(vqp, nocheck),
            "speed_gpu": div(vqp_gpu, gpu),
            "floor": div(fused, floor),
            "gpu_floor": div(gpu, floor),
        }
        for key, value in values.items():
            if value is not None and (n >= 2**16 if key.startswith("speed") else n == 2**24):
                checks[key].append((value, d, n))
        cells = [str(d), f"2^{n.bit_length() - 1}", f(fused), f(nocheck), f(ms(c, "eager")), f(vqp)]
        cells += [f(ms(c, "vqp_c")), f(ms(c, "base")), f(gpu), f(vqp_gpu), f(floor), f(values["speed"], ".2f")]
        cells += [f(values["speed_nc"], ".2f"), f(div(ms(c, "vqp_c"), fused), ".2f"), f(values["speed_gpu"], ".2f")]
        cells += [f(values["floor"], ".2f"), f(values["gpu_floor"], ".2f")]
        cells += [f(ms(c, "fused", "peak_mb"), ".1f"), f(ms(c, "vqp", "peak_mb"), ".1f")]
        lines.append(markdown.row(cells))
    verdicts = []
    speeds = (
        ("speed", "fused"),
        ("speed_nc", "fused without the NaN check"),
        ("speed_gpu", "GPU time (CUDA graph): fused"),
    )
    for key, what in speeds:
        if checks[key]:
            worst = min(checks[key])
            verdicts.append(
                f"{what[0].upper() + what[1:]} over vector-quantize-pytorch eager at N >= 2^16: at least "
                f"x{worst[0]:.2f} (d={worst[1]}, N=2^{worst[2].bit_length() - 1}); target >= 3x: "
                f"{'met' if worst[0] >= 3 else 'NOT met'}."
            )
    for key, what in (("floor", "Fused (step time)"), ("gpu_floor", "Fused kernels' GPU time (CUDA graph)")):
        if checks[key]:
            worst = max(checks[key])
            verdicts.append(
                f"{what} at N = 2^24: at most x{worst[0]:.2f} the bandwidth floor (d={worst[1]}); target within 2x: "
                f"{'met' if worst[0] <= 2 else 'NOT met'}."
            )
    bandwidth = meta.get("copy_bandwidth_bytes_per_s")
    machine = (
        f"_{meta.get('date', '?')}, {meta.get('device', '?')}, torch {meta.get('torch', '?')}, "
        f"vector-quantize-pytorch {meta.get('vector_quantize_pytorch') or 'not installed'}; copy bandwidth "
        f"{(bandwidth or 0) / 1e9:.0f} GB/s (read + write); median of {meta.get('args', {}).get('repeats', '?')} "
        f"interleaved repeats; floor = {meta.get('floor', '?')}._"
    )
    return "\n".join(lines) + "\n\n" + " ".join(verdicts) + "\n" + machine


def audio_data_table(data: dict[str, Any]) -> str:
    """The audio loader (``benchmarks/audio_data.py``): times real time per format and worker count, and the peak
    memory of a short training run over folders of more and more clips."""
    meta, rows = data["benchmark"], data["results"]
    lines = markdown.table(["files", "workers", "x real time", "x real time per worker", "first batch s"])
    for r in (r for r in rows if r["what"] == "loader"):
        cells = [r["format"], r["workers"], f"{r['realtime']:.0f}", f"{r['realtime_per_worker']:.0f}"]
        lines.append(markdown.row([*cells, f"{r['first_batch_s']:.2f}"]))
    memory = [r for r in rows if r["what"] == "memory"]
    if memory:
        lines += ["", *markdown.table(["clips in audio:DIR", "peak RSS MiB (median)", "runs"])]
        lines += [markdown.row([r["clips"], f"{r['peak_rss_mib']:.0f}", len(r["samples"])]) for r in memory]
        low, high = memory[0]["peak_rss_mib"], memory[-1]["peak_rss_mib"]
        lines.append(f"\nPeak memory {memory[-1]['clips']} vs {memory[0]['clips']} clips: x{high / low:.3f}.")
    load = meta["loadavg_1_5_15min"]
    rates = f" at {meta['file_rate']} Hz resampled to {meta['rate']} Hz" if "file_rate" in meta else ""
    lines.append(
        f"\n_{meta['date']}, {meta['cpu_model']} ({meta['cpu_count']} cores, {meta['torch_threads']} torch threads), "
        f"{meta['clip_seconds']} s clips{rates}, batch {meta['batch']}, median of {meta['repeats']} repeats; "
        f"{meta['machine_note']}: 1-min load average {load['start'][0]:.1f} at start, {load['end'][0]:.1f} at end._"
    )
    return "\n".join(lines)


def audio_anchors_table(data: dict[str, Any]) -> str:
    """The classical codecs on synthetic speech (``benchmarks/audio_anchors.py``): means over the clips."""
    meta = data["benchmark"]
    head = ["codec", "bits/s (frames)", "bits/s (file)", "PESQ-wb", "STOI", "mel distance", "STFT distance"]
    lines = markdown.table([*head, "SI-SNR dB", "delay ms"])
    for name, a in data["anchors"].items():
        cells = [name, f"{a['bits_per_second']:.0f}", f"{a['file_bits_per_second']:.0f}", f"{a['pesq_wb']:.2f}"]
        cells += [f"{a['stoi']:.3f}", f"{a['mel_distance']:.2f}", f"{a['stft_distance']:.2f}"]
        lines.append(markdown.row([*cells, f"{a['si_snr_db']:.1f}", f"{a['delay_ms']:.0f}"]))
    before, after = data.get("load_average_before", [float("nan")]), data.get("load_average_after", [float("nan")])
    lines.append(
        f"\n_{meta['date']}: {data['clips']} clips of {data['source']} (up to "
        f"{max(data['seconds_per_clip']):.1f} s), means over clips; 1-min load average {before[0]:.1f} before, "
        f"{after[0]:.1f} after._"
    )
    return "\n".join(lines)


def video_data_table(data: dict[str, Any]) -> str:
    """The video-file loader (``benchmarks/video_data.py``): clips/s and peak memory for folders of few and many
    videos, beside the tokenizer's own clips/s."""
    meta, rows, model = data["benchmark"], data["loader"], data["model"]
    head = ["videos", "folder MB", "workers", "clips/s", "first batch s", "peak RSS MiB", "worker peak RSS MiB"]
    lines = markdown.table(head, align="---:")
    for r in rows:
        worker = f"{r['worker_peak_rss_mib']:.0f}" if r["worker_peak_rss_mib"] else "-"
        cells = [r["videos"], f"{r['folder_mb']:.1f}", r["workers"], f"{r['clips_per_s']:.1f}"]
        lines.append(markdown.row([*cells, f"{r['first_batch_s']:.2f}", f"{r['peak_rss_mib']:.0f}", worker]))
    config = meta.get("args", {}).get("config", "?").rsplit("/", 1)[-1].removesuffix(".yaml")
    shape = "x".join(map(str, model["shape"]))
    load = meta["loadavg_1_5_15min"]
    lines.append(
        f"\nThe tokenizer ({config}, clips {shape}, batch {meta.get('args', {}).get('batch', '?')}): "
        f"{model['step_s']:.2f} s/step = {model['clips_per_s']:.1f} clips/s. {meta.get('what', '')}\n"
        f"_{meta['date']}, {meta['cpu_count']} cores; {meta['machine_note']}: 1-min load average "
        f"{load['start'][0]:.1f} at start, {load['end'][0]:.1f} at end._"
    )
    return "\n".join(lines)


def speech_codec_speed_table(data: dict[str, Any]) -> str:
    """The speech codec's real-time factor on CPU threads (``benchmarks/speech_codec_speed.py``): medians of
    encode and decode as ``fsq encode`` / ``fsq decode`` run them, and seconds of audio per second of compute."""
    meta = data["benchmark"]
    head = ["model", "bits/s", "threads", "audio s", "encode s", "decode s", "x real time (encode + decode)", "target"]
    cells = [data["model"], f"{data['bits_per_second']:.0f}", data["threads"], f"{data['audio_seconds']:.1f}"]
    cells += [f"{data['encode_median_s']:.3f}", f"{data['decode_median_s']:.3f}", f"{data['real_time_factor']:.1f}"]
    lines = markdown.table(head, [[*cells, f">= {data['target_real_time_factor']:g}"]])
    before, after = data["load_average_before"], data["load_average_after"]
    lines.append(
        f"\n_{meta['date']}: {data['signal']}, chunks of {data['chunk_samples']} samples, median of "
        f"{data['repeats']} repeats ({data['cpu']}, torch {data['torch']}); 1-min load average {before[0]:.1f} "
        f"before, {after[0]:.1f} after (other work on a shared machine slows it: a lower bound)._"
    )
    return "\n".join(lines)


TABLES = {
    "speech_codec_speed": speech_codec_speed_table,
    "data": data_table,
    "data_scaling": scaling_table,
    "fsq_gpu": gpu_table,
    "audio_data": audio_data_table,
    "audio_anchors": audio_anchors_table,
    "video_data": video_data_table,
}


def markdown_table(data: dict[str, Any]) -> str:
    """The table of a benchmark results file, by its ``benchmark.kind``."""
    kind = data["benchmark"]["kind"]
    if kind not in TABLES:
        raise ValueError(f"unknown benchmark kind {kind!r}: expected one of {sorted(TABLES)}")
    return TABLES[kind](data)
