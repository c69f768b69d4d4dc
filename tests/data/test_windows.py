"""Every window of each clip as an item (``fsq.data.windows.WindowedItems``): windows side by side (or every
``hop``), their samples the clip's, labels and names from their clip, short clips skipped and listed, and a clear
error for a collection whose clip lengths are unknown before reading."""

from __future__ import annotations

import pytest
import torch

from fsq.data.items import ImageItems
from fsq.data.signals import AUDIO, SignalItems
from fsq.data.windows import WindowedItems


class _Clips(SignalItems):
    """In-memory clips of different lengths (SignalItems holds one length; this one a list)."""

    def __init__(self, clips: list[torch.Tensor], labels: list[int]) -> None:
        super().__init__(torch.zeros(len(clips), 1, 1), AUDIO, source="toy", split="train", rate=100.0)
        self.list, self.labels, self.has_labels = clips, torch.tensor(labels), True

    def read(self, index: int) -> torch.Tensor:
        return self.list[index]

    def length(self, index: int) -> int:
        return int(self.list[index].shape[1])

    def name(self, index: int) -> str:
        return f"clip{index}"


def _toy() -> _Clips:
    lengths = [250, 99, 100, 301]  # 2 windows of 100, none, 1, 3
    return _Clips([torch.arange(n, dtype=torch.float32)[None] + 1000 * k for k, n in enumerate(lengths)], [7, 8, 9, 6])


def test_windows_side_by_side_cover_every_whole_crop():
    items = WindowedItems(_toy(), 100)
    assert len(items) == 2 + 0 + 1 + 3
    expected = [(0, 0), (0, 100), (2, 0), (3, 0), (3, 100), (3, 200)]
    for index, (clip, start) in enumerate(expected):
        window = items.read(index)
        assert window.shape == (1, 100)
        assert torch.equal(window, torch.arange(start, start + 100, dtype=torch.float32)[None] + 1000 * clip)
        assert items.label(index) == [7, 8, 9, 6][clip]
    assert items.name(1) == "clip0 @ 1.00 s" and items.name(5) == "clip3 @ 2.00 s"
    assert items.skipped == [("clip1", "shorter than one window of 100 samples")]
    assert items.kind is AUDIO and items.rate == 100.0 and items.has_labels


def test_overlapping_windows_and_fingerprints():
    items = WindowedItems(_toy(), 100, hop=50)
    assert len(items) == 4 + 0 + 1 + 5  # (250 - 100) // 50 + 1 = 4; (301 - 100) // 50 + 1 = 5
    assert torch.equal(items.read(1)[0, :2], torch.tensor([50.0, 51.0]))
    assert items.fingerprint(3) != WindowedItems(_toy(), 100).fingerprint(3)  # the hop is part of it


def test_items_without_known_lengths_are_refused():
    class Unknown(ImageItems):
        source = "folder"

        def __len__(self) -> int:
            return 1

    with pytest.raises(ValueError, match="folder: its clips' lengths are not known before they are read"):
        WindowedItems(Unknown(), 100)
    with pytest.raises(ValueError, match="positive length and hop"):
        WindowedItems(_toy(), 0)


def test_an_image_tokenizer_has_no_windows(capsys, tmp_path):
    from fsq.cli import main

    assert main(["tokenize", "mnist-fsq", "--out", str(tmp_path / "tokens"), "--windows"]) == 2
    assert "mnist-fsq: windows cut clips of a time signal" in capsys.readouterr().err
    assert not (tmp_path / "tokens").exists()  # nothing written
