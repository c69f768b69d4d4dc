"""UViM (Kolesnikov et al. 2022) with FSQ or VQ: the restricted oracle (Stage I) and the language model (Stage II).

**Oracle** (big_vision ``vit.py``): a ViT autoencoder of the task *target*. The target representation (e.g. one-hot
depth bins) is cut into ``patch`` x ``patch`` patches and embedded; the image's own patch embedding is added as
context (``use_context``; the paper's ablation removes it from encoder and decoder); a transformer encoder; the
token grid is resized (bilinear) to ``code_grid`` x ``code_grid`` code positions and projected to the code width
(``len(levels)`` for FSQ, ``dim`` for VQ); quantized; during training ``code_dropout`` zeroes a random subset of
code positions (per example a uniform keep rate, as ``code_dropout='random'``); resized back, projected to the
model width, the decoder's own context embedding added, a transformer decoder, and a linear layer to
``output_channels`` per pixel.

**Language model** (big_vision ``vtt.py``): an encoder-decoder transformer. The encoder reads the image patches;
the decoder predicts the code sequence (raster order) autoregressively from ``[BOS] + codes[:-1]`` with causal
self-attention and cross-attention to the image. :meth:`UViMLanguageModel.generate` decodes greedily (the paper's
temperature 1e-7).

**Image input.** Both models take the image (the context) in ``[0, 1]``, as the tasks give it, and feed it to
their patch embeddings as ``2 x - 1``, in ``[-1, 1]`` (big_vision's ``value_range(-1, 1)``; also what
:class:`fsq.models.autoencoder` does), when their spec's ``center_image`` is set (new models). Fed in ``[0, 1]``
the scenes' common brightness (mean about 0.6, per-pixel spread across images about 0.1) becomes a near constant
offset of every patch token, and the pre-LayerNorm transformers see images that barely differ: the language model
of the CPU depth config learned no use of the image (its held-out loss the same with the images shuffled) and the
oracle's decoder little. A saved spec without the key (models trained before) keeps ``center_image=False``, so
they load and predict as they were trained.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fsq.layers.transformer import TransformerDecoder, TransformerEncoder, init_bert_
from fsq.models.quantizer import QuantizerSpec, as_quantizer_spec, nested_quantizer
from fsq.quantizers import Quantizer, QuantizerOutput
from fsq.quantizers.registry import FSQSection


def _check_size(image_size: int, patch: int) -> int:
    if image_size % patch:
        raise ValueError(f"image_size {image_size} is not a multiple of the patch size {patch}")
    return image_size // patch


def image_input(image: torch.Tensor, center: bool) -> torch.Tensor:
    """What a patch embedding reads of a ``[0, 1]`` image: ``2 x - 1`` (in ``[-1, 1]``) if ``center``, else as is."""
    return image * 2 - 1 if center else image


def _legacy_centering(data: Mapping[str, Any]) -> dict[str, Any]:
    """A saved spec's dict; one written before ``center_image`` existed read the image in ``[0, 1]``."""
    out = dict(data)
    out.setdefault("center_image", False)
    return out


class PatchEmbed(nn.Module):
    """Non-overlapping patches -> width (a strided conv), plus a learned position embedding."""

    def __init__(self, channels: int, width: int, patch: int, grid: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, width, patch, stride=patch)
        self.position = nn.Parameter(torch.zeros(1, grid * grid, width))
        nn.init.trunc_normal_(self.position, std=0.02, a=-0.04, b=0.04)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2) + self.position


@dataclass(frozen=True)
class OracleSpec:
    image_size: int
    target_channels: int
    context_channels: int
    output_channels: int
    patch: int = 4
    width: int = 128
    encoder_depth: int = 2
    decoder_depth: int = 2
    heads: int = 4
    mlp_dim: int = 512
    dropout: float = 0.0
    code_grid: int = 4
    use_context: bool = True
    code_dropout: bool = True
    center_image: bool = True  # the context in [-1, 1] (see the module docstring); False: as given, in [0, 1]
    quantizer: QuantizerSpec = field(default_factory=lambda: FSQSection(levels=[7, 5, 5, 5, 5]))  # the paper's FSQ

    def __post_init__(self) -> None:
        object.__setattr__(self, "quantizer", as_quantizer_spec(self.quantizer))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OracleSpec:
        """The spec of a saved ``to_dict`` (also fsq 0.1's flat quantizer keys; no ``center_image``: False)."""
        return cls(**nested_quantizer(_legacy_centering(data), {f.name for f in fields(cls)}))

    def to_dict(self) -> dict:
        return asdict(self)


