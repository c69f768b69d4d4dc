"""MaskGIT's bidirectional transformer over token grids (Stage II), class-conditional with a MASK class for CFG.

Vocabulary (official layout): image tokens ``0..K-1``, class ``c`` is ``K + c``, MASK is the last id ``K + C``.
The sequence is ``[class token] + N image tokens`` in raster (row-major) order of a 1-D, 2-D or 3-D token grid;
learned token and position embeddings are summed, LayerNorm'd and dropped out, then a transformer (BERT post-LN as
the paper, or pre-LN), then the MLM head (Dense + GELU + LN) and logits ``h @ E[:K].T + b``: tied to the token
embedding and over the codebook only, so a special id can never be sampled. A label of ``-1`` (or ``labels=None``)
puts MASK in the class slot: the unconditional model that classifier-free guidance needs (training replaces 10% of
labels so).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from fsq.layers.transformer import TransformerEncoder, init_bert_


@dataclass(frozen=True)
class MaskGITSpec:
    """Everything needed to rebuild a :class:`MaskGIT` (stored in checkpoints).

    The token grid is ``grid_height x grid_width`` (images), or ``grid``: its shape for any rank, ``(t,)`` for
    audio, ``(t, h, w)`` for video (leave ``grid_height``/``grid_width`` unset then). ``positions``: ``"table"``, one
    learned embedding per position (the paper's; any rank), or ``"axes"``, a learned embedding per axis and index,
    summed (``sum_a E_a[i_a]``: ``t + h + w`` vectors instead of ``t * h * w``, for long 3-D grids).
    ``token_layout``: how the tokens map to the tokenizer's indices when they are not one index per position
    (residual stages, FSQ digit groups: :class:`fsq.generation.token_layout.TokenLayout` as a dict; None: they are
    the indices). The transformer does not use it; it travels with the weights so that samples decode.
    """

    codebook_size: int
    num_classes: int  # 0: unconditional
    grid_height: int | None = None
    grid_width: int | None = None
    width: int = 128
    depth: int = 4
    heads: int = 4
    mlp_dim: int = 512
    dropout: float = 0.1
    norm_first: bool = True  # False: BERT post-LN as MaskGIT
    grid: list[int] | None = None
    positions: str = "table"
    token_layout: dict | None = None

    def __post_init__(self) -> None:
        two_d = self.grid_height is not None or self.grid_width is not None
        if two_d == (self.grid is not None):
            raise ValueError(
                "give the token grid either as grid_height and grid_width (2-D) or as grid (any rank), "
                f"got grid_height={self.grid_height}, grid_width={self.grid_width}, grid={self.grid}"
            )
        shape = self.grid_shape
        if not 1 <= len(shape) <= 3 or any(int(n) < 1 for n in shape):
            raise ValueError(f"the token grid must have 1, 2 or 3 positive sizes, got {shape}")
        if self.positions not in ("table", "axes"):
            raise ValueError(f"positions must be 'table' or 'axes', got {self.positions!r}")

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """The token grid's shape, ``(h, w)`` for images, ``(t,)`` or ``(t, h, w)`` otherwise."""
        if self.grid is not None:
            return tuple(int(n) for n in self.grid)
        if self.grid_height is None or self.grid_width is None:
            raise ValueError("a 2-D token grid needs both grid_height and grid_width")
        return (self.grid_height, self.grid_width)

    @property
    def num_tokens(self) -> int:
        return math.prod(self.grid_shape)

    @property
    def mask_id(self) -> int:
        return self.codebook_size + self.num_classes

    def to_dict(self) -> dict:
        return asdict(self)


class MaskGIT(nn.Module):
    """``forward(tokens, labels) -> logits`` (B, N, K); ``tokens`` (B, N) or (B, *grid_shape) int64 with MASK ids."""

    def __init__(self, spec: MaskGITSpec) -> None:
        super().__init__()
        if spec.codebook_size < 2 or spec.num_classes < 0:
            raise ValueError(f"invalid MaskGIT spec: {spec}")
        self.spec = spec
        vocab = spec.codebook_size + spec.num_classes + 1
        self.token_embedding = nn.Embedding(vocab, spec.width)
        if spec.positions == "table":
            self.position_embedding = nn.Parameter(torch.zeros(1, spec.num_tokens + 1, spec.width))
        else:  # one table per axis (and the class slot's own vector), summed over the axes
            self.class_position = nn.Parameter(torch.zeros(1, 1, spec.width))
            self.axis_embeddings = nn.ParameterList(nn.Parameter(torch.zeros(n, spec.width)) for n in spec.grid_shape)
        self.embed_norm = nn.LayerNorm(spec.width, eps=1e-6)
        self.dropout = nn.Dropout(spec.dropout)
        self.transformer = TransformerEncoder(
            spec.width, spec.depth, spec.heads, spec.mlp_dim, spec.dropout, norm_first=spec.norm_first
        )
        self.head = nn.Sequential(nn.Linear(spec.width, spec.width), nn.GELU(), nn.LayerNorm(spec.width, eps=1e-6))
        self.output_bias = nn.Parameter(torch.zeros(spec.codebook_size))
        init_bert_(self)
        positions = [self.position_embedding] if spec.positions == "table" else [*self.axis_embeddings]
        for table in positions:
            nn.init.trunc_normal_(table, std=0.02, a=-0.04, b=0.04)
        if spec.positions == "axes":
            nn.init.trunc_normal_(self.class_position, std=0.02, a=-0.04, b=0.04)

    def positional(self) -> torch.Tensor:
        """The position embeddings (1, 1 + N, width): the class slot's, then the grid's in row-major order."""
        if self.spec.positions == "table":
            return self.position_embedding
        grid = torch.zeros((*self.spec.grid_shape, self.spec.width), device=self.class_position.device)
        for axis, table in enumerate(self.axis_embeddings):
            view = [1] * len(self.spec.grid_shape) + [self.spec.width]
            view[axis] = table.shape[0]
            grid = grid + table.view(view)
        return torch.cat([self.class_position, grid.reshape(1, -1, self.spec.width)], dim=1)

    @property
    def mask_id(self) -> int:
        return self.spec.mask_id

    def class_tokens(self, labels: torch.Tensor | None, batch: int, device: torch.device) -> torch.Tensor:
        """The class slot: ``K + label``, or MASK where the label is -1 (or no labels)."""
        if labels is None:
            return torch.full((batch,), self.mask_id, dtype=torch.long, device=device)
        labels = labels.to(device=device, dtype=torch.long)
        if labels.shape != (batch,):
            raise ValueError(f"labels must have shape ({batch},), got {tuple(labels.shape)}")
        if ((labels < -1) | (labels >= self.spec.num_classes)).any():
            raise ValueError(f"labels must be in [-1, {self.spec.num_classes - 1}] (-1: unconditional)")
        return torch.where(labels >= 0, labels + self.spec.codebook_size, self.mask_id)

    def forward(
        self, tokens: torch.Tensor, labels: torch.Tensor | None = None, positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits (B, N, K) over the codebook; with ``positions`` (bool (B, N)) only those positions' logits,
        (M, K) in row-major order of the True entries: training needs the masked positions alone, and at a
        large codebook the logits dominate a step's time and memory."""
        tokens = tokens.reshape(tokens.shape[0], -1)
        if tokens.shape[1] != self.spec.num_tokens:
            raise ValueError(f"expected {self.spec.num_tokens} tokens per sample, got {tokens.shape[1]}")
        valid = ((tokens >= 0) & (tokens < self.spec.codebook_size)) | (tokens == self.mask_id)
        if not bool(valid.all()):
            raise ValueError(f"tokens must be codebook ids in [0, {self.spec.codebook_size}) or MASK ({self.mask_id})")
        sequence = torch.cat([self.class_tokens(labels, tokens.shape[0], tokens.device)[:, None], tokens], dim=1)
        h = self.token_embedding(sequence) + self.positional()
        h = self.dropout(self.embed_norm(h))
        h = self.transformer(h)[:, 1:]
        if positions is not None:
            if positions.shape != tokens.shape or positions.dtype != torch.bool:
                raise ValueError(
                    f"positions must be a bool tensor of shape {tuple(tokens.shape)}, got "
                    f"{positions.dtype} {tuple(positions.shape)}"
                )
            h = h[positions]
        return F.linear(self.head(h), self.token_embedding.weight[: self.spec.codebook_size], self.output_bias)

    def tokens_to_logits(self, labels: torch.Tensor | None):
        """A callable for :func:`fsq.generation.sample`, the class slot fixed to ``labels`` (None: unconditional)."""

        def call(tokens: torch.Tensor) -> torch.Tensor:
            return self(tokens, labels)

        return call


def masked_token_loss(
    logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, label_smoothing: float = 0.1
) -> torch.Tensor:
    """Cross-entropy (with label smoothing over the codebook) averaged over the masked positions only.

    Per sample the mean over its masked positions, then the batch mean (MAGVIT's loop); positions where ``mask``
    is False contribute nothing, whatever their logits. ``logits`` are those of every position (B, N, K) or of the
    masked ones alone (M, K), as ``MaskGIT(..., positions=mask)`` returns them: the same loss.
    """
    targets = targets.reshape(mask.shape)
    if logits.dim() == 2:  # the masked positions' logits only
        if logits.shape[0] != int(mask.sum()):
            raise ValueError(f"{logits.shape[0]} rows of logits for {int(mask.sum())} masked positions")
        picked = F.cross_entropy(logits.float(), targets[mask], reduction="none", label_smoothing=label_smoothing)
        rows = mask.nonzero()[:, 0]
        sums = torch.zeros(mask.shape[0], dtype=picked.dtype, device=picked.device).index_add_(0, rows, picked)
    else:
        per_token = F.cross_entropy(
            logits.float().flatten(0, 1), targets.flatten(), reduction="none", label_smoothing=label_smoothing
        ).view(mask.shape)
        sums = (per_token * mask.float()).sum(1)
    counts = mask.sum(1)
    return (sums / counts.clamp_min(1))[counts > 0].mean()
