"""GPU table: FSQ forward + backward, fused Triton kernels vs eager paths vs the memory-bandwidth floor.

Run through ``benchmarks/quantizers.py --gpu-table`` (CUDA only; ``--quick`` for a smaller grid). For every
N in 2^12 ... 2^24 vectors (step x4) and d in 3 ... 8 channels (levels below), input shape (1, N, d) float32:

- ``fused``:  ``fsq.FSQ(levels, kernel="triton")`` (what ``kernel="auto"`` picks on CUDA), defaults otherwise
  (its NaN check is deferred on CUDA: a reduction and an asynchronous copy, no host sync);
- ``eager``:  ``fsq.FSQ(levels, kernel="eager")``;
- ``fused_nc``: the same with ``check_finite=False`` (no NaN check);
- ``vqp``:    vector-quantize-pytorch ``FSQ(levels)`` (skipped if not installed);
- ``vqp_c``:  the same under ``torch.compile(dynamic=True)`` (one compilation per d serves every N);
- ``base``:   ``x * 1.0`` forward and backward: the harness's own floor (host overhead of any one-op step);
- ``graph``:  ``fused_nc``'s and ``vqp``'s fwd+bwd captured in a CUDA graph and replayed: GPU time alone;
- ``floor``:  bytes moved / measured copy bandwidth. A fwd+bwd has to read z (4d bytes) and write codes (4d) and
  one int64 index (8), then read the upstream gradient (4d) and z again (4d) and write dL/dz (4d): ``20 d + 8``
  bytes per vector. The bandwidth is that of a 1 GiB device-to-device ``copy_`` (read + write counted).

One step = forward + ``torch.autograd.backward(quantized, g)`` with a fixed random upstream gradient ``g`` and a
fresh clone of the input with ``requires_grad`` (the clone is not timed), timed with CUDA events. Warm-up, then
repeats interleaved round-robin over the quantizers of a cell; median and inter-quartile range. Peak memory: one
step's ``max_memory_allocated`` above what was allocated before it (input, ``g`` excluded).

``--dry-run`` runs the same code on CPU tensors under Triton's interpreter (``TRITON_INTERPRET=1`` must be set
before the script starts), at tiny sizes, with ``torch.compile(backend="aot_eager")``: it checks the code path,
its timings mean nothing.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import statistics
import time
from pathlib import Path

import torch

from fsq import FSQ
from side_by_side import recorded_args  # benchmarks/side_by_side.py

try:
    from vector_quantize_pytorch import FSQ as VQP_FSQ

    VQP_VERSION: str | None = importlib.metadata.version("vector-quantize-pytorch")
except ImportError:  # optional: `pip install -e ".[bench]"`
    VQP_FSQ, VQP_VERSION = None, None

LEVELS = {
    3: [8, 6, 5],
    4: [8, 5, 5, 5],
    5: [7, 5, 5, 5, 5],
    6: [8, 8, 8, 5, 5, 5],
    7: [8, 8, 8, 5, 5, 5, 5],
    8: [8, 8, 8, 8, 5, 5, 5, 5],
}
NAMES = ["fused", "fused_nc", "eager", "vqp", "vqp_c", "base"]


class Base(torch.nn.Module):
    """The harness's floor: one element-wise op forward and backward (what any quantizer's step costs at least)."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (x * 1.0,)


def grid(quick: bool, dry_run: bool) -> tuple[list[int], list[int]]:
    """(N values, d values) of the table."""
    if dry_run:
        return [2**8], [3, 4]
    if quick:
        return [2**12, 2**16, 2**20, 2**24], [4, 8]
    return [2**k for k in range(12, 25, 2)], [4, 8, 3, 6, 5, 7]  # the --quick d first: a cut run keeps them


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: str) -> float:
    """Milliseconds of ``fn()``: CUDA events on a GPU, wall clock on the CPU."""
    if device == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end)
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def copy_bandwidth(device: str, nbytes: int) -> float:
    """Measured bytes/s of ``dst.copy_(src)`` (read + write counted), best of 10 after a warm-up."""
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device).fill_(1.0)
    dst = torch.empty_like(src)
    dst.copy_(src)
    best = min(timed(lambda: dst.copy_(src), device) for _ in range(10))
    return 2 * nbytes / (best / 1e3)


