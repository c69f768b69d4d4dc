"""Our multi-resolution STFT loss against auraloss 0.4.0's: agreement and speed (forward + backward), one thread.

Same inputs for both: a batch of 16 one-second 16 kHz noise signals and a noisy copy, FFT sizes 512 / 1024 / 2048
with hops of a quarter window (auraloss's ``MultiResolutionSTFTLoss(fft_sizes, hop_sizes, win_lengths)``). Values
are compared on the first clip (auraloss takes the spectral convergence of a whole batch at once, ours per clip);
times are medians of ``--repeats`` interleaved forward + backward passes on the batch. The multi-scale mel loss
is timed alone: auraloss's mel scale needs librosa.

Run: ``.venv/bin/python benchmarks/spectral_losses.py`` (auraloss from the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from fsq.losses.spectral import MultiResolutionSTFTLoss, MultiScaleMelLoss


def seconds(loss: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    recon = x.clone().requires_grad_(True)
    start = time.perf_counter()
    loss(recon, y).backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    import auraloss  # the bench extra

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    y = torch.randn(args.batch, 1, 16000, generator=g) * 0.3
    x = y + 0.05 * torch.randn(y.shape, generator=g)
    windows = [512, 1024, 2048]
    losses = {
        "fsq MR-STFT": MultiResolutionSTFTLoss(windows),
        "auraloss MR-STFT": auraloss.freq.MultiResolutionSTFTLoss(windows, [w // 4 for w in windows], windows),
        "fsq multi-scale mel": MultiScaleMelLoss(16000, (64, 128, 256, 512, 1024, 2048)),
    }
    values = {name: float(loss(x[:1], y[:1])) for name, loss in losses.items()}
    times: dict[str, list[float]] = {name: [] for name in losses}
    for _ in range(args.repeats):
        for name, loss in losses.items():
            times[name].append(seconds(loss, x, y))
    for name in losses:
        print(f"{name:22s} value {values[name]:.7f}  median {statistics.median(times[name]) * 1e3:7.1f} ms")
    print(f"MR-STFT difference: {abs(values['fsq MR-STFT'] - values['auraloss MR-STFT']):.2e}")


if __name__ == "__main__":
    main()
