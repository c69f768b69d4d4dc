"""Signals: channels plus one, two or three named axes, with a rate where the signal has one.

=========  ===================  ================  ==========
kind       one item             axes              rate
=========  ===================  ================  ==========
audio      ``(C, T)``           time              Hz (samples per second)
image      ``(C, H, W)``        height, width     none
video      ``(C, T, H, W)``     time, height, w.  fps (frames per second)
=========  ===================  ================  ==========

Items are uint8 (images, video: ``/ 255`` to ``[0, 1]``) or float32 already in ``[0, 1]`` (audio: ``0.5`` is
silence); :func:`to_unit` brings either to the float ``[0, 1]`` range the tokenizer takes. :class:`SignalItems`
holds clips of any kind in memory behind the :class:`~fsq.data.items.ImageItems` interface, so the step-addressed
loader (:mod:`fsq.data.loader`) serves them with workers and exact resume, as it serves images.
:class:`SignalTransform` crops time (random in training, centred in evaluation) and flips video horizontally; a
crop longer than a clip, a signal of the wrong kind and a rate that does not match are clear errors naming the
source and the shapes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import torch

from fsq.data.items import ImageItems
from fsq.data.resample import resample_audio


@dataclass(frozen=True)
class SignalKind:
    """A kind of signal: its name, the names of its axes after the channels, and the unit of its rate (if any)."""

    name: str
    axes: tuple[str, ...]
    rate_unit: str | None

    @property
    def dims(self) -> int:
        return len(self.axes)

    @property
    def timed(self) -> bool:
        """Whether the first axis is time (audio, video)."""
        return self.axes[0] == "time"

    def layout(self) -> str:
        """``(C, T)``, ``(C, H, W)`` or ``(C, T, H, W)``."""
        return "(C, " + ", ".join(a[0].upper() for a in self.axes) + ")"


AUDIO = SignalKind("audio", ("time",), "Hz")
IMAGE = SignalKind("image", ("height", "width"), None)
VIDEO = SignalKind("video", ("time", "height", "width"), "fps")
KINDS = {kind.name: kind for kind in (AUDIO, IMAGE, VIDEO)}


def kind_of_dims(dims: int) -> SignalKind:
    """The signal kind a ``dims``-axis model takes: 1 audio, 2 image, 3 video."""
    for kind in KINDS.values():
        if kind.dims == dims:
            return kind
    raise ValueError(f"no signal kind has {dims} axes: 1 (audio), 2 (image) or 3 (video)")


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """Float ``[0, 1]`` of a batch of items: uint8 divided by 255 (exactly the image path's ``.float().div_(255)``),
    floating point as float32."""
    if x.dtype == torch.uint8:
        return x.float().div_(255)
    if not x.is_floating_point():
        raise ValueError(f"signals must be uint8 or floating point in [0, 1], got {x.dtype}")
    return x.float()


def check_rate(source: str, kind: SignalKind, rate: float | None, wanted: float | None) -> None:
    """A ValueError when a source's rate and the configured one differ (no silent resampling)."""
    if wanted is None or rate is None:
        if wanted is not None and kind.rate_unit is None:
            raise ValueError(f"{source!r} gives {kind.name}s, which have no rate, but a rate of {wanted:g} was asked")
        return
    if abs(rate - wanted) > 1e-9 * max(rate, wanted):
        raise ValueError(
            f"sample-rate mismatch: {source!r} gives {kind.name} at {rate:g} {kind.rate_unit} but "
            f"{wanted:g} {kind.rate_unit} was configured (data.sample_rate); set it to {rate:g} or leave it unset"
        )


class SignalItems(ImageItems):
    """Clips held in memory, ``(N, C, *axes)`` uint8 or float32 in ``[0, 1]``, with their kind and rate."""

    in_memory = True

    def __init__(
        self,
        clips: torch.Tensor,
        kind: SignalKind,
        *,
        source: str,
        split: str,
        rate: float | None = None,
        labels: torch.Tensor | None = None,
    ) -> None:
        if clips.ndim != 2 + kind.dims:
            raise ValueError(
                f"{source!r} ({split}): {kind.name} clips must be (N, C, {', '.join(kind.axes)}), "
                f"got {tuple(clips.shape)}"
            )
        if clips.dtype != torch.uint8 and clips.dtype != torch.float32:
            raise ValueError(f"{source!r}: clips must be uint8 or float32, got {clips.dtype}")
        self.clips, self.kind, self.rate, self.labels = clips, kind, rate, labels
        self.source, self.split = source, split
        self.channels = int(clips.shape[1])
        self.has_labels = labels is not None
        self.skipped = []

    def __len__(self) -> int:
        return int(self.clips.shape[0])

    @property
    def shape(self) -> tuple[int, ...]:
        """The axes' sizes of every clip."""
        return tuple(int(n) for n in self.clips.shape[2:])

    def read(self, index: int) -> torch.Tensor:
        return self.clips[index]

    def length(self, index: int) -> int:
        """Clip ``index``'s length along time (samples, frames), known without reading it."""
        return int(self.clips.shape[2])

    def label(self, index: int) -> int:
        return -1 if self.labels is None else int(self.labels[index])

    def fingerprint(self, count: int) -> str:
        return hashlib.sha256(self.clips[:count].numpy().tobytes()).hexdigest()[:24]


SPEED_MARGIN = 64  # samples of context on each side of a speed-perturbed window (the resampler's edges ring)


@dataclass(frozen=True)
class SignalTransform:
    """What happens to one clip ``(C, *axes)``: a crop of ``length`` along time (``random`` start in training,
    centred otherwise; None keeps the whole clip), for video a ``size x size`` crop in space (the same place in
    every frame; frames already at that size are kept) and, for random video crops with ``flip``, a horizontal
    flip with probability 1/2. For random audio crops, ``speed`` ``(lo, hi)`` plays each crop at a speed drawn
    uniformly from ``lo..hi`` (:meth:`perturb_speed`). The randomness comes from the loader's per-item generator
    (seed, step, position)."""

    mode: Literal["random", "center"]
    kind: SignalKind
    length: int | None = None
    flip: bool = True
    size: int | None = None  # video: frames cropped to size x size (random in training, centred otherwise)
    speed: tuple[float, float] | None = None  # random audio crops: the range of playback speeds (None: 1)

    def __post_init__(self) -> None:
        if self.mode not in ("random", "center"):
            raise ValueError(f"a signal transform is 'random' or 'center', got {self.mode!r}")
        if self.length is not None and not self.kind.timed:
            raise ValueError(f"a time crop needs a signal with a time axis; {self.kind.name}s have none")
        if self.size is not None and self.kind.dims != 3:
            raise ValueError(f"a spatial crop of signals is for video; {self.kind.name}s are cropped in time only")
        if self.speed is not None and (self.kind.dims != 1 or self.length is None):
            raise ValueError(f"speed perturbation resamples audio crops of a set length, not {self.kind.name}s")
        if self.speed is not None and not 0 < self.speed[0] <= self.speed[1]:
            raise ValueError(f"speed perturbation needs 0 < lo <= hi, got {self.speed}")

    def empty(self, channels: int) -> torch.Tensor:
        """A zero clip of the transform's output shape: the loader's stand-in for an unreadable item (needs the
        time crop, and for video the spatial size, that folders of clips of any size are read with)."""
        if self.length is None or (self.kind.dims == 3 and self.size is None):
            raise ValueError(f"{self.kind.name} clips of unknown size: set data.length (and data.image_size)")
        sizes: list[int] = [self.length]
        if self.size is not None and self.kind.dims == 3:
            sizes += [self.size, self.size]
        return torch.zeros(channels, *sizes, dtype=torch.uint8 if self.kind.dims == 3 else torch.float32)

    @property
    def random(self) -> bool:
        return self.mode == "random"

    def check(self, source: str, shape: tuple[int, ...]) -> None:
        """A ValueError naming the source and both lengths when a clip is shorter than the crop."""
        if self.length is not None and shape[0] < self.length:
            raise ValueError(
                f"{source}: a time crop of {self.length} is longer than the clip (axes {self.kind.axes} of sizes "
                f"{shape}); lower data.length to {shape[0]} or less"
            )

    def __call__(self, clip: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        shape = tuple(int(n) for n in clip.shape[1:])
        if len(shape) != self.kind.dims:
            raise ValueError(f"expected a {self.kind.name} clip {self.kind.layout()}, got {tuple(clip.shape)}")
        self.check("a clip", shape)
        out = clip
        if self.speed is not None and self.random:
            return self.perturb_speed(clip, generator)
        if self.length is not None:
            start = self.window(shape[0], generator)
            out = out[:, start : start + self.length]
        return self.finish(out, generator)

    def perturb_speed(self, clip: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """A random crop of audio ``clip`` ``(C, T)`` in ``[0, 1]`` played at a speed ``s`` drawn uniformly from
        ``speed`` (the first draw): a window of ``length * s`` samples at a random start (the second draw),
        resampled to ``length`` samples (``soxr`` HQ, else linear interpolation), so pitch and tempo both scale by
        ``s``. The resampler sees silence (``0.5``) as zero and up to :data:`SPEED_MARGIN` samples of the clip on
        each side of the window, cut off after, so the crop's edges do not ring. A clip too short for the drawn
        speed is played at the fastest it allows, at most ``T / length``."""
        assert self.speed is not None and self.length is not None
        if generator is None:
            raise ValueError("the random transform needs a generator (item_generator(seed, step, position))")
        lo, hi = self.speed
        speed = lo + (hi - lo) * float(torch.rand((), generator=generator, dtype=torch.float64))
        frames = clip.shape[1]
        span = min(frames, max(1, round(self.length * speed)))
        start = int(torch.randint(frames - span + 1, (1,), generator=generator))
        if span == self.length:
            return clip[:, start : start + span].float().contiguous()
        before, after = min(SPEED_MARGIN, start), min(SPEED_MARGIN, frames - start - span)
        window = clip[:, start - before : start + span + after].float() - 0.5
        out = torch.from_numpy(resample_audio(window.numpy(), float(span), float(self.length)))
        out = out[:, round(before * self.length / span) :][:, : self.length]
        if out.shape[1] < self.length:  # rounding: at most a sample or two, repeated from the end
            out = torch.cat([out, out[:, -1:].expand(-1, self.length - out.shape[1])], 1)
        return (out + 0.5).clamp(0, 1).contiguous()

    def window(self, frames: int, generator: torch.Generator | None = None) -> int:
        """The first frame (sample) of the time crop of a clip ``frames`` long: random in training, centred
        otherwise (the first draw from ``generator``). Readers that decode only the crop (video files) call this,
        then :meth:`finish` on the frames they decoded: the same clip as calling the transform on the whole."""
        if self.length is None:
            return 0
        room = frames - self.length
        if room < 0:
            raise ValueError(f"a time crop of {self.length} is longer than a clip of {frames}")
        if not self.random:
            return room // 2
        if generator is None:
            raise ValueError("the random transform needs a generator (item_generator(seed, step, position))")
        return int(torch.randint(room + 1, (1,), generator=generator))

    def finish(self, out: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """What follows the time crop: the spatial crop and the random flip of video."""
        if self.size is not None and tuple(out.shape[2:]) != (self.size, self.size):
            out = self._crop_space(out, generator)
        if self.random and self.flip and self.kind.dims == 3 and generator is not None:
            if bool(torch.randint(2, (1,), generator=generator)):
                out = out.flip(-1)
        return out.contiguous()

    def _crop_space(self, clip: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        assert self.size is not None
        height, width = clip.shape[-2:]
        if height < self.size or width < self.size:
            raise ValueError(
                f"video frames of {height}x{width} px are smaller than the {self.size}x{self.size} crop "
                f"(clip {tuple(clip.shape)}): lower data.image_size"
            )
        if self.random and generator is not None:
            top = int(torch.randint(height - self.size + 1, (1,), generator=generator))
            left = int(torch.randint(width - self.size + 1, (1,), generator=generator))
        else:
            top, left = (height - self.size) // 2, (width - self.size) // 2
        return clip[..., top : top + self.size, left : left + self.size]