def make_models(d: int, device: str, compile_backend: str) -> tuple[dict, dict]:
    """The quantizers of one d, and the reasons for those skipped."""
    levels = LEVELS[d]
    models = {
        "fused": FSQ(levels, kernel="triton"),
        "fused_nc": FSQ(levels, kernel="triton", check_finite=False),
        "eager": FSQ(levels, kernel="eager"),
    }
    skipped = {}
    if VQP_FSQ is None:
        skipped["vqp"] = skipped["vqp_c"] = "vector-quantize-pytorch not installed"
    else:
        models["vqp"] = VQP_FSQ(levels)
        # dynamic: one compilation per d serves every N (static shapes would compile twice per d)
        models["vqp_c"] = torch.compile(VQP_FSQ(levels).to(device), backend=compile_backend, dynamic=True)
    models["base"] = Base()
    order = {name: i for i, name in enumerate(NAMES)}
    return {name: models[name].to(device) for name in sorted(models, key=order.get)}, skipped


def graph_ms(model, x0: torch.Tensor, g: torch.Tensor, repeats: int) -> float:
    """Median GPU milliseconds of one fwd+bwd captured in a CUDA graph and replayed: the kernels' own time, with
    no host overhead (the model must not synchronise: ``check_finite=False``)."""
    x = x0.clone().requires_grad_()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up on a side stream before capture, as torch.cuda.graph requires
        for _ in range(3):
            x.grad = None
            torch.autograd.backward(model(x)[0], g)
    torch.cuda.current_stream().wait_stream(side)
    x.grad = None
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        torch.autograd.backward(model(x)[0], g)
    return statistics.median(timed(graph.replay, "cuda") for _ in range(repeats))


