"""The voice judge: a small 1-D conv net that says which training voice speaks a clip, for voice-conditioned samples.

A voice-conditioned MaskGIT over speech tokens is scored by the share of its samples that this classifier assigns to
the voice they were conditioned on. The judge is only as credible as its accuracy on real clips it never heard, so
``load_or_train_voice_judge`` measures it on the ``heldout`` split of the ``speech`` source (the training voices
speaking sentences never used in training) and returns it beside the model: report it first, then the samples'
accuracy, then chance (one over the number of voices).

- Features: log-mel spectrograms (:func:`fsq.metrics.spectral.log_mel_spectrogram`: Hann window and FFT of 512
  samples, hop 160, 64 mels; 32 ms and 10 ms at 16 kHz), with the clip's mean log-mel value subtracted (loudness
  does not decide the voice; the spectral shape does).
- ``VoiceClassifier``: three conv-BN-ReLU blocks over mel frames (kernel 5, dilations 1, 2, 4), statistics pooling
  (mean and standard deviation over time, as x-vectors do), dropout, linear. Any clip of at least ``n_fft // 2 + 1``
  samples; audio float ``(N, 1, T)`` in the project's ``[0, 1]`` scale (silence ``0.5``).
- ``train_voice_classifier``: AdamW (linear warm-up, cosine decay) on random crops of ``length`` samples (taken from
  the precomputed log-mels of whole clips; a clip shorter than the crop is padded with silence); deterministic given
  ``seed``; the global RNG is left untouched.
- ``predict_voices`` / ``voice_accuracy``: batched inference in eval mode; predictions are voice ids (the labels the
  judge was trained with), not output indices.
- ``load_or_train_voice_judge``: train on the ``train`` split of the ``speech`` source in a data cache, measure on
  centre crops of the ``heldout`` split, cache the weights (safetensors) and a JSON record under
  ``<cache>/classifiers/``, keyed by the settings and the source's checksum; a second call loads. With ``through``
  (a codec's reconstruction of a clip) and its ``through_key`` it trains on the training clips as that codec renders
  them: a judge that hears through the codec's artefacts, for samples that all come out of that codec. It then
  measures something else than a judge of real speech (whether a clip sounds like voice V *as this codec renders
  it*), so its record says what it trained on, and its accuracy on the codec's reconstructions of held-out clips
  (the ceiling a sampler can reach) must be reported beside the samples'.

Measured on the full source (28 training voices, 1,400 training clips): the defaults (width 64, 400 steps of batch
64) on 1 s crops judge 89.6% of the 280 ``heldout`` clips right (chance 3.6%), on 0.5 s crops 88.2%, each in about
760 s of wall time on the 2-core CPU shared with other jobs (load ~10; about 4 CPU-minutes). Through a codec: such a
judge names the right voice for only 19.3% of the ``speech-fsq`` bundle's reconstructions of the held-out clips at
1.86 kbps; one trained on that codec's reconstructions of the training clips (1 s crops, 400 steps) for 69.3% of
them (and 33.9% of the real clips), 2026-12-07, one thread. On the small test
source, 50 steps on two clips each of four voices tell all their held-out clips apart.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fsq.checkpoint import load_safetensors, save_safetensors_atomic
from fsq.io import read_json, write_json_atomic
from fsq.metrics.spectral import log_mel_spectrogram, to_waveform

N_FFT = 512
HOP = 160
N_MELS = 64
DEFAULT_WIDTH = 64
DEFAULT_STEPS = 400
DEFAULT_BATCH_SIZE = 64
DEFAULT_LR = 3e-3
WARMUP_STEPS = 20


def log_mel_features(audio01: torch.Tensor, rate: float) -> torch.Tensor:
    """Log-mel frames ``(N, N_MELS, frames)`` of mono audio ``(N, 1, T)`` in ``[0, 1]`` (silence ``0.5``), each
    clip's mean log-mel value subtracted; a ValueError naming the shape for anything else."""
    if audio01.ndim != 3 or audio01.shape[1] != 1 or not audio01.is_floating_point():
        raise ValueError(f"expected float mono audio (N, 1, T) in [0, 1], got {audio01.dtype} {tuple(audio01.shape)}")
    if audio01.shape[-1] <= N_FFT // 2:
        raise ValueError(f"clips must be longer than {N_FFT // 2} samples for the voice judge, got {audio01.shape[-1]}")
    mel = log_mel_spectrogram(to_waveform(audio01[:, 0].float()), rate, N_FFT, HOP, N_MELS)
    return mel - mel.mean((1, 2), keepdim=True)


