"""Bad inputs to ``load_folder``, one row each: loaded with the expected pixels, skipped and counted (raising
with ``on_error="raise"``), or refused with a clear ``ValueError``."""

from __future__ import annotations

import errno
import os
import re

import numpy as np
import pytest
from PIL import Image

from fsq.data.images import load_folder

RNG = np.random.default_rng(0)
GOOD = RNG.integers(0, 256, (4, 4, 3), dtype=np.uint8)


def _good(root):
    root.mkdir(parents=True, exist_ok=True)
    Image.fromarray(GOOD).save(root / "good.png")


def _with_bad(name, write):
    """A folder of one good image and the bad file ``name`` (written by ``write(path)``)."""

    def build(tmp_path, png_writer, monkeypatch):
        _good(tmp_path)
        write(tmp_path / name, png_writer)
        return tmp_path, name

    return build


def _truncated(path, _):
    Image.fromarray(RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _float_tif(values):
    return lambda path, _: Image.fromarray(np.asarray(values, dtype=np.float32)).save(path)


def _unreadable(tmp_path, png_writer, monkeypatch):
    _good(tmp_path)
    _good(tmp_path / "secret")
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path) == os.fspath(tmp_path / "secret"):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    return tmp_path, "secret/"


def _loaded(write, expected, skipped=()):
    """A folder that ``write(root, png_writer)`` fills; ``expected``: its pixels ``(N, H, W, C)``."""

    def build(tmp_path, png_writer, monkeypatch):
        write(tmp_path, png_writer)
        return tmp_path, (np.asarray(expected, dtype=np.uint8), list(skipped))

    return build


def _exif_rotated(root, _):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(GOOD[:2]).save(root / "r.png", exif=exif)


def _cycle(root, _):
    _good(root / "a")
    (root / "a" / "loop").symlink_to(root / "a")


def _self_link(root, _):
    _good(root)
    (root / "self").symlink_to(".")


GREY16 = np.arange(16, dtype=np.uint16).reshape(4, 4) * 4369  # 0..65535 in 16 steps
RGB16 = RNG.integers(0, 65536, (4, 4, 3)).astype(np.uint16)
PALETTE = np.array([[255, 0, 0], [0, 0, 255], [30, 60, 90]], dtype=np.uint8)
INDEX = RNG.integers(0, 3, (4, 4)).astype(np.uint8)
CMYK = RNG.integers(0, 256, (4, 4, 4), dtype=np.uint8)
UNIT = RNG.uniform(0, 1, (4, 4))
RGBA = RNG.integers(0, 256, (4, 4, 4), dtype=np.uint8)


def _palette(root, _):
    image = Image.frombytes("P", (4, 4), INDEX.tobytes())
    image.putpalette(PALETTE.ravel().tolist())
    image.save(root / "p.png")


def _grey(values):
    return np.repeat(np.asarray(values)[..., None], 3, -1)


def _composite(rgba):
    alpha = rgba[..., 3:] / 255
    return np.rint(rgba[..., :3] * alpha + 255 * (1 - alpha))


