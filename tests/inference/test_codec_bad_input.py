"""Bad input to fsq encode / decode: each is one clear error naming the problem (the CLI: one ``fsq: error`` line,
exit status 2), never a traceback or a silently wrong file."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import fsq
from fsq.cli import main
from fsq.data.signal_files import write_wav
from fsq.inference.codes import CodesFileError, read_codes
from fsq.models import Tokenizer, TokenizerSpec

SMALL = {"filters": 8, "num_groups": 4, "channel_multipliers": [1, 2]}
SPECS = {
    "audio": TokenizerSpec(dims=1, shape=[32], downsample=[[4]], **SMALL),
    "video": TokenizerSpec(dims=3, shape=[5, 8, 8], downsample=[[4, 2, 2]], causal=True, **SMALL),
    "image": TokenizerSpec(image_size=8, in_channels=1, **SMALL),
}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    out = {}
    for name, spec in SPECS.items():
        torch.manual_seed(0)
        data = {"source": {"audio": "tones", "video": "blobs", "image": "mnist"}[name]}
        Tokenizer(spec).save_pretrained(root / name, metadata={"config": {"stage": "tokenizer", "data": data}})
        out[name] = root / name
    torch.manual_seed(1)  # the same audio model, other weights
    Tokenizer(SPECS["audio"]).save_pretrained(root / "other")
    out["other"] = root / "other"
    return out


def _fails(args: list[str], capsys, *words: str) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("fsq: error: ") and len(err.strip().splitlines()) == 1, err
    for word in words:
        assert word in err, err
    return err


def test_a_file_of_the_wrong_kind_for_the_model(models, tmp_path, capsys):
    write_wav(tmp_path / "a.wav", torch.full((1, 64), 0.5), 8000)
    np.save(tmp_path / "image.npy", np.zeros((1, 8, 8), np.uint8))
    out = str(tmp_path / "c.npz")
    _fails(["encode", str(models["image"]), str(tmp_path / "a.wav"), "--out", out], capsys, "a.wav is an audio file")
    _fails(["encode", str(models["video"]), str(tmp_path / "a.wav"), "--out", out], capsys, "video model takes")
    _fails(["encode", str(models["audio"]), str(tmp_path / "image.npy"), "--out", out], capsys, "(1, 8, 8)", "(C, T)")
    _fails(["encode", str(models["video"]), str(tmp_path / "image.npy"), "--out", out], capsys, "(C, T, H, W)")
    assert not (tmp_path / "c.npz").exists()


def test_sizes_channels_and_rates_the_model_does_not_take(models, tmp_path, capsys):
    out = str(tmp_path / "c.npz")
    np.save(tmp_path / "big.npy", np.zeros((1, 9, 16, 16), np.uint8))
    _fails(["encode", str(models["video"]), str(tmp_path / "big.npy"), "--out", out], capsys, "16x16", "exactly 8x8")
    np.save(tmp_path / "img.npy", np.zeros((1, 10, 8), np.uint8))
    _fails(["encode", str(models["image"]), str(tmp_path / "img.npy"), "--out", out], capsys, "10x8", "exactly 8x8")
    write_wav(tmp_path / "stereo.wav", torch.full((2, 64), 0.5), 8000)
    _fails(["encode", str(models["audio"]), str(tmp_path / "stereo.wav"), "--out", out], capsys, "2 channel", "mono")
    _fails(
        ["encode", str(models["audio"]), str(tmp_path / "stereo.wav"), "--out", out, "--rate", "16000"], capsys, "rate"
    )
    np.save(tmp_path / "minus.npy", np.linspace(-1, 1, 64, dtype=np.float32)[None])
    _fails(["encode", str(models["audio"]), str(tmp_path / "minus.npy"), "--out", out], capsys, "x / 2 + 0.5")
    (tmp_path / "clip.mp4").write_bytes(b"\x00" * 64)
    _fails(["encode", str(models["video"]), str(tmp_path / "clip.mp4"), "--out", out], capsys, "not a readable video")


def test_video_files_without_the_decoder_name_the_extra(models, tmp_path, capsys, monkeypatch):
    from fsq.data import media

    monkeypatch.setattr(media, "video_codec_available", lambda: False)
    (tmp_path / "clip.mkv").write_bytes(b"\x00" * 64)
    out = str(tmp_path / "c.npz")
    _fails(["encode", str(models["video"]), str(tmp_path / "clip.mkv"), "--out", out], capsys, "fsq-toolkit[video]")
    fsq.encode(models["video"], torch.zeros(1, 5, 8, 8, dtype=torch.uint8), out=out)
    _fails(["decode", str(models["video"]), out, "--out", str(tmp_path / "x.mp4")], capsys, "fsq-toolkit[video]")


def test_empty_truncated_and_non_audio_wav_files(models, tmp_path, capsys):
    write_wav(tmp_path / "a.wav", torch.full((1, 1000), 0.5), 8000)
    whole = (tmp_path / "a.wav").read_bytes()
    (tmp_path / "header.wav").write_bytes(whole[:30])
    (tmp_path / "cut.wav").write_bytes(whole[:200])
    (tmp_path / "text.wav").write_bytes(b"not a wave file " * 8)
    write_wav(tmp_path / "empty.wav", torch.full((1, 0), 0.5), 8000)
    model, out = str(models["audio"]), str(tmp_path / "c.npz")
    _fails(["encode", model, str(tmp_path / "header.wav"), "--out", out], capsys, "header.wav: not a readable audio")
    _fails(["encode", model, str(tmp_path / "cut.wav"), "--out", out], capsys, "declares 1000 samples, it holds 78")
    _fails(["encode", model, str(tmp_path / "text.wav"), "--out", out], capsys, "text.wav: not a readable audio")
    _fails(["encode", model, str(tmp_path / "empty.wav"), "--out", out], capsys, "an empty audio signal")
    assert not (tmp_path / "c.npz").exists()


def test_nan_input_is_refused(models, tmp_path, capsys):
    audio = np.full((1, 40), 0.5, np.float32)
    audio[0, 7] = np.nan
    np.save(tmp_path / "nan.npy", audio)
    _fails(
        ["encode", str(models["audio"]), str(tmp_path / "nan.npy"), "--out", str(tmp_path / "c.npz")],
        capsys,
        "1 of 40 values are NaN",
    )
    with pytest.raises(ValueError, match="NaN or infinite"):
        fsq.encode(models["image"], torch.full((1, 8, 8), float("inf")))


@pytest.fixture
def codes_file(models, tmp_path):
    fsq.encode(models["audio"], torch.rand(1, 70), out=tmp_path / "good.npz")
    return tmp_path / "good.npz"


def _rewrite(path: Path, target: Path, codes=None, header=None) -> Path:
    with np.load(path) as data:
        arrays = {"codes": data["codes"], "header": data["header"]}
    if codes is not None:
        arrays["codes"] = codes(arrays["codes"])
    if header is not None:
        arrays["header"] = np.array(json.dumps(header(json.loads(str(arrays["header"])))))
    np.savez(target, **arrays)
    return target


def test_corrupt_codes_files(models, codes_file, tmp_path, capsys):
    model = str(models["audio"])
    out = str(tmp_path / "out.wav")
    whole = codes_file.read_bytes()
    (tmp_path / "cut.npz").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "noise.npz").write_bytes(bytes(range(256)) * 4)
    np.save(tmp_path / "array.npy", np.zeros(3))
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32)
    np.savez(tmp_path / "pickled.npz", codes=np.array([{"a": 1}], dtype=object), header=np.array("{}"))
    cases = {
        "cut.npz": "not a readable fsq codes file",
        "noise.npz": "not an .npz archive",
        "image.png": "not an .npz archive",
        "array.npy": "a single .npy array",
        "pickled.npz": "not a readable fsq codes file",  # object arrays are never unpickled
    }
    for name, words in cases.items():
        _fails(["decode", model, str(tmp_path / name), "--out", out], capsys, name, words)
    edits = {
        "no_header": ({}, "no header array"),
        "bad_json": ({"header": lambda h: h}, "not valid JSON"),
        "shape": ({"codes": lambda c: c[:, :-1]}, "the header says"),
        "range": ({"codes": lambda c: np.full_like(c, 999) + 1}, "outside the codebook"),
        "floats": ({"codes": lambda c: c.astype(np.float32)}, "codes must be integers"),
        "format": ({"header": lambda h: {**h, "format": "other"}}, "names the format 'other'"),
        "missing": ({"header": lambda h: {k: v for k, v in h.items() if k != "grid_shape"}}, "lacks 'grid_shape'"),
        "grid": (
            {"header": lambda h: {**h, "grid_shape": [4, 2]}, "codes": lambda c: c.reshape(-1, 4, 2)},
            "grid_shape",
        ),
    }
    for name, (edit, words) in edits.items():
        target = tmp_path / f"{name}.npz"
        if name == "no_header":
            with np.load(codes_file) as data:
                np.savez(target, codes=data["codes"])
        elif name == "bad_json":
            with np.load(codes_file) as data:
                np.savez(target, codes=data["codes"], header=np.array("{not json"))
        else:
            _rewrite(codes_file, target, **edit)
        _fails(["decode", model, str(target), "--out", out], capsys, words)
    assert not Path(out).exists()
    with pytest.raises(CodesFileError, match="not a readable"):
        read_codes(io.BytesIO(b"PK\x03\x04" + b"\x00" * 40))
    assert zipfile.is_zipfile(codes_file)  # the good one reads
    assert read_codes(codes_file).header["chunks"] == 3


def test_codes_of_another_model_are_refused(models, codes_file, tmp_path, capsys):
    err = _fails(["decode", str(models["other"]), str(codes_file), "--out", str(tmp_path / "x.wav")], capsys)
    assert "was encoded by another model" in err and read_codes(codes_file).header["fingerprint"] in err
    _fails(["decode", str(models["video"]), str(codes_file), "--out", str(tmp_path / "x.npy")], capsys, "another model")
    _fails(["decode", str(models["audio"]), str(codes_file), "--out", str(tmp_path / "x.png")], capsys, ".wav, .npy")
    _fails(
        ["decode", str(models["audio"]), str(tmp_path / "none.npz"), "--out", str(tmp_path / "x.wav")],
        capsys,
        "no such codes file",
    )
    _fails(
        ["encode", "runs/nothing", str(codes_file), "--out", str(tmp_path / "c.npz")], capsys, "no run dir or bundle"
    )
