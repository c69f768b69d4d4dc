"""One path-or-hub rule (issue 24, item 9): a local-looking path that does not exist is a clear error, never a
hub download; ``fsq eval`` of a bundle says why it takes run dirs."""

from __future__ import annotations

import pytest

from fsq import hub
from fsq.cli import main


@pytest.fixture
def no_hub(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the hub was asked")

    monkeypatch.setattr(hub, "download", refuse)


@pytest.mark.parametrize("typed", ["runs/nothing", "./nothing", "a/b/c", "nothing/", "~/nothing/x"])
def test_local_looking_paths_are_never_looked_up_on_the_hub(typed, no_hub, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an empty folder: not even runs/ exists
    assert hub.looks_local(typed)
    with pytest.raises(FileNotFoundError, match="no run dir or bundle at"):
        hub.resolve(typed)


def test_org_name_is_a_hub_id_and_a_failed_lookup_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert not hub.looks_local("someone/model")

    def offline(*args, **kwargs):
        raise ConnectionError("Failed to resolve 'huggingface.co'\nmore lines")

    monkeypatch.setattr(hub, "download", offline)
    with pytest.raises(FileNotFoundError, match=r"hub could not provide it.*ConnectionError: Failed to resolve"):
        hub.resolve("someone/model")


def test_cli_sample_of_a_missing_run_is_a_clear_error(no_hub, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["sample", "runs/nothing", "--out", "samples"]) == 2
    assert "no run dir or bundle at runs/nothing" in capsys.readouterr().err


def test_cli_eval_of_a_bundle_or_a_missing_run_says_why(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["eval", "mnist-fsq"]) == 2
    err = capsys.readouterr().err
    assert "mnist-fsq is a bundle (fsq-tokenizer), not a run dir" in err and "README.md" in err
    assert main(["eval", "runs/nothing"]) == 2
    assert "no such run dir: runs/nothing" in capsys.readouterr().err
    (tmp_path / "folder").mkdir()
    assert main(["eval", "folder"]) == 2
    assert "folder is not a run dir (no config.yaml" in capsys.readouterr().err


def test_the_tokenizer_of_a_bundle_is_its_own_folder_or_a_maskgit_bundles_tokenizer():
    root = hub.shipped_root()
    folder, config = hub.tokenizer_bundle(root / "mnist-fsq")
    assert folder == root / "mnist-fsq" and config["format"] == "fsq-tokenizer"
    folder, config = hub.tokenizer_bundle(root / "mnist-maskgit-fsq")
    assert folder == root / "mnist-maskgit-fsq" / "tokenizer" and config["format"] == "fsq-tokenizer"
    with pytest.raises(FileNotFoundError, match="not an fsq bundle"):
        hub.tokenizer_bundle(root)