CASES = [
    # ---- loaded, with the expected pixels ----------------------------------------------------------------------
    pytest.param(_loaded(_exif_rotated, [np.rot90(GOOD[:2], -1)]), "ok", None, id="exif-rotation-applied"),
    pytest.param(_loaded(_cycle, [GOOD], ["a/loop/"]), "ok", None, id="symlink-cycle"),
    pytest.param(_loaded(_self_link, [GOOD], ["self/"]), "ok", None, id="self-link-loads-once"),
    pytest.param(
        _loaded(lambda r, w: w(r / "g.png", GREY16), [_grey(np.rint(GREY16 / 257))]), "ok", None, id="16-bit-grey"
    ),
    pytest.param(_loaded(lambda r, w: w(r / "c.png", RGB16), [np.rint(RGB16 / 257)]), "ok", None, id="16-bit-rgb"),
    pytest.param(_loaded(_palette, [PALETTE[INDEX]]), "ok", None, id="palette"),
    pytest.param(
        _loaded(
            lambda r, w: Image.frombytes("CMYK", (4, 4), CMYK.tobytes()).save(r / "c.tif"),
            [np.rint((255.0 - CMYK[..., :3]) * (255.0 - CMYK[..., 3:]) / 255)],
        ),
        "ok",
        None,
        id="cmyk",
    ),
    pytest.param(
        _loaded(lambda r, w: _float_tif(UNIT)(r / "f.tif", w), [_grey(np.rint(UNIT * 255))]), "ok", None, id="float"
    ),
    pytest.param(
        _loaded(lambda r, w: Image.fromarray(RGBA).save(r / "a.png"), [_composite(RGBA)]), "ok", None, id="rgba"
    ),
    # ---- skipped and counted; on_error="raise" raises naming the file ----------------------------------------
    pytest.param(_with_bad("t.png", _truncated), "skip", "truncated", id="truncated-png"),
    pytest.param(_with_bad("zero.png", lambda p, _: p.write_bytes(b"")), "skip", "cannot identify", id="zero-bytes"),
    pytest.param(
        _with_bad("text.png", lambda p, _: p.write_text("hello")), "skip", "cannot identify", id="text-named-png"
    ),
    pytest.param(
        _with_bad("bomb.png", lambda p, w: w(p, None, size=(50000, 50000))), "skip", "too large", id="huge-error"
    ),
    pytest.param(
        _with_bad("big.png", lambda p, w: w(p, None, size=(10000, 10000))), "skip", "too large", id="huge-warning"
    ),
    pytest.param(_with_bad("n.tif", _float_tif([[0.5, np.nan]])), "skip", "NaN", id="float-nan"),
    pytest.param(_with_bad("k.tif", _float_tif([[7.0, 7.0]])), "skip", "constant", id="float-constant"),
    pytest.param(
        _with_bad("i.tif", lambda p, _: Image.fromarray(np.array([[0, 1 << 20]], np.int32)).save(p)),
        "skip",
        "0..65535",
        id="int32-beyond-16-bit",
    ),
    pytest.param(
        _with_bad("gone.png", lambda p, _: p.symlink_to(p.parent / "missing.png")),
        "skip",
        "No such file",
        id="dangling",
    ),
    pytest.param(_unreadable, "skip", "cannot read folder: Permission denied", id="unreadable-sub-folder"),
    # ---- refused: a clear ValueError ---------------------------------------------------------------------------
    pytest.param(lambda t, w, m: t, "error", r"no decodable images.*0 image files.*1 folders", id="empty-folder"),
    pytest.param(
        lambda t, w, m: [(t / d).mkdir(parents=True) for d in ("a/x", "b")] and t,
        "error",
        r"no decodable images.*0 image files.*4 folders",
        id="only-sub-folders",
    ),
    pytest.param(lambda t, w, m: t / "nope", "error", "does not exist", id="nonexistent"),
    pytest.param(lambda t, w, m: _good(t) or t / "good.png", "error", "is a file, not a folder", id="file-not-folder"),
]


@pytest.mark.parametrize("build, outcome, detail", CASES)
def test_bad_input(build, outcome, detail, tmp_path, png_writer, monkeypatch):
    (tmp_path / "in").mkdir()
    built = build(tmp_path / "in", png_writer, monkeypatch) if outcome != "error" else None
    if outcome == "ok":
        root, (expected, skipped) = built
        ds = load_folder(root, on_error="raise")
        assert np.array_equal(ds.images.permute(0, 2, 3, 1).numpy(), expected) and ds.skipped == skipped
    elif outcome == "skip":
        root, name = built
        ds = load_folder(root)
        assert len(ds) == 1 and ds.skipped == [name], ds.skip_reasons
        assert detail in ds.skip_reasons[0][1]
        with pytest.raises(ValueError, match=re.escape(name.rstrip("/"))):
            load_folder(root, on_error="raise")
    else:
        with pytest.raises(ValueError, match=detail):
            load_folder(build(tmp_path / "in", png_writer, monkeypatch))


# ---- WebDataset shards: damaged, missing or unreadable shards are named, never dropped without a word ----------
def _shards(root):
    """Two intact shards of 12 samples (``train-000000.tar``, ``train-000001.tar``) under ``root/src``."""
    from streaming_sources import make_folder, make_shards

    return make_shards(make_folder(root / "images"), root / "src", per_shard=12)