def frames_of(length: int) -> int:
    """Log-mel frames of a clip of ``length`` samples (centred STFT)."""
    return length // HOP + 1


class VoiceClassifier(nn.Module):
    """Conv1d-BN-ReLU x3 over log-mel frames (widths ``width``, ``width``, ``2 width``; kernel 5, dilations 1, 2, 4),
    mean and standard deviation over time, dropout, linear to ``len(voices)`` logits. ``voices``: the voice id of
    each output (the labels it was trained on); ``rate``: the sample rate of the audio it judges."""

    def __init__(self, voices: list[int], rate: float, width: int = DEFAULT_WIDTH, dropout: float = 0.2) -> None:
        super().__init__()
        if len(voices) < 2 or len(set(voices)) != len(voices):
            raise ValueError(f"a voice judge needs at least 2 distinct voices, got {voices}")
        if width < 1 or rate <= 0:
            raise ValueError(f"width and rate must be positive, got {width} and {rate}")
        self.voices, self.rate, self.width = list(voices), float(rate), width
        widths = [N_MELS, width, width, 2 * width]
        layers: list[nn.Module] = []
        for k in range(3):
            layers += [
                nn.Conv1d(widths[k], widths[k + 1], 5, padding=2 * 2**k, dilation=2**k, bias=False),
                nn.BatchNorm1d(widths[k + 1]),
                nn.ReLU(inplace=True),
            ]
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(4 * width, len(voices))

    def forward_features(self, mel: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, len(voices))`` of log-mel frames ``(N, N_MELS, frames)``."""
        h = self.features(mel)
        pooled = torch.cat([h.mean(-1), h.std(-1, unbiased=False)], 1)
        return self.head(self.dropout(pooled))

    def forward(self, audio01: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, len(voices))`` of mono audio ``(N, 1, T)`` in ``[0, 1]`` at ``rate``."""
        return self.forward_features(log_mel_features(audio01, self.rate))


