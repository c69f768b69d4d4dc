"""The built-in safetensors reader (a core install has no ``safetensors`` package) reads what the package writes,
bit for bit, and refuses what is not a safetensors file; ``Tokenizer.from_pretrained`` of a shipped model works
with the package made unimportable."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from fsq.weights import read_safetensors


def test_reads_what_safetensors_writes(tmp_path):
    tensors = {
        "f32": torch.randn(3, 4),
        "bf16": torch.randn(5).bfloat16(),
        "i64": torch.arange(6).view(2, 3),
        "u8": torch.tensor([0, 255], dtype=torch.uint8),
        "flag": torch.tensor([True, False]),
        "empty": torch.zeros(0, 2),
        "scalar": torch.tensor(1.5, dtype=torch.float64),
    }
    save_file(tensors, str(tmp_path / "w.safetensors"), metadata={"format": "pt"})
    loaded = read_safetensors(tmp_path / "w.safetensors")
    assert sorted(loaded) == sorted(tensors)
    for name, tensor in tensors.items():
        assert loaded[name].dtype == tensor.dtype and torch.equal(loaded[name], tensor), name


@pytest.mark.parametrize(
    "content", [b"", b"\x80\x04\x95pickle", (10**9).to_bytes(8, "little") + b"{}", (2).to_bytes(8, "little") + b"{x"]
)
def test_refuses_what_is_not_safetensors(tmp_path, content):
    (tmp_path / "bad.safetensors").write_bytes(content)
    with pytest.raises(ValueError, match="not a safetensors file"):
        read_safetensors(tmp_path / "bad.safetensors")


def test_offsets_that_do_not_fit_are_refused(tmp_path):
    save_file({"x": torch.zeros(4)}, str(tmp_path / "w.safetensors"))
    data = bytearray((tmp_path / "w.safetensors").read_bytes())
    (tmp_path / "w.safetensors").write_bytes(bytes(data[:-4]))  # truncated
    with pytest.raises(ValueError, match="do not fit"):
        read_safetensors(tmp_path / "w.safetensors")


def test_shipped_tokenizer_loads_without_the_safetensors_package():
    code = (
        "import sys\n"
        "sys.modules['safetensors'] = None; sys.modules['safetensors.torch'] = None\n"
        "import torch\n"
        "from fsq import Tokenizer\n"
        "t = Tokenizer.from_pretrained('mnist-fsq')\n"
        "x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))\n"
        "print(t.tokenize(x).sum().item())\n"
    )
    without = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert without.returncode == 0, without.stderr[-2000:]
    from fsq import Tokenizer

    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert int(without.stdout.strip()) == Tokenizer.from_pretrained("mnist-fsq").tokenize(x).sum().item()
