"""The Stage I tokenizer: MaskGIT's VQGAN autoencoder (no attention) with FSQ or VQ in the middle.

Encoder: conv3x3 -> per stage ``num_res_blocks`` ResBlocks (width ``filters * multiplier``) then 2x2 average
pooling (all stages but the last) -> ``num_res_blocks`` ResBlocks -> GN -> swish -> conv1x1 to the code channels.
Decoder mirrors it with nearest upsampling + conv3x3. For FSQ the encoder's last layer outputs ``len(levels)``
channels and the decoder's first layer takes them, with no extra projection (paper sec. 3.3); for VQ they are the
code width (256 in the paper). Signals are float in ``[0, 1]`` at the API, mapped to ``[-1, 1]`` inside.

The same spec builds 1-D (audio), 2-D (images) and 3-D (video) models (``dims``, per-axis ``downsample`` factors,
``causal`` time): see :class:`TokenizerSpec`. The default 2-D spec builds exactly the modules of the image tokenizer.
``architecture="seanet"`` builds a 1-D audio codec instead (strided convolutions and dilated residual units,
SoundStream / EnCodec / DAC style: :mod:`fsq.layers.seanet`), with the same quantizer and the same API.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fsq.layers.resnet import (
    Downsample,
    FactorizedConv3d,
    ResBlock,
    Upsample,
    check_dims,
    check_time_padding,
    conv,
    downsampled,
    group_norm,
)
from fsq.layers.seanet import ACTIVATIONS, SEANetDecoder, SEANetEncoder
from fsq.models.quantizer import QuantizerSpec, as_quantizer_spec, nested_quantizer
from fsq.quantizers import Quantizer, QuantizerOutput

ARCHITECTURES = ("vqgan", "seanet")
TIME_INITS = ("random", "identity")


@dataclass(frozen=True)
class TokenizerSpec:
    """Everything needed to rebuild a :class:`Tokenizer` (saved as ``config.json`` by ``save_pretrained``).

    ``dims`` is the signal's number of axes: 1 (audio ``(C, T)``), 2 (images ``(C, H, W)``, the default) or 3 (video
    ``(C, T, H, W)``); ``shape`` their sizes (None: ``image_size`` on every axis). ``downsample`` gives, for each
    downsampling (``len(channel_multipliers) - 1`` of them), a factor per axis (None: 2 on every axis).
    ``causal`` makes the first axis time: causal padding and the first frame or sample encoded on its own
    (:mod:`fsq.layers.resnet`), so ``1 + f*k`` frames give ``1 + k`` latent frames; ``time_padding`` fills the
    causal convolutions' past before the first frame: ``replicate`` (copies of it) or ``zeros``;
    ``time_to_depth`` (causal only) downsamples time by stacking frames into channels and upsamples it by the
    inverse (:class:`~fsq.layers.resnet.Downsample`, :class:`~fsq.layers.resnet.Upsample`) instead of averaging
    and repeating frames. ``time_patch`` (causal 3-D vqgan only) stacks the input's frames into the channels in
    groups of that many before the first convolution (the first frame with copies of itself) and unstacks the
    output after the last: the network runs on ``1 + k`` frames of a ``1 + time_patch * k`` clip, as a time
    patchification. ``factorized`` (3-D vqgan only) builds every 3x3x3 convolution as a (2+1)-D pair, a
    3x3 over space then a 3-frame one over time (:class:`~fsq.layers.resnet.FactorizedConv3d`); ``time_init``
    (factorized only) starts their time convolutions ``random`` (PyTorch's default) or as ``identity`` (passing the
    current frame only, so the model starts as a per-frame 2-D one).

    ``architecture``: ``vqgan`` (MaskGIT's ResBlocks, GroupNorm, average pooling; any ``dims``) or ``seanet`` (a 1-D
    audio codec: per downsampling, residual units with ``dilations`` then a strided convolution of kernel ``2 f``;
    ``activation`` ``snake`` or ``elu``; ``num_res_blocks`` and ``num_groups`` unused; ``causal`` pads on the left
    and ``T`` samples give ``ceil(T / hop)`` frames).
    """

    image_size: int = 28
    in_channels: int = 1
    filters: int = 32
    channel_multipliers: list[int] = field(default_factory=lambda: [1, 2, 2])
    num_res_blocks: int = 1
    num_groups: int = 8
    quantizer: QuantizerSpec = field(default_factory=QuantizerSpec)
    dims: int = 2
    shape: list[int] | None = None
    downsample: list[list[int]] | None = None
    causal: bool = False
    time_padding: str = "replicate"
    time_to_depth: bool = False
    time_patch: int = 1
    factorized: bool = False
    time_init: str = "random"
    architecture: str = "vqgan"
    activation: str = "elu"
    dilations: list[int] = field(default_factory=lambda: [1, 3, 9])

    def __post_init__(self) -> None:
        object.__setattr__(self, "quantizer", as_quantizer_spec(self.quantizer))
        check_dims(self.dims)
        check_time_padding(self.time_padding)
        if self.time_to_depth and not (self.causal and self.architecture == "vqgan"):
            raise ValueError("time_to_depth needs a causal vqgan model (causal: true)")
        if int(self.time_patch) < 1:
            raise ValueError(f"time_patch must be a positive integer, got {self.time_patch!r}")
        if self.time_patch > 1 and not (self.causal and self.dims == 3 and self.architecture == "vqgan"):
            raise ValueError("time_patch needs a causal 3-D vqgan model (dims: 3, causal: true)")
        if self.factorized and not (self.dims == 3 and self.architecture == "vqgan"):
            raise ValueError(f"factorized (2+1)-D convolutions need a 3-D vqgan model (dims: 3), got dims={self.dims}")
        if self.time_init not in TIME_INITS:
            raise ValueError(f"time_init must be one of {TIME_INITS}, got {self.time_init!r}")
        if self.time_init != "random" and not self.factorized:
            raise ValueError(f"time_init={self.time_init!r} sets the time convolutions of factorized models only")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")
        if self.architecture == "seanet" and self.dims != 1:
            raise ValueError(f"architecture 'seanet' is a 1-D audio codec (dims=1), got dims={self.dims}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if not self.dilations or any(int(d) < 1 for d in self.dilations):
            raise ValueError(f"dilations must be one or more positive integers, got {self.dilations!r}")
        if self.shape is not None and (len(self.shape) != self.dims or any(int(n) < 1 for n in self.shape)):
            raise ValueError(f"shape must be {self.dims} positive sizes (one per axis), got {self.shape!r}")
        stages = len(self.channel_multipliers) - 1
        if self.downsample is not None:
            if len(self.downsample) != stages:
                raise ValueError(
                    f"downsample has {len(self.downsample)} entries, expected one per downsampling "
                    f"(len(channel_multipliers) - 1 = {stages})"
                )
            for factors in self.downsample:
                if len(factors) != self.dims or any(int(f) < 1 for f in factors):
                    raise ValueError(
                        f"each downsample entry must be {self.dims} positive factors (one per axis), got {factors!r}"
                    )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TokenizerSpec:
        """The spec of a saved ``to_dict`` (also fsq 0.1's flat quantizer keys)."""
        return cls(**nested_quantizer(data, {f.name for f in fields(cls)}))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def latent_channels(self) -> int:
        return self.quantizer.code_width

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The sizes of the signal's axes, e.g. ``(28, 28)``, ``(T,)`` or ``(T, H, W)``."""
        return tuple(int(n) for n in self.shape) if self.shape is not None else (self.image_size,) * self.dims

    def stage_factors(self) -> list[tuple[int, ...]]:
        """The per-axis factors of each downsampling."""
        if self.downsample is None:
            return [(2,) * self.dims] * (len(self.channel_multipliers) - 1)
        return [tuple(int(f) for f in factors) for factors in self.downsample]

    def stage_shapes(self, frames: int | None = None) -> list[tuple[int, ...]]:
        """Feature-map sizes per stage, input first (28, [1,2,2] -> [(28, 28), (14, 14), (7, 7)]; with
        ``time_patch``, the input as the network sees it, its frames stacked); ``frames``: those of a clip of that
        many frames instead of ``input_shape``'s (causal models, see :meth:`accepts_frames`)."""
        shapes = [self.input_shape if frames is None else (int(frames), *self.input_shape[1:])]
        if self.time_patch > 1:  # the network's input: the frames stacked in groups (the first alone)
            shapes = [(downsampled(shapes[0][0], self.time_patch, True), *shapes[0][1:])]
        for factors in self.stage_factors():
            shapes.append(
                tuple(
                    downsampled(n, f, self.causal and axis == 0 and self.architecture == "vqgan")
                    for axis, (n, f) in enumerate(zip(shapes[-1], factors))
                )
            )
        return shapes

    @property
    def time_factor(self) -> int:
        """The product of the time (first-axis) downsampling factors: a causal model maps ``1 + f*k`` frames to
        ``1 + k`` latent frames."""
        return self.time_patch * math.prod(factors[0] for factors in self.stage_factors())

    def accepts_frames(self, frames: int) -> bool:
        """Whether a clip of ``frames`` frames can be encoded and decoded back to as many: the configured length,
        and for a causal model any ``1 + time_factor * k`` (``k = 0``: one frame, an image as a one-frame video,
        as the joint image-video training of MAGVIT-v2)."""
        if frames == self.input_shape[0]:
            return True
        return self.causal and frames >= 1 and (frames - 1) % self.time_factor == 0

    def spatial_sizes(self) -> list[int]:
        """Feature-map side per stage of a square 2-D model, input first (28, [1,2,2] -> [28, 14, 7])."""
        return [shape[-1] for shape in self.stage_shapes()]

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """The token grid's shape: ``(h, w)`` for images, ``(t,)`` for audio, ``(t, h, w)`` for video."""
        return self.stage_shapes()[-1]

    @property
    def token_grid(self) -> int:
        """The side of a square 2-D token grid (see :attr:`grid_shape` for any other)."""
        grid = self.grid_shape
        if len(grid) != 2 or grid[0] != grid[1]:
            raise ValueError(f"the token grid {grid} is not a square 2-D grid: use grid_shape")
        return grid[0]


class Encoder(nn.Module):
    def __init__(self, spec: TokenizerSpec) -> None:
        super().__init__()
        d, causal, pad, fac = spec.dims, spec.causal, spec.time_padding, spec.factorized
        widths = [spec.filters * m for m in spec.channel_multipliers]
        factors = spec.stage_factors()
        self.patch = spec.time_patch
        self.stem = conv(
            d,
            spec.in_channels * self.patch,
            spec.filters,
            3,
            bias=False,
            causal=causal,
            time_padding=pad,
            factorized=fac,
        )
        blocks: list[nn.Module] = []
        channels = spec.filters
        for stage, width in enumerate(widths):
            for _ in range(spec.num_res_blocks):
                blocks.append(ResBlock(channels, width, spec.num_groups, d, causal, pad, fac))
                channels = width
            if stage < len(widths) - 1:
                blocks.append(
                    Downsample(d, factors[stage], causal, channels=channels, time_to_depth=spec.time_to_depth)
                )
        blocks += [
            ResBlock(channels, channels, spec.num_groups, d, causal, pad, fac) for _ in range(spec.num_res_blocks)
        ]
        self.blocks = nn.Sequential(*blocks)
        self.norm = group_norm(channels, spec.num_groups, causal)
        self.head = conv(d, channels, spec.latent_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.patch > 1:
            x = stack_frames(x, self.patch)
        return self.head(F.silu(self.norm(self.blocks(self.stem(x)))))


class Decoder(nn.Module):
    def __init__(self, spec: TokenizerSpec) -> None:
        super().__init__()
        d, causal, pad, fac = spec.dims, spec.causal, spec.time_padding, spec.factorized
        widths = [spec.filters * m for m in spec.channel_multipliers]
        self.shapes = spec.stage_shapes()
        self._spec = spec
        channels = widths[-1]
        self.stem = conv(d, spec.latent_channels, channels, 3, causal=causal, time_padding=pad, factorized=fac)
        self.mid = nn.Sequential(
            *[ResBlock(channels, channels, spec.num_groups, d, causal, pad, fac) for _ in range(spec.num_res_blocks)]
        )
        self.stages = nn.ModuleList()
        self.upsamples = nn.ModuleList()
        for stage in reversed(range(len(widths))):
            blocks = []
            for _ in range(spec.num_res_blocks):
                blocks.append(ResBlock(channels, widths[stage], spec.num_groups, d, causal, pad, fac))
                channels = widths[stage]
            self.stages.append(nn.Sequential(*blocks))
            if stage > 0:
                time_factor = spec.stage_factors()[stage - 1][0] if spec.time_to_depth else 1
                self.upsamples.append(Upsample(channels, d, causal, pad, time_factor=time_factor, factorized=fac))
            else:
                self.upsamples.append(nn.Identity())
        self.norm = group_norm(channels, spec.num_groups, causal)
        self.head = conv(
            d, channels, spec.in_channels * spec.time_patch, 3, causal=causal, time_padding=pad, factorized=fac
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        shapes = self.shapes
        if self._spec.causal and z.shape[2] != shapes[-1][0]:  # 1 + k latent frames -> 1 + f*k frames
            shapes = self._spec.stage_shapes(frames=1 + self._spec.time_factor * (z.shape[2] - 1))
        h = self.mid(self.stem(z))
        for i, (stage, upsample) in enumerate(zip(self.stages, self.upsamples)):
            h = stage(h)
            if isinstance(upsample, Upsample):
                h = upsample(h, size=shapes[len(shapes) - 2 - i])
        out = self.head(F.silu(self.norm(h)))
        return unstack_frames(out, self._spec.time_patch) if self._spec.time_patch > 1 else out


def stack_frames(x: torch.Tensor, p: int) -> torch.Tensor:
    """(B, C, 1 + p*k, ...) -> (B, p*C, 1 + k, ...): each group of ``p`` frames stacked into the channels (frame
    by frame), the first frame alone, stacked with copies of itself (as ``Downsample``'s ``time_to_depth``)."""
    first, rest = x[:, :, :1], x[:, :, 1:]
    b, c, frames, *space = rest.shape
    if frames % p:
        raise ValueError(f"time_patch={p} needs 1 + {p}k frames, got {frames + 1}")
    rest = rest.reshape(b, c, frames // p, p, *space).movedim(3, 1).reshape(b, p * c, frames // p, *space)
    return torch.cat([first.repeat(1, p, *([1] * (x.ndim - 2))), rest], dim=2)


def unstack_frames(y: torch.Tensor, p: int) -> torch.Tensor:
    """The inverse of :func:`stack_frames`: (B, p*C, 1 + k, ...) -> (B, C, 1 + p*k, ...), the first frame from the
    first latent frame's last channel block."""
    b, pc, latent, *space = y.shape
    c = pc // p
    first = y[:, (p - 1) * c :, :1]
    rest = y[:, :, 1:].reshape(b, p, c, latent - 1, *space).movedim(1, 3).reshape(b, c, (latent - 1) * p, *space)
    return torch.cat([first, rest], dim=2)


class CodecEncoder(SEANetEncoder):
    """The ``seanet`` encoder of a spec: widths ``filters * channel_multipliers``, strides from ``downsample``."""

    def __init__(self, spec: TokenizerSpec) -> None:
        widths = [spec.filters * m for m in spec.channel_multipliers]
        strides = [f[0] for f in spec.stage_factors()]
        super().__init__(
            spec.in_channels, spec.latent_channels, widths, strides, spec.dilations, spec.activation, spec.causal
        )


class CodecDecoder(SEANetDecoder):
    """The ``seanet`` decoder of a spec; latents of the spec's grid decode to exactly its input length."""

    def __init__(self, spec: TokenizerSpec) -> None:
        widths = [spec.filters * m for m in spec.channel_multipliers]
        strides = [f[0] for f in spec.stage_factors()]
        super().__init__(
            spec.in_channels, spec.latent_channels, widths, strides, spec.dilations, spec.activation, spec.causal
        )
        shapes = spec.stage_shapes()
        self.lengths = [shape[0] for shape in shapes[:-1]]
        self.frames = shapes[-1][0]

    def forward(self, z: torch.Tensor, lengths: Any = None) -> torch.Tensor:
        if lengths is None and z.shape[-1] == self.frames:
            lengths = self.lengths
        return super().forward(z, lengths)


class Tokenizer(nn.Module):
    """Encoder -> quantizer -> decoder. Signals: float (B, C, *axes) in ``[0, 1]`` with the spec's ``dims`` axes
    (images (B, C, H, W)); tokens: int64 (B, *grid_shape), e.g. (B, h, w)."""

    quantizer: Quantizer

    def __init__(self, spec: TokenizerSpec) -> None:
        super().__init__()
        if len(spec.channel_multipliers) < 1:
            raise ValueError("channel_multipliers needs at least one entry")
        self.spec = spec
        seanet = spec.architecture == "seanet"
        self.encoder = CodecEncoder(spec) if seanet else Encoder(spec)
        self.quantizer = spec.quantizer.build(channel_axis=1)
        self.decoder = CodecDecoder(spec) if seanet else Decoder(spec)
        if spec.time_init == "identity":
            for module in self.modules():
                if isinstance(module, FactorizedConv3d):
                    module.pass_current_frame_()

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    def check_signal(self, x: torch.Tensor) -> None:
        """A ValueError naming both shapes unless ``x`` is (B, in_channels, *input_shape)."""
        s = self.spec
        expected = (s.in_channels, *s.input_shape)
        shape = tuple(x.shape[1:])
        if s.causal and x.ndim == 2 + s.dims and s.accepts_frames(shape[1]):  # another length in time
            shape = (shape[0], s.input_shape[0], *shape[2:])
        if x.ndim != 2 + s.dims or shape != expected:
            what = "images" if s.dims == 2 else "signals"
            kind = {1: "1-D (B, C, T)", 2: "2-D (B, C, H, W)", 3: "3-D (B, C, T, H, W)"}[s.dims]
            lengths = f" (causal in time: any 1 + {s.time_factor}k frames, 1 for an image)" if s.causal else ""
            raise ValueError(
                f"expected {what} of shape (B, {', '.join(map(str, expected))}) for this {kind} tokenizer"
                f"{lengths}, got {tuple(x.shape)}"
            )

    def encode(self, images: torch.Tensor) -> QuantizerOutput:
        """Quantized latents (B, code channels, h, w), token indices (B, h, w) and the quantizer's aux loss."""
        self.check_signal(images)
        return self.quantizer(self.encoder(images * 2 - 1))

    def decode(self, quantized: torch.Tensor) -> torch.Tensor:
        """Images in ``[0, 1]`` (not clamped: the training loss sees the raw output) from quantized latents."""
        return (self.decoder(quantized) + 1) / 2

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """Images from token indices (B, h, w)."""
        codes = self.quantizer.indices_to_quantized(indices).contiguous()  # same memory layout as encode's output
        return self.decode(codes.to(next(self.decoder.parameters()).dtype))

    @torch.no_grad()
    def tokenize(self, images: torch.Tensor) -> torch.Tensor:
        """Token indices (B, h, w) int64 of float images (B, C, H, W) in [0, 1]; uint8 images, or floats that are
        plainly in [0, 255] (a maximum above 2), raise a ValueError that says to divide by 255."""
        if not images.is_floating_point():
            raise ValueError(
                f"tokenize takes float images in [0, 1], got {images.dtype}: use images.float().div(255) for 8-bit"
            )
        top = float(images.max()) if images.numel() else 0.0
        if top > 2.0:
            raise ValueError(
                f"tokenize takes images in [0, 1], but these reach {top:g} (in [0, 255]?): divide them by 255"
            )
        return self.encode(images).indices

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, QuantizerOutput]:
        out = self.encode(images)
        return self.decode(out.quantized), out

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per part: encoder, quantizer (VQ codebook; 0 for FSQ), decoder, total."""
        counts = {
            name: sum(p.numel() for p in getattr(self, name).parameters())
            for name in ("encoder", "quantizer", "decoder")
        }
        counts["total"] = sum(counts.values())
        return counts

    # ------------------------------------------------------------------------------------------ persistence
    def save_pretrained(
        self, directory: str | Path, *, metadata: dict[str, Any] | None = None, card: str | None = None
    ) -> None:
        """Write a tokenizer bundle: ``model.safetensors`` (weights), ``config.json`` (format, spec and the optional
        ``metadata``: provenance such as the run and step) and, when given, the model card ``README.md``."""
        from fsq import hub
        from fsq.checkpoint import save_safetensors_atomic

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_safetensors_atomic(self.state_dict(), directory / "model.safetensors")
        config: dict[str, Any] = {"format": "fsq-tokenizer", "version": 1, "spec": self.spec.to_dict()}
        if metadata:
            config["metadata"] = metadata
        hub.write_bundle_config(directory, config, card)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        map_location: str | torch.device = "cpu",
        *,
        revision: str | None = None,
        cache_dir: str | Path | None = None,
        local_files_only: bool = False,
        token: str | None = None,
    ) -> Tokenizer:
        """Load a tokenizer bundle (safetensors only: nothing is unpickled), in eval mode.

        ``name_or_path``: a folder written by :meth:`save_pretrained` or ``fsq export``, a shipped name
        (``"mnist-fsq"``) or a hub repo id (``org/name``, with the ``hub`` extra; the other keywords go to the
        download). A MaskGIT bundle gives its tokenizer.
        """
        from fsq import hub
        from fsq.bundles import build_section, load_into
        from fsq.models.quantizer import FLAT_KEYS
        from fsq.weights import load_weights  # also on a core install (torch + numpy, no safetensors package)

        directory = hub.resolve(
            name_or_path, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only, token=token
        )
        directory, meta = hub.tokenizer_bundle(directory)
        config = directory / hub.CONFIG  # its spec checked, then the weights against the model it builds
        spec = meta.get("spec", {})  # fsq 0.1's flat quantizer keys too
        build = lambda: cls(TokenizerSpec.from_dict(spec))  # noqa: E731
        model = build_section(config, "spec", spec, TokenizerSpec, build, FLAT_KEYS)
        weights = directory / "model.safetensors"
        return load_into(model, load_weights(weights, map_location), weights, str(config)).eval()

    def push_to_hub(
        self, repo_id: str, *, private: bool = False, token: str | None = None, card: str | None = None
    ) -> str:
        """Save a bundle to a temporary folder and upload it to the hub repo ``repo_id``; returns its URL."""
        from fsq import hub

        save = lambda folder: self.save_pretrained(folder, card=card)  # noqa: E731
        return hub.push_bundle(save, repo_id, private=private, token=token, what="tokenizer")