def _learning_rate(step: int, steps: int, lr: float) -> float:
    warmup = min(WARMUP_STEPS, max(1, steps // 10))
    if step < warmup:
        return lr * (step + 1) / warmup
    return lr * 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def _check_clips(clips: list[torch.Tensor], labels: torch.Tensor, what: str) -> None:
    if len(clips) == 0:
        raise ValueError(f"no {what} clips")
    if labels.shape != (len(clips),):
        raise ValueError(f"{what} labels must have shape ({len(clips)},), got {tuple(labels.shape)}")
    bad = [k for k, c in enumerate(clips) if c.ndim != 2 or c.shape[0] != 1 or not c.is_floating_point()]
    if bad:
        raise ValueError(f"{what} clip {bad[0]} is not float mono audio (1, T): {tuple(clips[bad[0]].shape)}")


def crop_or_pad(clip: torch.Tensor, length: int, start: int | None = None) -> torch.Tensor:
    """``length`` samples of a ``(1, T)`` clip from ``start`` (None: centred); a shorter clip is padded at the end
    with silence (``0.5``)."""
    if clip.shape[-1] < length:
        return F.pad(clip, (0, length - clip.shape[-1]), value=0.5)
    start = (clip.shape[-1] - length) // 2 if start is None else start
    return clip[..., start : start + length]


def train_voice_classifier(
    clips: list[torch.Tensor],
    labels: torch.Tensor,
    *,
    rate: float,
    length: int,
    steps: int = DEFAULT_STEPS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float = DEFAULT_LR,
    width: int = DEFAULT_WIDTH,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> VoiceClassifier:
    """Train a :class:`VoiceClassifier` on mono clips ``(1, T_i)`` in ``[0, 1]`` at ``rate`` and their voice ids.

    Each step takes ``batch_size`` clips (replacement-free epochs) and a random crop of ``length`` samples of each
    (in the log-mel frames of the whole clip, computed once). Deterministic given ``seed``. Returns it in eval mode.
    """
    _check_clips(clips, labels, "training")
    if steps < 1 or batch_size < 1 or length <= N_FFT // 2:
        raise ValueError(
            f"steps and batch_size must be positive and length > {N_FFT // 2}: {steps}, {batch_size}, {length}"
        )
    device = torch.device(device)
    voices = sorted(set(labels.tolist()))
    index_of = {v: k for k, v in enumerate(voices)}
    targets = torch.tensor([index_of[int(v)] for v in labels], device=device)
    width_frames = frames_of(length)
    with torch.no_grad():  # whole clips' log-mels, each at least one crop long
        mels = [log_mel_features(crop_or_pad(c, max(length, c.shape[-1]))[None].to(device), rate)[0] for c in clips]
    generator = torch.Generator().manual_seed(seed)
    with _fork_rng(device), torch.enable_grad():  # trains even when called under no_grad
        torch.manual_seed(seed)
        model = VoiceClassifier(voices, rate, width).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
        model.train()
        order, position = torch.randperm(len(clips), generator=generator), 0
        for step in range(steps):
            if position + batch_size > len(clips):
                order, position = torch.randperm(len(clips), generator=generator), 0
            index = order[position : position + batch_size].tolist()
            position += batch_size
            batch = []
            for k in index:
                room = mels[k].shape[-1] - width_frames
                start = int(torch.randint(0, room + 1, (), generator=generator)) if room > 0 else 0
                batch.append(mels[k][:, start : start + width_frames])
            loss = F.cross_entropy(model.forward_features(torch.stack(batch)), targets[index])
            for group in optimizer.param_groups:
                group["lr"] = _learning_rate(step, steps, lr)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model.eval()


def _fork_rng(device: torch.device):
    """The global RNG of the CPU (and of ``device`` when it is a GPU), restored on exit."""
    if device.type != "cuda":
        return torch.random.fork_rng(devices=[])
    index = device.index if device.index is not None else torch.cuda.current_device()
    return torch.random.fork_rng(devices=[index], device_type="cuda")


@torch.no_grad()
def predict_voices(model: VoiceClassifier, audio01: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """The voice ids (int64 ``(N,)``, CPU) the judge hears in mono audio ``(N, 1, T)`` in ``[0, 1]`` (eval mode;
    the previous mode is restored)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        out = [
            model(audio01[i : i + batch_size].to(device)).argmax(1).cpu() for i in range(0, len(audio01), batch_size)
        ]
    finally:
        model.train(was_training)
    voices = torch.tensor(model.voices)
    return voices[torch.cat(out)] if out else torch.zeros(0, dtype=torch.int64)


def voice_accuracy(model: VoiceClassifier, audio01: torch.Tensor, labels: torch.Tensor) -> float:
    """The share of clips ``(N, 1, T)`` whose judged voice is their label (voice ids)."""
    if labels.shape != (audio01.shape[0],) or len(labels) == 0:
        raise ValueError(f"labels must have shape ({audio01.shape[0]},) with N > 0, got {tuple(labels.shape)}")
    return (predict_voices(model, audio01) == labels.cpu()).double().mean().item()


def judge_path(
    cache_root: Path,
    source_sha: str,
    length: int,
    rate: float,
    steps: int,
    width: int,
    seed: int,
    through_key: str | None = None,
) -> Path:
    """Where a cached voice judge's weights live (its JSON record beside them): keyed by the training split's
    checksum, the settings and, for a judge trained on a codec's reconstructions, that codec's ``through_key``."""
    stem = f"speech-voices_{source_sha[:12]}_{length}smp_{rate:g}Hz_w{width}_s{steps}_seed{seed}"
    if through_key is not None:
        stem += f"_through-{through_key[:16]}"
    return cache_root / "classifiers" / f"{stem}.safetensors"


def load_or_train_voice_judge(
    length: int,
    *,
    cache_dir: str | os.PathLike | None = None,
    rate: float = 16000.0,
    steps: int = DEFAULT_STEPS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    width: int = DEFAULT_WIDTH,
    seed: int = 0,
    device: str | torch.device = "cpu",
    through: Callable[[torch.Tensor], torch.Tensor] | None = None,
    through_key: str | None = None,
) -> tuple[VoiceClassifier, dict]:
    """The voice judge of the ``speech`` source in ``cache_dir`` for clips of ``length`` samples at ``rate``: loaded
    from ``<cache>/classifiers/``, else trained on the ``train`` split and cached.

    ``through``: a function from a training clip ``(1, T)`` to what the judge trains on instead (a codec's
    reconstruction of it, ``(1, T)`` in ``[0, 1]``), with ``through_key`` naming it in the cache (a fingerprint of
    the codec's weights); both or neither. The record's ``trained_on`` says which (``"clips"`` or
    ``"reconstructions"``) and ``through`` holds the key.

    Returns the model (eval mode, on ``device``) and its record: ``heldout_accuracy`` (centre crops of ``length``
    of every ``heldout`` clip: the training voices on sentences never used in training), ``num_heldout``,
    ``num_train``, ``voices`` (ids) and ``voice_names``, ``chance`` (``1 / len(voices)``), ``length``, ``rate``,
    the training settings, ``path`` and ``cached``.
    """
    from fsq.data.sources import cache_dir as default_cache_dir
    from fsq.data.speech import read_manifest
    from fsq.data.speech_items import SpeechItems, speech_folder

    if length <= N_FFT // 2:
        raise ValueError(f"the voice judge needs clips longer than {N_FFT // 2} samples, got length={length}")
    if (through is None) != (through_key is None) or (through_key is not None and not through_key):
        raise ValueError("a judge trained through a codec needs both `through` and a non-empty `through_key`")
    manifest = read_manifest(speech_folder(cache_dir), ("train", "heldout"))
    sha = manifest["splits"]["train"]["sha256"]
    path = judge_path(default_cache_dir(cache_dir), sha, length, rate, steps, width, seed, through_key)
    record_path = path.with_suffix(".json")
    device = torch.device(device)
    if path.is_file() and record_path.is_file():
        record = read_json(record_path, "the cached voice judge's record", required={"voices": list, "width": int})
        model = VoiceClassifier(record["voices"], record["rate"], record["width"])
        model.load_state_dict(load_safetensors(path))
        return model.to(device).eval(), {**record, "path": str(path), "cached": True}
    items = {split: SpeechItems(split, cache_dir=cache_dir, rate=rate, resample=True) for split in ("train", "heldout")}
    train = items["train"]
    clips = [train.read(k) for k in range(len(train))]
    if through is not None:
        clips = [_rendered(through, clip, k) for k, clip in enumerate(clips)]
    model = train_voice_classifier(
        clips,
        train.labels,
        rate=rate,
        length=length,
        steps=steps,
        batch_size=batch_size,
        width=width,
        seed=seed,
        device=device,
    )
    heldout = items["heldout"]
    real = torch.stack([crop_or_pad(heldout.read(k), length) for k in range(len(heldout))])
    names = {v["id"]: v["name"] for v in manifest["voices"]}
    record = {
        "heldout_accuracy": voice_accuracy(model, real, heldout.labels),
        "num_heldout": len(heldout),
        "num_train": len(train),
        "splits": ["train", "heldout"],
        "source": "speech",
        "trained_on": "clips" if through is None else "reconstructions",
        "through": through_key,
        "voices": model.voices,
        "voice_names": [names[v] for v in model.voices],
        "chance": 1.0 / len(model.voices),
        "length": length,
        "rate": float(rate),
        "width": width,
        "steps": steps,
        "batch_size": batch_size,
        "seed": seed,
        "torch_version": torch.__version__,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_safetensors_atomic(model.state_dict(), path)
    write_json_atomic(record, record_path)  # written last: its presence marks a complete cache entry
    return model, {**record, "path": str(path), "cached": False}


def _rendered(through: Callable[[torch.Tensor], torch.Tensor], clip: torch.Tensor, k: int) -> torch.Tensor:
    """``through(clip)``, checked: float mono ``(1, T)`` of the clip's length, finite."""
    out = through(clip)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(clip.shape) or not out.is_floating_point():
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"`through` must return float audio of the clip's shape {tuple(clip.shape)}, got {got} (training clip {k})"
        )
    if not bool(torch.isfinite(out).all()):
        raise ValueError(f"`through` returned NaN or Inf samples for training clip {k}")
    return out.detach().float().cpu()
