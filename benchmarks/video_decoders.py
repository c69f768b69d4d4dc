"""Video decoders side by side: PyAV (``av``), ``imageio-ffmpeg`` and ``opencv-python-headless`` on the same files.

For every file given (default: the prepared ``videos`` source, Debian opencv-doc's sample videos) and every decoder
that is installed, the script decodes all frames to RGB uint8 arrays, ``--repeats`` times interleaved (A, B, C, A,
B, C, ...), and reports the frames decoded, the frames the container announces, whether decoding failed, and the
best frames/s. One thread each (``--threads``), so the numbers compare decoders, not cores. It is how fsq chose
PyAV for video files (``fsq.data.video_files``).

Run: ``.venv/bin/python benchmarks/video_decoders.py [FILES...]``; writes ``benchmarks/results/video_decoders.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def decode_av(path: Path, threads: int) -> int:
    import av

    count = 0
    with av.open(os.fspath(path)) as container:
        stream = container.streams.video[0]
        stream.thread_count = threads
        for frame in container.decode(stream):
            frame.to_ndarray(format="rgb24")
            count += 1
    return count


def decode_imageio(path: Path, threads: int) -> int:
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(os.fspath(path), pix_fmt="rgb24", input_params=["-threads", str(threads)])
    meta = next(gen)
    width, height = meta["size"]
    count = 0
    for raw in gen:
        np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)
        count += 1
    return count


def decode_cv2(path: Path, threads: int) -> int:
    import cv2

    cv2.setNumThreads(threads)
    capture = cv2.VideoCapture(os.fspath(path))
    if not capture.isOpened():
        raise ValueError("cv2.VideoCapture could not open the file")
    count = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        count += 1
    capture.release()
    return count


def announced_frames(path: Path) -> int | None:
    try:
        import av

        with av.open(os.fspath(path)) as container:
            return int(container.streams.video[0].frames) or None
    except Exception:  # noqa: BLE001 - only a column of the table
        return None


DECODERS: dict[str, tuple[str, Callable[[Path, int], int]]] = {
    "pyav": ("av", decode_av),
    "imageio-ffmpeg": ("imageio_ffmpeg", decode_imageio),
    "opencv": ("cv2", decode_cv2),
}


def version_of(module: str) -> str | None:
    try:
        imported = __import__(module)
    except ImportError:
        return None
    if module == "imageio_ffmpeg":
        return f"{imported.__version__} (ffmpeg {imported.get_ffmpeg_version()})"
    if module == "av":
        return f"{imported.__version__} (ffmpeg {getattr(imported, 'ffmpeg_version_info', '?')})"
    return imported.__version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "video_decoders.json")
    args = parser.parse_args(argv)
    files = args.files
    if not files:
        from fsq.data.sources import cache_dir

        folder = cache_dir() / "videos"
        files = sorted(p for p in folder.iterdir() if p.suffix in (".avi", ".mp4")) if folder.is_dir() else []
    if not files:
        print("no video files: pass some, or run `fsq data prepare videos`", file=sys.stderr)
        return 1
    versions = {name: version_of(module) for name, (module, _) in DECODERS.items()}
    decoders = {name: fn for name, (module, fn) in DECODERS.items() if versions[name] is not None}
    rows: dict[tuple[str, str], dict] = {}
    for _ in range(args.repeats):
        for path in files:
            for name, fn in decoders.items():
                row = rows.setdefault((path.name, name), {"file": path.name, "decoder": name, "seconds": []})
                start = time.perf_counter()
                try:
                    row["frames"] = fn(path, args.threads)
                except Exception as error:  # noqa: BLE001 - a failing decoder is a result
                    row["error"] = f"{type(error).__name__}: {error}"[:200]
                    continue
                row["seconds"].append(time.perf_counter() - start)
    header = f"{'file':20} {'announced':>9} " + " ".join(f"{name:>22}" for name in decoders)
    print(header)
    for path in files:
        cells = []
        for name in decoders:
            row = rows[(path.name, name)]
            if "error" in row or not row["seconds"]:
                cells.append(f"{'FAILED':>22}")
            else:
                row["frames_per_s"] = row["frames"] / min(row["seconds"])
                cells.append(f"{row['frames']:5d} fr {row['frames_per_s']:8.0f} fr/s")
        print(f"{path.name:20} {announced_frames(path) or '?':>9} " + " ".join(cells))
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": platform.processor() or platform.machine(),
        "load_average": os.getloadavg(),
        "threads": args.threads,
        "versions": versions,
        "rows": list(rows.values()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
