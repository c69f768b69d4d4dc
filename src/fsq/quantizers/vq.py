"""Vector quantization: the baselines the FSQ paper compares against (Mentzer et al., ICLR 2024, arXiv 2309.15505).

Each vector ``z`` (``dim`` channels) is replaced by its nearest codeword ``e`` (squared Euclidean distance, computed
as ``||z||^2 - 2 z.e + ||e||^2`` in float32); gradients pass straight through, ``z + sg(e - z)``. Two recipes,
each as the paper's baseline used it (paper sec. 4 and App. A.4):

``"maskgit"`` (google-research/maskgit ``vqgan_tokenizer.py`` ``VectorQuantizer`` and ``losses.py``)
    Codebook trained by gradient: ``aux_loss = 0.25 * mean((z - sg(e))^2) + 1.0 * mean((sg(z) - e)^2)
    + 0.1 * entropy_loss``. The commitment weight (beta) is on the term whose gradient reaches the encoder, not on
    the codebook term (taming-transformers' ``legacy=True`` puts it there). ``entropy_loss`` is MaskGIT's
    "softmax" type on affinity ``-dist / 0.01``: mean per-token entropy minus the entropy of the batch-averaged
    distribution. Init ``variance_scaling(1.0, "fan_in", "uniform")`` of the (K, dim) parameter: JAX takes fan_in
    from axis -2, i.e. ``K``, so ``U(-sqrt(3 / K), sqrt(3 / K))``. ``"maskgit_noentropy"``: entropy weight 0.
``"uvim"`` (google-research/big_vision ``models/proj/uvim/vit.py``)
    Inputs standardised per vector (``jax.nn.standardize``, eps 1e-5); codewords are EMA sums / EMA counts
    (discounted: ``c <- 0.995 c + n``, ``s <- 0.995 s + sum z``; counts init 1, sums init normal std
    ``1/sqrt(K)``), l2-normalised. No gradient losses (commitment weight 0.0 in all UViM configs). After each
    update, while any count is below 0.1, the least-used code becomes the most-used one times U(0.999, 1.001)
    noise and both counts and sums are halved (codebook splitting). ``"uvim_nosplit"``: no splitting.
``"uvim_short"`` (this project's short runs): the ``"uvim"`` recipe with the dead-code threshold scaled to the run
    length. A code unused for ``n`` steps has a count of at most ``0.995**n`` times its last value, so with counts
    starting at 1 the paper's threshold 0.1 lets the first split happen only after ``ln 0.1 / ln 0.995 = 459``
    steps: never in a few-hundred-step oracle. ``"uvim_short"`` keeps the paper's momentum 0.995 and raises the
    threshold to ``0.995**30 = 0.860`` (:data:`SHORT_RUN_DEAD_STEPS` = 30 steps, a twentieth of a 600-step oracle),
    so a code unused for 30 steps is split. ``"uvim"`` keeps the paper's values (0.995, 0.1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from fsq.quantizers.base import (
    QuantizerOutput,
    as_index_tensor,
    autocast_off,
    checked_input_axis,
    host_checks,
    resolve_axis,
)

DISTANCE_CHUNK_ELEMENTS = 2**26  # nearest-neighbour search works on row blocks of at most this many distances
STANDARDIZE_EPS = 1e-5  # jax.nn.standardize's default, as big_vision calls it
SPLIT_PERTURBATION = 1e-3  # big_vision's PERTURB: the split copy is scaled by U(1 - p, 1 + p)


@dataclass(frozen=True)
class VQRecipe:
    """A named set of VQ training choices; see the module docstring for where each comes from.

    ``ema_decay = None`` means a codebook trained by gradient (an ``nn.Parameter``); a float means EMA buffers.
    """

    commitment_weight: float
    codebook_weight: float
    entropy_weight: float
    entropy_temperature: float
    ema_decay: float | None
    l2_normalize: bool
    standardize: bool
    split_dead_codes: bool
    dead_code_threshold: float


def dead_code_threshold(ema_decay: float, dead_steps: int) -> float:
    """The threshold below which a code splits ``dead_steps`` after its count was 1: ``ema_decay ** dead_steps``."""
    return ema_decay**dead_steps


SHORT_RUN_DEAD_STEPS = 30  # "uvim_short": a code unused for this many steps splits (the paper's 0.1: 459 steps)
_MASKGIT = VQRecipe(0.25, 1.0, 0.1, 0.01, None, False, False, False, 0.1)
_UVIM = VQRecipe(0.0, 0.0, 0.0, 0.01, 0.995, True, True, True, 0.1)
VQ_RECIPES: dict[str, VQRecipe] = {
    "maskgit": _MASKGIT,
    "maskgit_noentropy": replace(_MASKGIT, entropy_weight=0.0),
    "uvim": _UVIM,
    "uvim_nosplit": replace(_UVIM, split_dead_codes=False),
    "uvim_short": replace(_UVIM, dead_code_threshold=dead_code_threshold(0.995, SHORT_RUN_DEAD_STEPS)),
}


class VQLosses(NamedTuple):
    """The unweighted loss terms of one forward (float32 scalars, detached); a term whose weight is 0 reads 0.

    ``commitment = mean((z - sg(e))^2)`` (gradient to the encoder), ``codebook = mean((sg(z) - e)^2)`` (gradient to
    the codebook), ``entropy`` = MaskGIT's entropy loss. ``z`` is the input after standardisation, if any.
    """

    commitment: torch.Tensor
    codebook: torch.Tensor
    entropy: torch.Tensor


def squared_distances(x: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """``||x||^2 - 2 x.e + ||e||^2`` for ``x`` (N, D) and ``codebook`` (K, D): (N, K), one matmul."""
    x2 = x.pow(2).sum(1, keepdim=True)
    distances = torch.addmm(x2, x, codebook.t(), alpha=-2.0)
    return distances.add_(codebook.pow(2).sum(1))  # in place: one (N, K) buffer, not two


AFFINITY_FLOOR = -60.0  # affinities below a row's maximum by more than this are clamped (see entropy_loss)


def assignment_log_probs(distances: torch.Tensor, temperature: float) -> torch.Tensor:
    """``log_softmax(-distances / temperature)`` over codes, each row's affinities floored at ``AFFINITY_FLOOR``
    below its maximum (their probabilities, below ``e^-60``, stay normal floats, never subnormal)."""
    affinity = -distances / temperature
    shifted = affinity - affinity.detach().amax(-1, keepdim=True)  # softmax is shift-invariant: same values
    return shifted.clamp_min(AFFINITY_FLOOR).log_softmax(-1)


def entropy_loss(distances: torch.Tensor, temperature: float) -> torch.Tensor:
    """MaskGIT's "softmax" entropy loss of (N, K) squared distances: mean token entropy - entropy of the mean.

    Affinities more than ``-AFFINITY_FLOOR`` below their row's maximum are clamped there: their probability
    (below ``e^-60``, 1e-26 of the row's largest) is nil in float32 sums either way, but left alone, a small
    temperature such as MaskGIT's 0.01 sends most of them into subnormal floats, which x86 CPUs compute many times
    slower (this loss took 4x as long on a CPU).

    Value and gradient are those of the composition in :func:`entropy_loss_reference` (up to float rounding), computed
    by :class:`_EntropyLoss` in a few in-place passes over the (N, K) matrix with its gradient written by hand: the
    composition's autograd graph keeps about ten (N, K) temporaries and took half of a VQ tokenizer's CPU step.
    """
    return _EntropyLoss.apply(distances, temperature)


def entropy_loss_reference(distances: torch.Tensor, temperature: float) -> torch.Tensor:
    """:func:`entropy_loss` as a plain composition of torch operations (autograd's gradient): the reference that the
    fused version is tested against. One ``log_softmax`` gives both the log-probabilities and, through ``exp``, the
    probabilities."""
    log_probs = assignment_log_probs(distances, temperature)
    probs = log_probs.exp()
    sample_entropy = -(probs * log_probs).sum(-1).mean()
    return sample_entropy - _entropy_of_mean(probs.mean(0))


def _assignments_(affinity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The log-probabilities and probabilities of a softmax over the last axis of ``affinity`` (no gradient;
    ``affinity`` is overwritten by the log-probabilities), each row's affinities floored ``-AFFINITY_FLOOR`` below
    its maximum as in :func:`assignment_log_probs`: no subnormal probabilities. The forward pass of
    :func:`entropy_loss` and :func:`nearest_and_entropy`'s blocks."""
    affinity.sub_(affinity.amax(-1, keepdim=True)).clamp_min_(AFFINITY_FLOOR)
    probs = affinity.exp()
    total = probs.sum(-1, keepdim=True)  # >= 1: each row's maximum is exp(0)
    probs.div_(total)
    return affinity.sub_(total.log_()), probs


class _EntropyLoss(torch.autograd.Function):
    """:func:`entropy_loss` with its gradient by hand. With ``p`` the (N, K) assignment probabilities, ``lp`` their
    logs, ``H_i`` row ``i``'s entropy and ``q`` the mean of ``p`` over rows, the loss is
    ``mean_i H_i + sum_j q_j log(q_j + 1e-5)``, so ``dL/dp_ij = (c_j - lp_ij - 1) / N`` with
    ``c_j = log(q_j + 1e-5) + q_j / (q_j + 1e-5)``; through the softmax,
    ``dL/ds_ij = p_ij (c_j - lp_ij - H_i - (p c)_i) / N`` (the ``-1`` cancels), and ``d = -T s`` up to a per-row
    shift, so ``dL/dd = -dL/ds / T``. At the floored affinities this gives ``p_ij`` (below ``e^-60``) times a finite
    factor where the clamp's own gradient gives 0: the same up to float32 rounding of the row's gradient."""

    @staticmethod
    def forward(ctx: Any, distances: torch.Tensor, temperature: float) -> torch.Tensor:  # noqa: D102
        with torch.no_grad():
            log_probs, probs = _assignments_(distances.detach().mul(-1.0 / temperature))
            row_entropy = -torch.linalg.vecdot(probs, log_probs)
            mean_probs = probs.mean(0)
            loss = row_entropy.mean() - _entropy_of_mean(mean_probs)
        ctx.save_for_backward(log_probs, probs, row_entropy, mean_probs)
        ctx.temperature = temperature
        return loss

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None]:  # noqa: D102
        log_probs, probs, row_entropy, mean_probs = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None
        c = torch.log(mean_probs + 1e-5) + mean_probs / (mean_probs + 1e-5)
        shift = row_entropy + probs @ c
        out = log_probs - c  # a new (N, K) buffer: the saved tensors stay intact
        out.add_(shift.unsqueeze(1)).mul_(probs)
        return out.mul_(grad / (probs.shape[0] * ctx.temperature)), None


def _entropy_of_mean(avg_probs: torch.Tensor) -> torch.Tensor:
    """The entropy of the mean assignment (the codebook-usage term of :func:`entropy_loss`)."""
    return -(avg_probs * torch.log(avg_probs + 1e-5)).sum()


@torch.no_grad()
def nearest_and_entropy(
    x: torch.Tensor, codebook: torch.Tensor, temperature: float, chunk_elements: int = DISTANCE_CHUNK_ELEMENTS
) -> tuple[torch.Tensor, torch.Tensor]:
    """The nearest codeword of each row of ``x`` and :func:`entropy_loss` of all rows, without gradients, in row
    blocks of at most ``chunk_elements`` distances: memory bounded whatever N x K (tokenizing a dataset with a large
    codebook), the same values as the full matrix up to rounding. Affinities are floored as in :func:`entropy_loss`
    (2.5x faster on a CPU at MaskGIT's temperature, where unfloored probabilities are mostly subnormal)."""
    rows = max(1, chunk_elements // codebook.shape[0])
    indices, token_entropy = [], x.new_zeros(())
    prob_sum = x.new_zeros(codebook.shape[0])
    for block in x.split(rows):
        distances = squared_distances(block, codebook)
        indices.append(distances.argmin(1))
        log_probs, probs = _assignments_(distances.mul_(-1.0 / temperature))
        token_entropy -= (probs * log_probs).sum()
        prob_sum += probs.sum(0)
    return torch.cat(indices), token_entropy / x.shape[0] - _entropy_of_mean(prob_sum / x.shape[0])


def standardize(x: torch.Tensor, eps: float = STANDARDIZE_EPS) -> torch.Tensor:
    """Zero mean, unit variance over the last axis (``jax.nn.standardize``): ``(x - mean) / sqrt(var + eps)``."""
    mean = x.mean(-1, keepdim=True)
    var = x.var(-1, keepdim=True, correction=0)
    return (x - mean) * torch.rsqrt(var + eps)


class VQ(nn.Module):
    """Vector quantizer over ``dim`` channels with ``codebook_size`` codewords.

    Args:
        codebook_size: number of codewords ``K``.
        dim: channels per vector (the size of the channel axis).
        recipe: one of :data:`VQ_RECIPES` (``"maskgit"``, ``"maskgit_noentropy"``, ``"uvim"``, ``"uvim_nosplit"``,
            ``"uvim_short"``).
        channel_axis: the axis of the input holding the ``dim`` channels (default last).
        commitment_weight, codebook_weight, entropy_weight, entropy_temperature, ema_decay, l2_normalize,
            standardize, split_dead_codes, dead_code_threshold: override the recipe's field (None keeps it).
        check_finite: raise ``ValueError`` on NaN/Inf input (one cheap reduction per call).

    Shapes: ``forward(z)`` with ``z`` of shape (..., dim, ...) (channels on ``channel_axis``) returns
    ``QuantizerOutput(quantized, indices, aux_loss)``: ``quantized`` like ``z`` (shape and dtype), ``indices`` int64
    of ``z``'s shape without the channel axis, ``aux_loss`` a float32 scalar. :attr:`last_losses` holds the
    unweighted terms of the last forward. EMA updates (and splitting) happen in training mode only.
    """

    # buffers registered in __init__ when the recipe has an EMA codebook (declared here for the type checker)
    ema_counts: torch.Tensor
    ema_sums: torch.Tensor

    def __init__(
        self,
        codebook_size: int,
        dim: int,
        *,
        recipe: str = "maskgit",
        channel_axis: int = -1,
        commitment_weight: float | None = None,
        codebook_weight: float | None = None,
        entropy_weight: float | None = None,
        entropy_temperature: float | None = None,
        ema_decay: float | None = None,
        l2_normalize: bool | None = None,
        standardize: bool | None = None,
        split_dead_codes: bool | None = None,
        dead_code_threshold: float | None = None,
        check_finite: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (("codebook_size", codebook_size), ("dim", dim)):
            if isinstance(value, bool) or not float(value).is_integer() or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if recipe not in VQ_RECIPES:
            raise ValueError(f"unknown VQ recipe {recipe!r}; valid recipes: {', '.join(sorted(VQ_RECIPES))}")
        overrides: dict[str, Any] = dict(  # mixed field types, checked by _validate_recipe
            commitment_weight=commitment_weight,
            codebook_weight=codebook_weight,
            entropy_weight=entropy_weight,
            entropy_temperature=entropy_temperature,
            ema_decay=ema_decay,
            l2_normalize=l2_normalize,
            standardize=standardize,
            split_dead_codes=split_dead_codes,
            dead_code_threshold=dead_code_threshold,
        )
        self.recipe_name = recipe
        self.recipe = replace(VQ_RECIPES[recipe], **{k: v for k, v in overrides.items() if v is not None})
        self._validate_recipe(self.recipe)
        self.codebook_size, self.dim = int(codebook_size), int(dim)
        self.channel_axis = int(channel_axis)
        self.check_finite = bool(check_finite)
        self.uses_ema = self.recipe.ema_decay is not None
        if self.uses_ema:
            self.register_buffer("ema_counts", torch.ones(self.codebook_size))
            self.register_buffer("ema_sums", torch.empty(self.codebook_size, self.dim))
        else:
            self.codebook = nn.Parameter(torch.empty(self.codebook_size, self.dim))
        self.reset_parameters()
        zero = torch.zeros(())
        self.last_losses = VQLosses(zero, zero, zero)
        self.last_num_splits = 0

    @staticmethod
    def _validate_recipe(r: VQRecipe) -> None:
        for name in ("commitment_weight", "codebook_weight", "entropy_weight", "dead_code_threshold"):
            value = getattr(r, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not r.entropy_temperature > 0:
            raise ValueError(f"entropy_temperature must be > 0, got {r.entropy_temperature!r}")
        if r.ema_decay is not None and not 0 <= r.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {r.ema_decay!r}")
        if r.ema_decay is not None and r.codebook_weight != 0:
            raise ValueError("codebook_weight must be 0 with an EMA codebook (ema_decay set): it has no gradient")
        if r.ema_decay is None and r.split_dead_codes:
            raise ValueError("split_dead_codes needs an EMA codebook (ema_decay set): splitting acts on EMA counts")

    def reset_parameters(self) -> None:
        """MaskGIT: ``U(-sqrt(3/K), sqrt(3/K))`` (JAX fan_in of a (K, dim) array); EMA: sums ~ N(0, 1/K), counts 1."""
        with torch.no_grad():
            if self.uses_ema:
                self.ema_counts.fill_(1.0)
                self.ema_sums.normal_(0.0, 1.0 / math.sqrt(self.codebook_size))
            else:
                bound = math.sqrt(3.0 / self.codebook_size)
                self.codebook.uniform_(-bound, bound)

    def extra_repr(self) -> str:
        return (
            f"codebook_size={self.codebook_size}, dim={self.dim}, recipe={self.recipe_name!r}, "
            f"channel_axis={self.channel_axis}, {self.recipe}"
        )

    # ------------------------------------------------------------------------------------------------ codebook
    def get_codebook(self) -> torch.Tensor:
        """The effective codebook (K, dim), float32: EMA sums / counts, l2-normalised if the recipe says so.

        Differentiable for the gradient-trained codebook.
        """
        if self.uses_ema:
            codebook = self.ema_sums.float() / self.ema_counts.float().unsqueeze(1)
        else:
            codebook = self.codebook.float()
        return F.normalize(codebook, dim=-1) if self.recipe.l2_normalize else codebook

    def nearest(
        self, x: torch.Tensor, codebook: torch.Tensor, chunk_elements: int = DISTANCE_CHUNK_ELEMENTS
    ) -> torch.Tensor:
        """Int64 index of the nearest codeword for each row of ``x`` (N, dim), in blocks of <= ``chunk_elements``."""
        rows = max(1, chunk_elements // codebook.shape[0])
        with torch.no_grad():
            if x.shape[0] <= rows:
                return squared_distances(x, codebook).argmin(1)
            return torch.cat([squared_distances(b, codebook).argmin(1) for b in x.split(rows)])

    # ------------------------------------------------------------------------------------------------- forward
    def _axis(self, ndim: int) -> int:
        return resolve_axis(self.channel_axis, ndim)

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """Quantize ``z``; see the class docstring for shapes."""
        axis = checked_input_axis(z, "VQ", self.dim, self.channel_axis)
        with autocast_off(z.device.type):
            moved = z.float().movedim(axis, -1)
            x = moved.reshape(-1, self.dim)
            if self.check_finite and host_checks(x):
                self._raise_if_nonfinite(x)
            if self.recipe.standardize and x.shape[0] > 0:
                x = standardize(x)
            codebook = self.get_codebook()
            r = self.recipe
            zero = torch.zeros((), device=x.device)
            entropy = zero
            if r.entropy_weight > 0 and x.shape[0] > 0:
                if torch.is_grad_enabled() and (x.requires_grad or codebook.requires_grad):  # the full (N, K) matrix
                    distances = squared_distances(x, codebook)
                    indices = distances.detach().argmin(1)
                    entropy = entropy_loss(distances, r.entropy_temperature)
                else:  # evaluation, tokenizing: no gradient wanted, bounded memory
                    indices, entropy = nearest_and_entropy(x, codebook, r.entropy_temperature)
            else:
                indices = self.nearest(x, codebook)
            e = codebook[indices]
            quantized = x + (e - x).detach()
            empty = x.shape[0] == 0
            commitment = F.mse_loss(x, e.detach()) if r.commitment_weight > 0 and not empty else zero
            codebook_term = F.mse_loss(x.detach(), e) if r.codebook_weight > 0 and not empty else zero
            aux_loss = r.commitment_weight * commitment + r.codebook_weight * codebook_term + r.entropy_weight * entropy
            self.last_losses = VQLosses(commitment.detach(), codebook_term.detach(), entropy.detach())
            if self.uses_ema and self.training:
                self._ema_update(x.detach(), indices)
        quantized = quantized.reshape(moved.shape).movedim(-1, axis).to(z.dtype)
        return QuantizerOutput(quantized, indices.reshape(moved.shape[:-1]), aux_loss.float())

    @staticmethod
    def _raise_if_nonfinite(x: torch.Tensor) -> None:
        if not bool(torch.isfinite(x.sum())):
            bad = int((~torch.isfinite(x)).sum())
            if bad:
                raise ValueError(
                    f"VQ input contains {bad} non-finite value(s) (NaN or Inf); fix the encoder "
                    "(or pass check_finite=False to skip this check)"
                )

    # --------------------------------------------------------------------------------------------------- EMA
    @torch.no_grad()
    def _ema_update(self, x: torch.Tensor, indices: torch.Tensor) -> None:
        """Discounted counts and sums (big_vision): ``c <- m c + n``, ``s <- m s + sum x``, all-reduced under DDP.

        An empty batch is no evidence: it leaves the counts and sums unchanged (no decay, so no code dies of it).
        Under DDP every rank still joins the reductions, and the state stays unchanged only when the global batch
        is empty (decided on the device, without a host sync).
        """
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        if (x.shape[0] == 0 and not distributed) or x.device.type == "meta":  # meta tensors: shapes only, no state
            self.last_num_splits = 0
            return
        counts = torch.bincount(indices, minlength=self.codebook_size).float()
        sums = torch.zeros(self.codebook_size, self.dim, device=x.device).index_add_(0, indices, x)
        if distributed:
            torch.distributed.all_reduce(counts)
            torch.distributed.all_reduce(sums)
        assert self.recipe.ema_decay is not None  # only called with an EMA codebook (uses_ema)
        decay: float | torch.Tensor = self.recipe.ema_decay
        if distributed:  # decay 1 (no change) when no rank saw a vector
            decay = torch.where(counts.sum() > 0, decay, 1.0)
        new_counts = self.ema_counts.float() * decay + counts
        new_sums = self.ema_sums.float() * decay + sums
        self.last_num_splits = self._split_dead_codes(new_counts, new_sums) if self.recipe.split_dead_codes else 0
        self.ema_counts.copy_(new_counts)
        self.ema_sums.copy_(new_sums)

    def _split_dead_codes(self, counts: torch.Tensor, sums: torch.Tensor) -> int:
        """In place: while a count is below the threshold, split the most-used code into the least-used slot.

        Returns the number of splits (at most ``codebook_size``). Under DDP the (random) sums are broadcast from
        rank 0 afterwards; the counts are identical on every rank already.
        """
        splits = 0
        for _ in range(self.codebook_size):
            i_min, i_max = int(counts.argmin()), int(counts.argmax())
            if float(counts[i_min]) >= self.recipe.dead_code_threshold or i_min == i_max:
                break
            noise = torch.empty(self.dim, device=sums.device).uniform_(1 - SPLIT_PERTURBATION, 1 + SPLIT_PERTURBATION)
            sums[i_min] = sums[i_max] * noise / 2
            sums[i_max] /= 2
            counts[i_max] /= 2
            counts[i_min] = counts[i_max]
            splits += 1
        if splits and torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.broadcast(sums, src=0)
        return splits

    # ------------------------------------------------------------------------------------------------ indices
    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """Codewords (float32) of int ``indices`` (...), with the ``dim`` channels placed on ``channel_axis``.

        ``indices``: an integer tensor or a (nested) list of ints, each in ``[0, codebook_size)``.
        """
        codebook = self.get_codebook()
        indices = as_index_tensor(indices, "indices", codebook.device)
        if indices.numel() and host_checks(indices):
            lo, hi = int(indices.min()), int(indices.max())
            if lo < 0 or hi >= self.codebook_size:
                raise ValueError(
                    f"indices out of range: found values in [{lo}, {hi}], valid range is "
                    f"[0, {self.codebook_size - 1}] (codebook_size = {self.codebook_size})"
                )
        codes = codebook[indices.long()]
        return codes.movedim(-1, self._axis(codes.ndim))

    def indices_to_quantized(self, indices: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`indices_to_codes` (VQ has no output projection): ``forward``'s ``quantized``, float32."""
        return self.indices_to_codes(indices)
