"""The Stage I tokenizer: MaskGIT's VQGAN autoencoder (no attention) with FSQ or VQ in the middle.

Encoder: conv3x3 -> per stage ``num_res_blocks`` ResBlocks (width ``filters * multiplier``) then 2x2 average
pooling (all stages but the last) -> ``num_res_blocks`` ResBlocks -> GN -> swish -> conv1x1 to the code channels.
Decoder mirrors it with nearest upsampling + conv3x3. For FSQ the encoder's last layer outputs ``len(levels)``
channels and the decoder's first layer takes them, with no extra projection (paper sec. 3.3); for VQ they are the
code width (256 in the paper). Images are float in ``[0, 1]`` at the API, mapped to ``[-1, 1]`` inside.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fsq.layers.resnet import Downsample, ResBlock, Upsample, group_norm
from fsq.models.quantizer import QuantizerSpec, as_quantizer_spec, nested_quantizer
from fsq.quantizers import FSQ, VQ, QuantizerOutput


@dataclass(frozen=True)
class TokenizerSpec:
    """Everything needed to rebuild a :class:`Tokenizer` (saved as ``config.json`` by ``save_pretrained``)."""

    image_size: int = 28
    in_channels: int = 1
    filters: int = 32
    channel_multipliers: list[int] = field(default_factory=lambda: [1, 2, 2])
    num_res_blocks: int = 1
    num_groups: int = 8
    quantizer: QuantizerSpec = field(default_factory=QuantizerSpec)

    def __post_init__(self) -> None:
        object.__setattr__(self, "quantizer", as_quantizer_spec(self.quantizer))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TokenizerSpec:
        """The spec of a saved ``to_dict`` (also fsq 0.1's flat quantizer keys)."""
        return cls(**nested_quantizer(data, {f.name for f in fields(cls)}))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def latent_channels(self) -> int:
        return self.quantizer.code_width

    def spatial_sizes(self) -> list[int]:
        """Feature-map side per stage, input first (28, [1,2,2] -> [28, 14, 7])."""
        sizes = [self.image_size]
        for _ in range(len(self.channel_multipliers) - 1):
            sizes.append((sizes[-1] + 1) // 2)
        return sizes

    @property
    def token_grid(self) -> int:
        return self.spatial_sizes()[-1]


class Encoder(nn.Module):
    def __init__(self, spec: TokenizerSpec) -> None:
        super().__init__()
        widths = [spec.filters * m for m in spec.channel_multipliers]
        self.stem = nn.Conv2d(spec.in_channels, spec.filters, 3, padding=1, bias=False)
        blocks: list[nn.Module] = []
        channels = spec.filters
        for stage, width in enumerate(widths):
            for _ in range(spec.num_res_blocks):
                blocks.append(ResBlock(channels, width, spec.num_groups))
                channels = width
            if stage < len(widths) - 1:
                blocks.append(Downsample())
        blocks += [ResBlock(channels, channels, spec.num_groups) for _ in range(spec.num_res_blocks)]
        self.blocks = nn.Sequential(*blocks)
        self.norm = group_norm(channels, spec.num_groups)
        self.head = nn.Conv2d(channels, spec.latent_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.silu(self.norm(self.blocks(self.stem(x)))))


class Decoder(nn.Module):
    def __init__(self, spec: TokenizerSpec) -> None:
        super().__init__()
        widths = [spec.filters * m for m in spec.channel_multipliers]
        self.sizes = spec.spatial_sizes()
        channels = widths[-1]
        self.stem = nn.Conv2d(spec.latent_channels, channels, 3, padding=1)
        self.mid = nn.Sequential(*[ResBlock(channels, channels, spec.num_groups) for _ in range(spec.num_res_blocks)])
        self.stages = nn.ModuleList()
        self.upsamples = nn.ModuleList()
        for stage in reversed(range(len(widths))):
            blocks = []
            for _ in range(spec.num_res_blocks):
                blocks.append(ResBlock(channels, widths[stage], spec.num_groups))
                channels = widths[stage]
            self.stages.append(nn.Sequential(*blocks))
            self.upsamples.append(Upsample(channels) if stage > 0 else nn.Identity())
        self.norm = group_norm(channels, spec.num_groups)
        self.head = nn.Conv2d(channels, spec.in_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.stem(z))
        for i, (stage, upsample) in enumerate(zip(self.stages, self.upsamples)):
            h = stage(h)
            if isinstance(upsample, Upsample):
                side = self.sizes[len(self.sizes) - 2 - i]
                h = upsample(h, size=(side, side))
        return self.head(F.silu(self.norm(h)))


class Tokenizer(nn.Module):
    """Encoder -> quantizer -> decoder. Images: float (B, C, H, W) in ``[0, 1]``; tokens: int64 (B, h, w)."""

    quantizer: FSQ | VQ

    def __init__(self, spec: TokenizerSpec) -> None:
        super().__init__()
        if len(spec.channel_multipliers) < 1:
            raise ValueError("channel_multipliers needs at least one entry")
        self.spec = spec
        self.encoder = Encoder(spec)
        self.quantizer = spec.quantizer.build(channel_axis=1)
        self.decoder = Decoder(spec)

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    def _check_images(self, images: torch.Tensor) -> None:
        s = self.spec
        if images.ndim != 4 or images.shape[1] != s.in_channels or images.shape[-2:] != (s.image_size, s.image_size):
            raise ValueError(
                f"expected images of shape (B, {s.in_channels}, {s.image_size}, {s.image_size}), "
                f"got {tuple(images.shape)}"
            )

    def encode(self, images: torch.Tensor) -> QuantizerOutput:
        """Quantized latents (B, code channels, h, w), token indices (B, h, w) and the quantizer's aux loss."""
        self._check_images(images)
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
        from fsq.weights import load_weights  # also on a core install (torch + numpy, no safetensors package)

        directory = hub.resolve(
            name_or_path, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only, token=token
        )
        if hub.bundle_format(directory) == "fsq-maskgit":
            directory = directory / "tokenizer"
        meta = hub.read_bundle_config(directory, "fsq-tokenizer")
        model = cls(TokenizerSpec.from_dict(meta["spec"]))
        model.load_state_dict(load_weights(directory / "model.safetensors", map_location), strict=True)
        return model.eval()

    def push_to_hub(
        self, repo_id: str, *, private: bool = False, token: str | None = None, card: str | None = None
    ) -> str:
        """Save a bundle to a temporary folder and upload it to the hub repo ``repo_id``; returns its URL."""
        from fsq import hub

        save = lambda folder: self.save_pretrained(folder, card=card)  # noqa: E731
        return hub.push_bundle(save, repo_id, private=private, token=token, what="tokenizer")
