"""Size the GPU video preset (configs/tokenizer/fsq_video_256_gpu.yaml): parameters, activation memory, step time.

CPU (the default): the parameters of the full-size model, and the bytes autograd saves for one training clip
(forward + MSE, counted by ``torch.autograd.graph.saved_tensors_hooks``), in fp32 and under CPU bf16 autocast,
measured at a reduced frame size (``--size``, default 32 px): the saved activations, ``(C, T, H, W)`` each, scale
with ``H x W`` to the preset's size; the saved weights (and their bf16 copies) do not. CUDA's autocast runs
GroupNorm in fp32 where the CPU's keeps bf16: its figure lies between the two. CUDA (``--device cuda``): the peak
memory (``torch.cuda.max_memory_allocated``) and the time of whole training steps (forward, MSE, backward, Adam)
under bf16 autocast at the preset's size, for each batch of ``--batches`` (a batch that runs out of memory is
reported as such).

    python benchmarks/video_preset.py                          # CPU: ~30 s on 2 cores
    python benchmarks/video_preset.py --device cuda --batches 1 2 4 --out video_preset.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from fsq.config import TokenizerExperiment, load_config
from fsq.models.autoencoder import Tokenizer, TokenizerSpec
from fsq.stages.tokenizer import tokenizer_spec

ROOT = Path(__file__).parents[1]
CONFIG = ROOT / "configs" / "tokenizer" / "fsq_video_256_gpu.yaml"
GIB = 2**30


def preset_spec(size: int | None = None, overrides: list[str] | None = None) -> TokenizerSpec:
    """The preset's model spec (at ``size`` px instead of its own when given)."""
    extra = [f"data.image_size={size}"] if size else []
    cfg = load_config(TokenizerExperiment, [CONFIG], [*extra, *(overrides or [])])
    return tokenizer_spec(cfg, in_channels=cfg.data.channels or 3)


def parameter_counts(spec: TokenizerSpec) -> dict[str, int]:
    return Tokenizer(spec).parameter_counts()  # 154 MB on the CPU (the meta device costs seconds more to set up)


def saved_bytes_per_clip(spec: TokenizerSpec, bf16: bool) -> dict[str, int]:
    """Bytes autograd keeps for backward for one clip through the model and the MSE loss (CPU): ``activations``
    (which scale with the frame size) and ``weights`` (tensors of a parameter's shape: the weights and their bf16
    copies, which do not)."""
    torch.manual_seed(0)
    model = Tokenizer(spec)
    shapes = {tuple(p.shape) for p in model.parameters()}
    saved = {"activations": 0, "weights": 0}

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved["weights" if tuple(t.shape) in shapes else "activations"] += t.numel() * t.element_size()
        return t

    x = torch.rand(1, spec.in_channels, *spec.input_shape)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            reconstruction, out = model(x)
        F.mse_loss(reconstruction.float(), x) + out.aux_loss
    return saved


def cuda_steps(spec: TokenizerSpec, batches: list[int], steps: int) -> list[dict[str, object]]:
    """Peak memory and seconds per training step under bf16 autocast, per batch size."""
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    model = Tokenizer(spec).cuda()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    rows: list[dict[str, object]] = []
    for batch in batches:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        try:
            x = torch.rand(batch, spec.in_channels, *spec.input_shape, device="cuda")
            times = []
            for _ in range(steps + 1):  # the first one warms up (cuDNN's algorithm search)
                start = time.perf_counter()
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    reconstruction, out = model(x)
                    loss = F.mse_loss(reconstruction.float(), x) + out.aux_loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
            peak = torch.cuda.max_memory_allocated() / GIB
            rows.append({"batch": batch, "peak_gib": round(peak, 2), "s_per_step": round(min(times[1:]), 4)})
        except torch.cuda.OutOfMemoryError:
            rows.append({"batch": batch, "peak_gib": None, "s_per_step": None, "error": "out of memory"})
            x = None  # type: ignore[assignment]
            optimizer.zero_grad(set_to_none=True)
        print(rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--size", type=int, default=32, help="CPU: the frame size the activations are counted at")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4], help="CUDA: clips per step")
    parser.add_argument("--steps", type=int, default=2, help="CUDA: timed steps per batch (after one warm-up)")
    parser.add_argument("--out", help="write the numbers as JSON here")
    parser.add_argument("overrides", nargs="*", help="config overrides (key=value), e.g. model.filters=96")
    args = parser.parse_args(argv)
    spec = preset_spec(overrides=args.overrides)
    result: dict[str, object] = {
        "config": CONFIG.name,
        "input": [spec.in_channels, *spec.input_shape],
        "grid": list(spec.grid_shape),
        "parameters": parameter_counts(spec),
    }
    print(f"input {result['input']} -> tokens {result['grid']}; parameters {result['parameters']}")
    if args.device == "cpu":
        small = preset_spec(args.size, args.overrides)
        scale = (spec.input_shape[1] * spec.input_shape[2]) / (small.input_shape[1] * small.input_shape[2])
        for name, bf16 in (("fp32", False), ("cpu_bf16_autocast", True)):
            saved = saved_bytes_per_clip(small, bf16)
            per_clip = (saved["activations"] * scale + saved["weights"]) / GIB
            result[f"saved_gib_per_clip_{name}"] = round(per_clip, 2)
            print(
                f"{name}: autograd saves {per_clip:.2f} GiB per clip (activations measured at {args.size} px, "
                f"x{scale:g}; weights and their copies {saved['weights'] / GIB:.2f} GiB)"
            )
    else:
        result["cuda"] = cuda_steps(spec, args.batches, args.steps)
        result["device"] = torch.cuda.get_device_name()
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
