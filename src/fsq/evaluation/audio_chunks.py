"""Audio evaluation on clips longer than the model's input, and at each depth of a residual quantizer.

A 1-D tokenizer takes clips of exactly its training crop (``data.length`` samples: 0.25 s for ``fsq_speech``), too
short for STOI (about 0.8 s of speech after its silence removal) and unlike what ``fsq encode`` does with a file.
With ``eval.length`` the held-out clips are centre-cropped to that many samples (:func:`evaluation_config`: the
data settings the held-out split is opened with) and each crop goes through the model as ``fsq encode`` /
``fsq decode`` send a signal (:func:`fsq.inference.codec.chunks_of`): cut into chunks of the model's length, the last
one padded with silence (``0.5``), every chunk encoded and decoded on its own, the decoded chunks joined and the
padding dropped (:func:`through_chunks`).

With ``eval.depths`` a residual quantizer's codes are also decoded from their first ``k`` stages only
(:class:`DepthScores`): the lower bitrates one model trained with quantize dropout serves, scored with the same
audio metrics on the same crops. With ``eval.unquantized`` the latent the stages approximate (the quantizer's
``unquantized``: residual FSQ's continuous first-stage code, RVQ's encoder output) is decoded and scored too: the
ceiling every depth approaches, which says whether a codec is limited by its codebooks or by its latent's width.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import torch

from fsq import distributed
from fsq.config import TokenizerExperiment
from fsq.evaluation.audio_scores import AudioScores
from fsq.models.autoencoder import Tokenizer
from fsq.quantizers.base import QuantizerOutput


def snr_db(reference: torch.Tensor, estimate: torch.Tensor, centre: float = 0.5) -> torch.Tensor:
    """SNR in dB of each item (B,): ``10 log10(sum((x - centre)^2) / sum((x - y)^2))``, capped at 100 dB."""
    signal = (reference.double() - centre).square().flatten(1).sum(1)
    noise = (reference.double() - estimate.double()).square().flatten(1).sum(1)
    return (10 * torch.log10(signal.clamp_min(1e-20) / noise.clamp_min(1e-20))).clamp(max=100.0)


def evaluation_config(cfg: TokenizerExperiment) -> TokenizerExperiment:
    """``cfg`` with ``data.length`` set to ``eval.length`` (when given): the held-out split opened with it keeps
    the clips at least that long and centre-crops them to it."""
    if cfg.eval.length is None or cfg.eval.length == cfg.data.length:
        return cfg
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, length=cfg.eval.length))


def to_chunks(x: torch.Tensor, length: int) -> torch.Tensor:
    """Clips ``(B, C, T)`` as ``(B * n, C, length)`` chunks, ``n = ceil(T / length)``, clip by clip in time order;
    the last chunk of each clip padded with silence (``0.5``)."""
    b, c, t = x.shape
    n = max(1, math.ceil(t / length))
    if n * length != t:
        x = torch.cat([x, x.new_full((b, c, n * length - t), 0.5)], dim=-1)
    return x.reshape(b, c, n, length).permute(0, 2, 1, 3).reshape(b * n, c, length)


def from_chunks(chunks: torch.Tensor, batch: int, samples: int) -> torch.Tensor:
    """The inverse of :func:`to_chunks`: ``(B * n, C, length)`` back to ``(B, C, samples)``, padding dropped."""
    n, c, length = chunks.shape[0] // batch, chunks.shape[1], chunks.shape[2]
    joined = chunks.reshape(batch, n, c, length).permute(0, 2, 1, 3).reshape(batch, c, n * length)
    return joined[..., :samples]


def through_chunks(model: Tokenizer, x: torch.Tensor) -> tuple[torch.Tensor, QuantizerOutput]:
    """Reconstruct clips ``(B, C, T)`` of any length ``T`` chunk by chunk at the model's length; returns the
    reconstruction ``(B, C, T)`` (as the model outputs it) and the quantizer output of the ``(B * n)`` chunks."""
    length = model.spec.input_shape[0]
    if x.shape[-1] == length:
        return model(x)
    reconstruction, out = model(to_chunks(x, length))
    return from_chunks(reconstruction, x.shape[0], x.shape[-1]), out


class DepthScores:
    """Audio metrics of a residual tokenizer decoded from its first ``k`` stages, for each ``k`` of ``depths``
    (clips ``samples`` long at ``rate`` Hz); each depth's bits per second counts ``k`` indices per token."""

    def __init__(
        self,
        model: Tokenizer,
        depths: Sequence[int],
        rate: float | None,
        samples: int,
        speech_quality: bool = True,
        device: Any = "cpu",
        unquantized: bool = False,
    ) -> None:
        stages = getattr(model.quantizer, "num_stages", None)
        if depths and (stages is None or not all(1 <= k <= stages for k in depths)):
            raise ValueError(
                f"eval.depths={list(depths)}: decoding the first k stages needs a residual quantizer with at least "
                f"{max(depths)} stages; this tokenizer's is {type(model.quantizer).__name__}"
                + (f" with {stages}" if stages is not None else "")
            )
        if unquantized and not hasattr(model.quantizer, "unquantized"):
            raise ValueError(
                "eval.unquantized decodes the latent a residual quantizer's stages approximate; this tokenizer's "
                f"quantizer is {type(model.quantizer).__name__}"
            )
        self.model, self.depths, self.stages = model, sorted(set(depths)), stages
        # the depths, then (with ``unquantized``) the decoded latent the stages approximate under the key None
        keys: list[int | None] = [*self.depths, *([None] if unquantized else [])]
        self.scores = {k: AudioScores(rate, samples, speech_quality, device) for k in keys}
        self.snr = torch.zeros(len(keys), 2, dtype=torch.float64, device=device)  # sum, clips

    @torch.no_grad()
    def update(self, x: torch.Tensor, indices: torch.Tensor) -> None:
        """Score clips ``x`` ``(B, C, T)`` in ``[0, 1]`` from their chunks' codes ``indices`` ``(B * n, ..., stages)``
        (:func:`to_chunks` order)."""
        for i, k in enumerate(self.scores):
            if k is None:  # the unquantized latent of the same chunks
                model = self.model
                latent = model.encoder(to_chunks(x, model.spec.input_shape[0]) * 2 - 1)
                decoded = model.decode(model.quantizer.unquantized(latent)).float()  # type: ignore[attr-defined]
            else:
                decoded = self.model.decode_indices(indices[..., :k]).float()
            estimate = from_chunks(decoded, x.shape[0], x.shape[-1]).clamp(0, 1)
            self.scores[k].update(x, estimate)
            self.snr[i] += torch.tensor([snr_db(x, estimate).sum().item(), x.shape[0]], dtype=torch.float64).to(
                self.snr.device
            )

    def all_reduce(self) -> None:
        distributed.all_reduce_sum(self.snr)
        for scores in self.scores.values():
            scores.all_reduce()

    def summary(self, bits_per_second: float | None) -> list[dict[str, Any]]:
        """One entry per depth: ``depth``, its ``bits_per_second`` (``k / stages`` of the full codes'), SNR and
        the audio metrics."""
        out = []
        for i, k in enumerate(self.depths):
            assert self.stages is not None
            bits = bits_per_second * k / self.stages if bits_per_second is not None else None
            count = max(self.snr[i, 1].item(), 1.0)
            snr = self.snr[i, 0].item() / count
            out.append({"depth": k, "bits_per_second": bits, "snr_db": snr, **self.scores[k].summary()})
        return out

    def unquantized_summary(self) -> dict[str, Any] | None:
        """SNR and the audio metrics of the decoded unquantized latent (None when it was not scored)."""
        if None not in self.scores:
            return None
        i = len(self.scores) - 1
        count = max(self.snr[i, 1].item(), 1.0)
        return {"snr_db": self.snr[i, 0].item() / count, **self.scores[None].summary()}