def inputs(gen: torch.Generator, n: int, d: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A cell's input ``x0`` (1, n, d), scaled by 2 so every level is hit, and its upstream gradient ``g``."""
    return (torch.randn(1, n, d, generator=gen) * 2).to(device), torch.randn(1, n, d, generator=gen).to(device)


GRAPHED = {  # the quantizers whose GPU time alone is measured, and how to build one for d (no host sync)
    "fused_nc": lambda d: FSQ(LEVELS[d], kernel="triton", check_finite=False),
    "vqp": lambda d: VQP_FSQ(LEVELS[d]),
}


def graph_pass(rows: list[dict], gen: torch.Generator, device: str, meta: dict, out: Path) -> None:
    """Add ``graph_ms`` (fwd+bwd replayed as a CUDA graph: GPU time, no host overhead) to the rows of the
    quantizers in :data:`GRAPHED`; a quantizer whose capture fails gets ``graph_error`` and is not retried."""
    print("GPU time alone (fwd+bwd replayed as a CUDA graph, no host overhead):")
    failed: set[str] = set()
    for row in rows:
        name = row["quantizer"]
        if name not in GRAPHED or name in failed or "median_ms" not in row:
            continue
        d, n = row["d"], row["N"]
        x0, g = inputs(gen, n, d, device)
        try:
            row["graph_ms"] = graph_ms(GRAPHED[name](d).to(device), x0, g, 20)
            print(f"{n:>9} {d:>2} {name:>9} | {row['graph_ms']:.4f} ms", flush=True)
        except Exception as error:  # noqa: BLE001 - reported, never hidden
            row["graph_error"] = f"{type(error).__name__}: {str(error)[:300]}"
            print(f"{n:>9} {d:>2} {name:>9} | {row['graph_error']}", flush=True)
            failed.add(name)
        write_json(out, meta, rows)


SWEEP = [(2048, 4), (2048, 8), (4096, 4), (8192, 8), (16384, 8), (16384, 16)]  # (elements per program, warps)


def block_sweep(gen: torch.Generator, n: int, dims: list[int]) -> list[dict]:
    """GPU time (CUDA graph) of the fused fwd+bwd at ``n`` vectors for launch settings other than the defaults
    (``kernels.GPU_BLOCK`` elements per program, ``kernels.GPU_WARPS``), to choose them from measurements."""
    from fsq.quantizers import kernels

    default = (kernels.GPU_BLOCK, kernels.GPU_WARPS)
    rows = []
    try:
        for d in dims:
            x0, g = inputs(gen, n, d, "cuda")
            for block, warps in [default, *SWEEP]:
                kernels.GPU_BLOCK, kernels.GPU_WARPS = block, warps
                try:
                    ms = graph_ms(GRAPHED["fused_nc"](d).cuda(), x0, g, 10)
                    rows.append({"N": n, "d": d, "block": block, "warps": warps, "graph_ms": ms})
                    print(f"  sweep d={d} block={block} warps={warps}: {ms:.4f} ms", flush=True)
                except Exception as error:  # noqa: BLE001 - recorded, never hidden
                    rows.append({"N": n, "d": d, "block": block, "warps": warps, "error": str(error)[:200]})
    finally:
        kernels.GPU_BLOCK, kernels.GPU_WARPS = default
    return rows


def host_breakdown(device: str, calls: int) -> dict[str, float]:
    """Host microseconds per call of the pieces of a step, at N = 2^12, d = 4 (GPU work of a few microseconds,
    so a loop of ``calls`` without synchronising measures what the host spends submitting): where a fused step's
    host time goes, beside a one-op step and a bare torch kernel launch."""
    from fsq.quantizers import fused, kernels

    levels = LEVELS[4]
    q, q_deferred = FSQ(levels, kernel="triton", check_finite=False).to(device), FSQ(levels, kernel="triton")
    q_deferred = q_deferred.to(device)
    z = torch.randn(2**12, 4, device=device) * 2
    x = z.clone().requires_grad_()
    g = torch.randn_like(z)
    consts, ints = q._kernel_floats, q._kernel_ints
    pieces = {
        "torch op (z * 1)": lambda: z * 1.0,
        "one-op step (x * 1 fwd+bwd)": lambda: torch.autograd.backward(x * 1.0, g),
        "fused forward kernel (kernels.quantize)": lambda: kernels.quantize(z, consts, ints, False, True),
        "fused backward kernel (kernels.quantize_backward)": lambda: kernels.quantize_backward(g, z, consts, True),
        "autograd.Function forward (fused.quantize_eager)": lambda: fused.quantize_eager(z, consts, ints, False, True),
        "FSQ forward, no check": lambda: q(z),
        "FSQ forward, deferred check": lambda: q_deferred(z),
        "FSQ step, no check": lambda: torch.autograd.backward(q(x).quantized, g),
        "FSQ step, deferred check": lambda: torch.autograd.backward(q_deferred(x).quantized, g),
    }
    out = {}
    for name, fn in pieces.items():
        for _ in range(5):
            fn()
        sync(device)
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            best = min(best, (time.perf_counter() - t0) / calls * 1e6)
            sync(device)
        x.grad = None
        out[name] = round(best, 2)
        print(f"  host {name}: {best:.1f} us/call", flush=True)
    return out


def run_step(model, x0: torch.Tensor, g: torch.Tensor) -> None:
    x = x0.clone().requires_grad_()
    out = model(x)
    torch.autograd.backward(out[0], g)


def timed_step(model, x0: torch.Tensor, g: torch.Tensor, device: str) -> float:
    x = x0.clone().requires_grad_()

    def step():
        torch.autograd.backward(model(x)[0], g)

    return timed(step, device)


def peak_mb(model, x0: torch.Tensor, g: torch.Tensor, device: str) -> float | None:
    """Peak MiB of one step above the allocation before it (CUDA only; None on the CPU)."""
    if device != "cuda":
        return None
    x = x0.clone().requires_grad_()
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    torch.autograd.backward(model(x)[0], g)
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def bench_cell(models: dict, x0, g, args, device: str) -> dict:
    """Stats per quantizer of one (N, d) cell; one that fails (e.g. a kernel that does not compile on this GPU)
    gets ``{"error": ...}`` and leaves the cell, so the others are still measured."""
    stats: dict[str, dict] = {}
    for name, model in list(models.items()):
        try:
            for _ in range(args.warmup):
                run_step(model, x0, g)
            sync(device)
            stats[name] = {"peak_mb": peak_mb(model, x0, g, device)}
        except Exception as error:  # noqa: BLE001 - reported in the table, never hidden
            print(f"{name}: {type(error).__name__}: {str(error)[:300]}", flush=True)
            stats[name] = {"error": f"{type(error).__name__}: {str(error)[:300]}"}
            models = {k: m for k, m in models.items() if k != name}
    samples = {name: [] for name in models}
    for _ in range(args.repeats):  # interleaved: A, B, C, A, B, C, ...
        for name, model in models.items():
            samples[name].append(timed_step(model, x0, g, device))
    for name in models:
        s = samples[name]
        q1, med, q3 = statistics.quantiles(s, n=4, method="inclusive") if len(s) > 1 else s * 3
        stats[name].update({"median_ms": med, "iqr_ms": q3 - q1, "min_ms": min(s), "n": len(s), "samples_ms": s})
    return stats


def fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def write_json(path: Path, meta: dict, rows: list[dict]) -> None:
    """Write the table so far (atomically: a reader never sees half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"benchmark": meta, "results": rows}, indent=1))
    os.replace(tmp, path)


def run(args) -> None:
    """Print the table and write the JSON to ``args.out``."""
    device = "cpu" if args.dry_run else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--gpu-table needs CUDA (use --dry-run to check the code path on CPU)")
    if device == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
        raise SystemExit("--dry-run on CPU needs TRITON_INTERPRET=1 in the environment before the script starts")
    if args.dry_run:
        args.repeats, args.warmup = 2, 1
    compile_backend = "aot_eager" if args.dry_run else "inductor"
    sizes, dims = grid(args.quick, args.dry_run)
    bandwidth = copy_bandwidth(device, 2**30 if device == "cuda" else 2**24)
    print(f"device={device} copy bandwidth {bandwidth / 1e9:.0f} GB/s (read + write), repeats={args.repeats}")
    header = (
        f"{'N':>9} {'d':>2} | {'fused ms':>9} {'nochk ms':>9} {'eager ms':>9} {'vqp ms':>9} {'vqp_c ms':>9} "
        f"{'base ms':>9} {'floor ms':>9} | {'vqp/fused':>9} {'vqp_c/fus':>9} {'fus/floor':>9} | "
        f"{'fused MB':>9} {'vqp MB':>9}"
    )
    print(header + "\n" + "-" * len(header))
    gen, rows = torch.Generator().manual_seed(0), []
    meta = {
        "kind": "fsq_gpu",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "vector_quantize_pytorch": VQP_VERSION,
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu (dry run, Triton interpreter)",
        "copy_bandwidth_bytes_per_s": bandwidth,
        "floor": "N * (20 d + 8) bytes / copy bandwidth",
        "timing": "forward + autograd.backward(quantized, g); input clone untimed; round-robin interleaved",
        "memory": "max_memory_allocated above memory_allocated before the step" if device == "cuda" else None,
        "dry_run": bool(args.dry_run),
        "args": recorded_args(args),
    }
    print("host time per call (no synchronisation; N = 2^12, d = 4):")
    meta["host_us_per_call"] = host_breakdown(device, 3 if args.dry_run else 200)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for d in dims:
        models, skipped = make_models(d, device, compile_backend)
        for n in sizes:
            x0, g = inputs(gen, n, d, device)
            stats = bench_cell(models, x0, g, args, device)
            floor_ms = n * (20 * d + 8) / bandwidth * 1e3
            for name in NAMES:
                rec = {"N": n, "d": d, "levels": LEVELS[d], "quantizer": name}
                rows.append(rec | (stats[name] if name in stats else {"skipped": skipped[name]}))
            rows.append({"N": n, "d": d, "levels": LEVELS[d], "quantizer": "floor", "median_ms": floor_ms})
            med = {name: stats.get(name, {}).get("median_ms") for name in NAMES}
            mb = [fmt(stats.get(name, {}).get("peak_mb"), ".1f") for name in NAMES]
            fused = med["fused"]
            ratio = [None if med[k] is None or fused is None else med[k] / fused for k in ("vqp", "vqp_c")]
            print(
                f"{n:>9} {d:>2} | {fmt(fused):>9} {fmt(med['fused_nc']):>9} {fmt(med['eager']):>9} "
                f"{fmt(med['vqp']):>9} {fmt(med['vqp_c']):>9} {fmt(med['base']):>9} {floor_ms:>9.3f} | "
                f"{fmt(ratio[0], '.2f'):>9} {fmt(ratio[1], '.2f'):>9} "
                f"{fmt(None if fused is None else fused / floor_ms, '.2f'):>9} | {mb[0]:>9} {mb[3]:>9}",
                flush=True,
            )
            del x0, g
            write_json(out, meta, rows)  # after every row: a run cut short keeps what it measured
    if device == "cuda":  # last: a failed capture cannot spoil the table above
        graph_pass(rows, gen, device, meta, out)
        print("launch settings of the fused kernels at N = 2^24 (GPU time, CUDA graph):")
        meta["block_sweep"] = block_sweep(gen, 2**24 if not args.quick else 2**20, [3, 5, 4])
        write_json(out, meta, rows)
    print(f"wrote {out}")
