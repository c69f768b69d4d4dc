"""Quantizer speed and peak memory: our FSQ vs vector-quantize-pytorch's FSQ vs our VQ, same inputs, one run.

For each codebook size K in 2^8 ... 2^16 (levels from ``levels_for_codebook_size(K)``, the paper's table), the input
is 65536 vectors of ``d = len(levels)`` channels, shape (1, 65536, d) float32, for every quantizer:

- ``ours``:   ``fsq.FSQ(levels)`` as users get it (``check_finite=True``, int64 indices computed);
- ``vqp``:    vector-quantize-pytorch ``FSQ(levels)`` (its defaults: int32 indices computed); skipped if missing;
- ``vq``:     ``fsq.quantizers.vq.VQ(K, dim=d, recipe="maskgit_noentropy")`` (nearest-codeword search, O(N K));
- ``vq_ent``: the same with ``recipe="maskgit"`` (adds the entropy loss on dense N x K distances).

One step = forward + ``((quantized * w).sum() + aux_loss).backward()`` with a fixed random ``w`` (a real upstream
gradient) and a fresh input clone with ``requires_grad`` (the clone is not timed). ``aux_loss`` (VQ's commitment,
codebook and entropy terms; a constant zero for our FSQ) is added so VQ's backward is the one users pay for.
Time: warm-up, then repeats interleaved round-robin over the quantizers (A, B, C, A, B, C, ...) so machine noise
hits all alike; median and inter-quartile range. A quantizer stops early once it has ``--min-repeats`` samples
and ``--max-seconds`` of timed work (slow VQ cells). Peak memory of one step: CPU, the peak of the running sum of
the profiler's allocation events (``torch.profiler`` with ``profile_memory=True``), above what existed before;
CUDA, ``max_memory_allocated`` above the allocation before the step. On CUDA steps are timed with CUDA events,
also under ``torch.autocast("cuda", dtype=torch.bfloat16)`` with bf16 input (mode ``bf16_autocast``).

VQ is skipped above ``--vq-max-k`` / ``--vq-ent-max-k`` (CPU defaults 2^14 / 2^10: at K = 2^16 one VQ step takes
about a minute on one CPU thread, and the entropy recipe holds several N x K float32 tensors, 16 GiB each).

Run: ``make bench`` (= ``.venv/bin/python benchmarks/quantizers.py``); ``--quick`` for a fast smoke run;
``--threads 1 2``, ``--repeats N``, ``--device cpu|cuda``, ``--out PATH`` (JSON with all numbers and metadata).

``--gpu-table`` prints the GPU table instead (fused Triton kernels vs eager paths vs the bandwidth floor, N up to
2^24 vectors; see ``gpu_table.py``); ``--gpu-table --dry-run`` checks its code path on CPU under the interpreter.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from fsq import FSQ
from fsq.quantizers.levels import levels_for_codebook_size
from fsq.quantizers.vq import VQ
from side_by_side import recorded_args  # benchmarks/side_by_side.py

try:
    from vector_quantize_pytorch import FSQ as VQP_FSQ

    VQP_VERSION: str | None = importlib.metadata.version("vector-quantize-pytorch")
except ImportError:  # optional: `pip install -e ".[bench]"`
    VQP_FSQ, VQP_VERSION = None, None

N = 65536
SIZES = [2**8, 2**10, 2**12, 2**14, 2**16]
NAMES = ["ours", "vqp", "vq", "vq_ent"]
MEMORY_METHOD = {
    "cpu": "peak of the running sum of torch.profiler [memory] events (alloc +, free -) above pre-step allocations",
    "cuda": "torch.cuda.max_memory_allocated above memory_allocated before the step",
}


def make_quantizers(k: int, levels: list[int], args, device: str) -> tuple[dict, dict]:
    """Quantizers for codebook size ``k`` and the reasons for those skipped."""
    d, made, skipped = len(levels), {"ours": FSQ(levels)}, {}
    if VQP_FSQ is None:
        skipped["vqp"] = "vector-quantize-pytorch not installed"
    else:
        made["vqp"] = VQP_FSQ(levels)
    for name, recipe, max_k in (("vq", "maskgit_noentropy", args.vq_max_k), ("vq_ent", "maskgit", args.vq_ent_max_k)):
        if k > max_k:
            skipped[name] = f"K > {max_k} (--{name.replace('_', '-')}-max-k)"
            continue
        made[name] = VQ(k, dim=d, recipe=recipe)
    return {name: m.to(device) for name, m in made.items()}, skipped


def step(model, x: torch.Tensor, w: torch.Tensor) -> None:
    """One forward + backward; both FSQs return their indices, VQ adds its aux loss."""
    out = model(x)
    loss = (out[0] * w).sum()
    if len(out) > 2:
        loss = loss + out[2]
    loss.backward()


def autocast_ctx(enabled: bool):
    return torch.autocast("cuda", dtype=torch.bfloat16) if enabled else contextlib.nullcontext()


def timed_step(model, x0, w, device: str, autocast: bool) -> float:
    """Milliseconds of one step on a fresh clone of ``x0``."""
    model.zero_grad(set_to_none=True)
    x = x0.clone().requires_grad_()
    with autocast_ctx(autocast):
        if device == "cuda":
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step(model, x, w)
            end.record()
            torch.cuda.synchronize()
            return start.elapsed_time(end)
        t0 = time.perf_counter()
        step(model, x, w)
        return (time.perf_counter() - t0) * 1e3


def peak_mb(model, x0, w, device: str, autocast: bool) -> float:
    """Peak MB allocated by one step above what was allocated before it (input, w, parameters excluded)."""
    model.zero_grad(set_to_none=True)
    x = x0.clone().requires_grad_()
    with autocast_ctx(autocast):
        if device == "cuda":
            torch.cuda.synchronize()
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            step(model, x, w)
            torch.cuda.synchronize()
            return (torch.cuda.max_memory_allocated() - base) / 2**20
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            step(model, x, w)
    return cpu_peak_from_profile(prof) / 2**20


def cpu_peak_from_profile(prof) -> int:
    """Peak of the running sum of CPU allocation (+bytes) / free (-bytes) events, in time order."""
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    events = [e for e in events if e.device_type() == torch.autograd.DeviceType.CPU]
    running = peak = 0
    for e in sorted(events, key=lambda e: e.start_ns()):
        running += e.nbytes()
        peak = max(peak, running)
    return peak


def check_memory_method() -> None:
    """The profiler method must see a 4 MiB allocation as 4 MiB, and a, b (4 MiB); del a; c (8 MiB) as 12 MiB."""

    def toy():
        a, b = torch.ones(2**20), torch.ones(2**20)
        del a
        return torch.ones(2**21), b

    for fn, expect in ((lambda: torch.ones(2**20), 4), (toy, 12)):
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
        got = cpu_peak_from_profile(prof) / 2**20
        assert abs(got - expect) < 0.01, f"profiler memory method broken: expected {expect} MiB, got {got:.2f}"


def summarize(samples: list[float]) -> dict:
    q1, med, q3 = statistics.quantiles(samples, n=4, method="inclusive") if len(samples) > 1 else samples * 3
    stats = {"median_ms": med, "iqr_ms": q3 - q1, "q1_ms": q1, "q3_ms": q3, "min_ms": min(samples)}
    return stats | {"n": len(samples), "samples_ms": samples}


def bench_cell(models: dict, x0, w, args, device: str, autocast: bool) -> dict:
    """Warm up, measure peak memory, then time all models round-robin; returns per-model stats."""
    stats = {}
    for name, model in models.items():
        for _ in range(args.warmup):
            if timed_step(model, x0, w, device, autocast) > 1000:  # slow VQ: one warm-up is enough
                break
        stats[name] = {"peak_mb": peak_mb(model, x0, w, device, autocast)}
    samples, active = {name: [] for name in models}, list(models)
    while active:
        for name in list(active):
            samples[name].append(timed_step(models[name], x0, w, device, autocast))
            n, total = len(samples[name]), sum(samples[name]) / 1e3
            if n >= args.repeats or (n >= args.min_repeats and total > args.max_seconds):
                active.remove(name)
    for name in models:
        stats[name].update(summarize(samples[name]))
    return stats


def cpu_model() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    return next((x.split(":", 1)[1].strip() for x in lines if x.startswith("model name")), platform.processor())


def fmt_ms(r: dict | None) -> str:
    return "-" if r is None else f"{r['median_ms']:.2f}±{r['iqr_ms'] / 2:.2f}"


def parse_args() -> argparse.Namespace:
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--quick", action="store_true", help="fast smoke run: 5 repeats, VQ only at small K")
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/quantizers.json or fsq_gpu.json)")
    p.add_argument("--gpu-table", action="store_true", help="the CUDA fwd+bwd table of gpu_table.py instead")
    p.add_argument("--dry-run", action="store_true", help="with --gpu-table: tiny sizes on CPU (TRITON_INTERPRET=1)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if cuda else "cpu")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="CPU threads (default: 1 2)")
    p.add_argument("--repeats", type=int, default=None, help="timed steps per cell (default 30, --quick 5)")
    p.add_argument("--min-repeats", type=int, default=3)
    p.add_argument("--max-seconds", type=float, default=5.0, help="stop a quantizer after this much timed work")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--vq-max-k", type=int, default=None, help="largest K for VQ (default cpu 2^14, cuda 2^16)")
    p.add_argument("--vq-ent-max-k", type=int, default=None, help="largest K for VQ+entropy (cpu 2^10, cuda 2^14)")
    args = p.parse_args()
    args.out = args.out or f"benchmarks/results/{'fsq_gpu' if args.gpu_table else 'quantizers'}.json"
    if args.gpu_table:
        args.repeats, args.warmup = args.repeats or (10 if args.quick else 30), args.warmup
        return args
    on_cpu = args.device == "cpu"
    args.repeats = args.repeats or (5 if args.quick else 30)
    if args.vq_max_k is None:
        args.vq_max_k = 2**10 if args.quick else 2**14 if on_cpu else 2**16
    if args.vq_ent_max_k is None:
        args.vq_ent_max_k = 2**8 if args.quick else 2**10 if on_cpu else 2**14
    if args.quick:
        args.warmup, args.min_repeats, args.max_seconds = 1, 1, 1.0
    if not on_cpu:
        args.threads = [torch.get_num_threads()]  # host threads barely matter for CUDA timings
    return args


def main() -> None:
    args, load_start = parse_args(), os.getloadavg()
    if args.gpu_table:
        import gpu_table  # beside this script

        gpu_table.run(args)
        return
    on_cpu = args.device == "cpu"
    if on_cpu:
        check_memory_method()
    notes = [f"vq skipped for K > {args.vq_max_k}, vq_ent for K > {args.vq_ent_max_k} (cost grows with K)"]
    if VQP_FSQ is None:
        notes.append("vector-quantize-pytorch is not installed: its column is skipped (pip install -e '.[bench]')")
    header = (
        f"{'mode':<13} {'K':>6} {'levels':<18} {'thr':>3} | {'ours ms':>12} {'vqp ms':>12} {'vq ms':>14} "
        f"{'vq_ent ms':>14} {'vqp/ours':>8} | {'ours MB':>8} {'vqp MB':>8} {'vq MB':>8} {'vq_ent MB':>9}"
    )
    print(f"device={args.device} N={N} repeats={args.repeats} (ms: median±IQR/2; MB: peak of one fwd+bwd)")
    print(header + "\n" + "-" * len(header))
    gen, rows = torch.Generator().manual_seed(0), []
    for mode in ["fp32"] if on_cpu else ["fp32", "bf16_autocast"]:
        for threads in args.threads:
            torch.set_num_threads(threads)
            for k in SIZES:
                levels = levels_for_codebook_size(k)
                x = torch.randn(1, N, len(levels), generator=gen).to(args.device)
                w = torch.randn(1, N, len(levels), generator=gen).to(args.device)
                x = x.bfloat16() if mode == "bf16_autocast" else x  # what an encoder under autocast hands over
                models, skipped = make_quantizers(k, levels, args, args.device)
                stats = bench_cell(models, x, w, args, args.device, mode == "bf16_autocast")
                for name in NAMES:
                    rec = {"mode": mode, "threads": threads, "K": k, "levels": levels, "quantizer": name}
                    rows.append(rec | (stats[name] if name in stats else {"skipped": skipped[name]}))
                s = stats.get
                ratio = f"{s('vqp')['median_ms'] / s('ours')['median_ms']:.2f}x" if "vqp" in stats else "-"
                mb = [f"{s(n)['peak_mb']:.1f}" if n in stats else "-" for n in NAMES]
                print(
                    f"{mode:<13} {k:>6} {str(levels):<18} {threads:>3} | {fmt_ms(s('ours')):>12} "
                    f"{fmt_ms(s('vqp')):>12} {fmt_ms(s('vq')):>14} {fmt_ms(s('vq_ent')):>14} {ratio:>8} | "
                    f"{mb[0]:>8} {mb[1]:>8} {mb[2]:>8} {mb[3]:>9}",
                    flush=True,
                )

    def pick(name):  # the headline cell: fp32, K = 2^10 ([8, 5, 5, 5]), 1 thread (CPU)
        want = {"mode": "fp32", "K": 2**10, "threads": 1 if on_cpu else args.threads[0], "quantizer": name}
        return next((r for r in rows if all(r[key] == v for key, v in want.items()) and "median_ms" in r), None)

    ours, vqp, headline = pick("ours"), pick("vqp"), None
    if ours and vqp:
        ratio = vqp["median_ms"] / ours["median_ms"]
        speed = f"{ratio:.2f}x faster" if ratio >= 1 else f"{1 / ratio:.2f}x slower"
        headline = (
            f"ours vs vector-quantize-pytorch at ({N}, 4), [8,5,5,5], {'1 thread' if on_cpu else args.device}: "
            f"{speed}, peak memory {ours['peak_mb']:.1f} MB vs {vqp['peak_mb']:.1f} MB"
        )
        print("\n" + headline)
    for note in notes:
        print("note:", note)
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "vector_quantize_pytorch": VQP_VERSION,
        "cpu_model": cpu_model(),
        "gpu": torch.cuda.get_device_name() if not on_cpu else None,
        "n_vectors": N,
        "loadavg_1_5_15min": {"start": load_start, "end": os.getloadavg()},  # other processes skew timings
        "args": recorded_args(args),
        "memory": MEMORY_METHOD[args.device],
        "timing": "fwd + ((quantized * w).sum() + aux_loss).backward(), input clone untimed; round-robin interleaved",
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "headline": headline, "notes": notes, "results": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
