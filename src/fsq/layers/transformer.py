"""Transformer stacks on ``torch.nn``'s encoder/decoder layers, with BERT's initialisation.

MaskGIT's transformer is BERT-style: post-LayerNorm (``norm_first=False``), GELU MLP, dropout on hidden states and
attention, truncated-normal(std 0.02) weights. Pre-LayerNorm (``norm_first=True``) trains more easily at small
scale and is the choice of our CPU presets. The layers are ``nn.TransformerEncoderLayer`` /
``nn.TransformerDecoderLayer`` (which use ``scaled_dot_product_attention``), stacked in a ``ModuleList``.
"""

from __future__ import annotations

import torch
from torch import nn


def init_bert_(module: nn.Module, std: float = 0.02) -> None:
    """BERT initialisation in place: truncated-normal(+-2 std) weights, zero biases, unit LayerNorms."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.MultiheadAttention):
            nn.init.trunc_normal_(m.in_proj_weight, std=std, a=-2 * std, b=2 * std)
            nn.init.zeros_(m.in_proj_bias)


def _check(width: int, heads: int) -> None:
    if width % heads:
        raise ValueError(f"width {width} is not divisible by heads {heads}")


class TransformerEncoder(nn.Module):
    """``depth`` self-attention layers (bidirectional unless a mask is passed); a final LN when pre-LN."""

    def __init__(
        self, width: int, depth: int, heads: int, mlp_dim: int, dropout: float = 0.1, norm_first: bool = False
    ) -> None:
        super().__init__()
        _check(width, heads)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                width,
                heads,
                mlp_dim,
                dropout,
                activation="gelu",
                layer_norm_eps=1e-6,
                batch_first=True,
                norm_first=norm_first,
            )
            for _ in range(depth)
        )
        self.final_norm = nn.LayerNorm(width, eps=1e-6) if norm_first else nn.Identity()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, src_mask=mask)
        return self.final_norm(x)


class TransformerDecoder(nn.Module):
    """``depth`` causal self-attention + cross-attention layers (an autoregressive decoder over a memory)."""

    def __init__(
        self, width: int, depth: int, heads: int, mlp_dim: int, dropout: float = 0.1, norm_first: bool = True
    ) -> None:
        super().__init__()
        _check(width, heads)
        self.layers = nn.ModuleList(
            nn.TransformerDecoderLayer(
                width,
                heads,
                mlp_dim,
                dropout,
                activation="gelu",
                layer_norm_eps=1e-6,
                batch_first=True,
                norm_first=norm_first,
            )
            for _ in range(depth)
        )
        self.final_norm = nn.LayerNorm(width, eps=1e-6) if norm_first else nn.Identity()

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        length = x.shape[1]
        causal = torch.triu(torch.full((length, length), float("-inf"), device=x.device), diagonal=1)
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=causal, tgt_is_causal=True)
        return self.final_norm(x)