class UViMOracle(nn.Module):
    """``forward(target, context) -> (output (B, O, H, W), QuantizerOutput)``; codes are (B, g, g) indices."""

    quantizer: Quantizer

    def __init__(self, spec: OracleSpec) -> None:
        super().__init__()
        self.spec = spec
        grid = _check_size(spec.image_size, spec.patch)
        if not 1 <= spec.code_grid <= grid:
            raise ValueError(f"code_grid must be in [1, {grid}] (the patch grid), got {spec.code_grid}")
        self.grid = grid
        w = spec.width
        self.target_embed = PatchEmbed(spec.target_channels, w, spec.patch, grid)
        self.encoder_context = PatchEmbed(spec.context_channels, w, spec.patch, grid) if spec.use_context else None
        self.encoder = TransformerEncoder(w, spec.encoder_depth, spec.heads, spec.mlp_dim, spec.dropout, True)
        self.quantizer = spec.quantizer.build(channel_axis=-1)
        code_width = spec.quantizer.code_width
        self.to_code = nn.Linear(w, code_width)
        self.from_code = nn.Linear(code_width, w)
        self.decoder_position = nn.Parameter(torch.zeros(1, grid * grid, w))
        self.decoder_context = PatchEmbed(spec.context_channels, w, spec.patch, grid) if spec.use_context else None
        self.decoder = TransformerEncoder(w, spec.decoder_depth, spec.heads, spec.mlp_dim, spec.dropout, True)
        self.head = nn.Linear(w, spec.patch * spec.patch * spec.output_channels)
        init_bert_(self)
        nn.init.trunc_normal_(self.decoder_position, std=0.02, a=-0.04, b=0.04)
        # unit-variance codes at the start: with BERT's std 0.02 every FSQ code would round to the centre level
        nn.init.normal_(self.to_code.weight, std=w**-0.5)

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    def _resize(self, tokens: torch.Tensor, size: int) -> torch.Tensor:
        """(B, n*n, C) tokens -> (B, size*size, C), bilinear on the grid (identity when the size matches)."""
        b, n2, c = tokens.shape
        n = int(round(n2**0.5))
        if n == size:
            return tokens
        grid = tokens.transpose(1, 2).reshape(b, c, n, n)
        grid = F.interpolate(grid, size=(size, size), mode="bilinear", align_corners=False)
        return grid.flatten(2).transpose(1, 2)

    def _check(self, x: torch.Tensor | None, channels: int, what: str) -> torch.Tensor:
        s = self.spec
        expected = f"{what}: expected (B, {channels}, {s.image_size}, {s.image_size})"
        if x is None:
            raise ValueError(f"{expected}, got None")
        if x.ndim != 4 or x.shape[1] != channels or x.shape[-2:] != (s.image_size, s.image_size):
            raise ValueError(f"{expected}, got {tuple(x.shape)}")
        return x

    def encode(self, target: torch.Tensor, context: torch.Tensor | None) -> QuantizerOutput:
        """Quantized codes (B, g*g, code width), indices (B, g, g), aux loss."""
        self._check(target, self.spec.target_channels, "target")
        h = self.target_embed(target)
        if self.encoder_context is not None:
            context = self._check(context, self.spec.context_channels, "context")
            h = h + self.encoder_context(image_input(context, self.spec.center_image))
        h = self._resize(self.encoder(h), self.spec.code_grid)
        out = self.quantizer(self.to_code(h))
        g = self.spec.code_grid
        return QuantizerOutput(out.quantized, out.indices.view(-1, g, g), out.aux_loss)

    def decode(self, codes: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        """Per-pixel task output (B, O, H, W) from quantized codes (B, g*g, code width)."""
        n, width = self.spec.code_grid**2, self.to_code.out_features
        if codes.ndim != 3 or codes.shape[1:] != (n, width):
            raise ValueError(f"codes: expected (B, {n}, {width}), got {tuple(codes.shape)}")
        h = self._resize(self.from_code(codes), self.grid) + self.decoder_position
        if self.decoder_context is not None:
            context = self._check(context, self.spec.context_channels, "context")
            h = h + self.decoder_context(image_input(context, self.spec.center_image))
        h = self.head(self.decoder(h))  # (B, grid*grid, p*p*O)
        b, p, o = h.shape[0], self.spec.patch, self.spec.output_channels
        h = h.view(b, self.grid, self.grid, p, p, o).permute(0, 5, 1, 3, 2, 4)
        return h.reshape(b, o, self.grid * p, self.grid * p)

    def decode_indices(self, indices: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        codes = self.quantizer.indices_to_quantized(indices.flatten(1))
        return self.decode(codes.to(self.from_code.weight.dtype), context)

    def drop_codes(self, codes: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Code dropout ('random'): per example a keep rate r ~ U[0, 1], each position kept with probability r."""
        b, n, _ = codes.shape
        rate = torch.rand(b, 1, generator=generator)
        keep = (torch.rand(b, n, generator=generator) < rate).to(codes.device)
        return codes * keep.unsqueeze(-1).to(codes.dtype)

    def forward(
        self, target: torch.Tensor, context: torch.Tensor | None, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, QuantizerOutput]:
        out = self.encode(target, context)
        codes = out.quantized
        if self.training and self.spec.code_dropout:
            codes = self.drop_codes(codes, generator)
        return self.decode(codes, context), out


@dataclass(frozen=True)
class LanguageModelSpec:
    image_size: int
    context_channels: int
    codebook_size: int
    sequence_length: int
    patch: int = 4
    width: int = 128
    encoder_depth: int = 2
    decoder_depth: int = 2
    heads: int = 4
    mlp_dim: int = 512
    dropout: float = 0.1
    center_image: bool = True  # the image in [-1, 1] (see the module docstring); False: as given, in [0, 1]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LanguageModelSpec:
        """The spec of a saved ``to_dict`` (one without ``center_image``: False, as it was trained)."""
        return cls(**_legacy_centering(data))

    def to_dict(self) -> dict:
        return asdict(self)


class UViMLanguageModel(nn.Module):
    """Image -> code sequence. ``forward(context, codes)`` gives teacher-forced logits (B, L, K)."""

    def __init__(self, spec: LanguageModelSpec) -> None:
        super().__init__()
        self.spec = spec
        grid = _check_size(spec.image_size, spec.patch)
        w = spec.width
        self.image_embed = PatchEmbed(spec.context_channels, w, spec.patch, grid)
        self.encoder = TransformerEncoder(w, spec.encoder_depth, spec.heads, spec.mlp_dim, spec.dropout, True)
        self.token_embed = nn.Embedding(spec.codebook_size + 1, w)  # the last id is BOS
        self.position = nn.Parameter(torch.zeros(1, spec.sequence_length, w))
        self.decoder = TransformerDecoder(w, spec.decoder_depth, spec.heads, spec.mlp_dim, spec.dropout, True)
        self.head = nn.Linear(w, spec.codebook_size)
        init_bert_(self)
        nn.init.trunc_normal_(self.position, std=0.02, a=-0.04, b=0.04)

    @property
    def bos_id(self) -> int:
        return self.spec.codebook_size

    def encode_image(self, context: torch.Tensor) -> torch.Tensor:
        """The image tokens (B, patches, width) the decoder attends to, from the image (B, C, H, W) in ``[0, 1]``."""
        return self.encoder(self.image_embed(image_input(context, self.spec.center_image)))

    def _logits(self, memory: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        h = self.token_embed(inputs) + self.position[:, : inputs.shape[1]]
        return self.head(self.decoder(h, memory))

    def forward(self, context: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        codes = codes.flatten(1)
        if codes.shape[1] != self.spec.sequence_length:
            raise ValueError(f"expected {self.spec.sequence_length} codes per sample, got {codes.shape[1]}")
        bos = torch.full_like(codes[:, :1], self.bos_id)
        return self._logits(self.encode_image(context), torch.cat([bos, codes[:, :-1]], dim=1))

    @torch.no_grad()
    def generate(self, context: torch.Tensor) -> torch.Tensor:
        """Greedy decoding: (B, L) code indices."""
        memory = self.encode_image(context)
        tokens = torch.full((context.shape[0], 1), self.bos_id, dtype=torch.long, device=context.device)
        for _ in range(self.spec.sequence_length):
            logits = self._logits(memory, tokens)[:, -1]
            tokens = torch.cat([tokens, logits.argmax(-1, keepdim=True)], dim=1)
        return tokens[:, 1:]