def _cut(where):
    """A 12-sample shard cut ``where``: inside member 14 (sample 7's image), inside its header, or just before it."""

    def build(root):
        import tarfile

        good = _shards(root) / "train-000000.tar"
        with tarfile.open(good) as tar:
            member = tar.getmembers()[14]
        end = {"mid-member": member.offset_data + member.size // 2, "mid-header": member.offset + 200}
        data = good.read_bytes()[: end.get(where, member.offset)]
        (root / "cut.tar").write_bytes(data)
        return f"wds:{root}/cut.tar", 7, "cut.tar"

    return build


def _random_bytes(beside_good):
    def build(root):
        source = _shards(root)
        (source / "train-000002.tar").write_bytes(np.random.default_rng(1).bytes(5000))
        if not beside_good:
            return f"wds:{source}/train-000002.tar", 0, "train-000002.tar"
        return f"wds:{source}/train-*.tar", 24, "train-000002.tar"

    return build


def _dangling(in_folder):
    def build(root):
        source = _shards(root)
        (source / "train-000002.tar").symlink_to(root / "gone.tar")
        return (f"wds:{source}" if in_folder else f"wds:{source}/{{split}}-*.tar"), 24, "train-000002.tar"

    return build


def _braces(last):
    def build(root):
        return f"wds:{_shards(root)}/{{split}}-{{000000..{last:06d}}}.tar", 24, f"train-{last:06d}.tar"

    return build


WDS_CASES = [  # (build(root) -> (source, samples used, the name the skip or error gives), outcome, reason)
    pytest.param(_braces(1), "ok", None, id="brace-pattern"),
    pytest.param(_cut("mid-member"), "skip", "cut short inside member '000007.png'", id="cut-mid-member"),
    pytest.param(_cut("mid-header"), "skip", "cut short inside a member header", id="cut-mid-header"),
    pytest.param(_cut("at-a-member"), "skip", "no end-of-archive marker", id="cut-between-members"),
    pytest.param(_random_bytes(True), "skip", "not a readable tar file", id="random-bytes-beside-good"),
    pytest.param(_dangling(False), "skip", "dangling symbolic link", id="dangling-link-in-glob"),
    pytest.param(_dangling(True), "skip", "dangling symbolic link", id="dangling-link-in-folder"),
    pytest.param(_braces(2), "skip", "no such shard file", id="brace-names-a-missing-shard"),
    pytest.param(_random_bytes(False), "error", "not a readable tar file", id="random-bytes-alone"),
]


@pytest.mark.parametrize("build, outcome, reason", WDS_CASES)
def test_bad_webdataset_shards(build, outcome, reason, tmp_path, caplog):
    from fsq.data.datasets import open_items
    from fsq.stages.tokenizer import SKIPPED, write_skipped

    source, used, name = build(tmp_path)
    if outcome == "error":
        for on_error in ("skip", "raise"):
            with pytest.raises(ValueError, match=f"{re.escape(name)}.*{reason}"):
                open_items(source, "train", on_error=on_error)
        return
    with caplog.at_level("WARNING"):
        items = open_items(source, "train")
    assert len(items) == used and len({items.name(i) for i in range(used)}) == used
    if outcome == "ok":
        assert items.skipped == [] and "skipped" not in caplog.text
        return
    assert [(n, r) for n, r in items.skipped if reason in r and n.endswith(name)], items.skipped
    assert name in caplog.text and reason in caplog.text  # said once, at start
    write_skipped(tmp_path, "train", items.skipped, {})  # and kept in RUN/skipped_files.json
    assert reason in (tmp_path / SKIPPED).read_text()
    with pytest.raises(ValueError, match=f"{re.escape(name)}.*{reason}"):
        open_items(source, "train", on_error="raise")


def test_unbalanced_shard_braces_are_refused():
    from fsq.data.datasets import open_items

    with pytest.raises(ValueError, match="unbalanced braces in the shard pattern"):
        open_items("wds:/data/train-{0000..0002.tar", "train")


def test_brace_expansion_follows_webdataset():
    from fsq.data.shard_urls import expand_braces

    assert expand_braces("s-{0000..0002}.tar") == ["s-0000.tar", "s-0001.tar", "s-0002.tar"]
    assert expand_braces("{a,b{1..2}}-{09..10}") == ["a-09", "a-10", "b1-09", "b1-10", "b2-09", "b2-10"]
    assert expand_braces("{5..1..2}{x}") == ["5{x}", "3{x}", "1{x}"]  # a step, and literal braces kept
    braceexpand = pytest.importorskip("braceexpand")
    for pattern in ("s-{0000..0002}.tar", "{a,b{1..2}}-{09..10}", "x{1,2}{,y}", "{-2..2}", "{a..c}", "{x}"):
        assert expand_braces(pattern) == list(braceexpand.braceexpand(pattern)), pattern


# ---- the skip log: any file name round-trips, each skip is said once ------------------------------------------
def test_skip_log_keeps_any_file_name_and_warns_once(tmp_path, caplog):
    import json

    from fsq.data.datasets import open_items
    from fsq.data.loader import StepLoader, iterate_batches
    from fsq.data.transforms import ItemTransform
    from fsq.stages.tokenizer import SKIPPED, write_skipped

    _good(tmp_path / "in")
    odd = ["bad\nfile.png", "tab\tname.png", "quote\"'\\.png"]
    for name in odd:
        (tmp_path / "in" / name).write_bytes(b"not an image")
    items = open_items(str(tmp_path / "in"), "all")
    with caplog.at_level("WARNING"):
        train = StepLoader(items, ItemTransform("random", 4), global_batch=4, seed=0, stop=1, workers=1)
        train.batch(0)  # training (in a worker), then evaluation twice: three loaders meet the same files
        for _ in range(2):
            list(iterate_batches(items, ItemTransform("center", 4), range(len(items)), 2))
    assert sorted(train.skipped) == sorted(odd)
    warnings = [r.getMessage() for r in caplog.records if "skipped undecodable image" in r.getMessage()]
    assert len(warnings) == len(odd) and all(sum(repr(n) in w for w in warnings) == 1 for n in odd)
    write_skipped(tmp_path, "all", [], train.skipped)
    logged = json.loads((tmp_path / SKIPPED).read_text())["skipped"]
    assert sorted(entry["path"] for entry in logged) == sorted(odd)
