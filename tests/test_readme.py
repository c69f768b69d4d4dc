"""The README: its API example runs as printed; its generated tables and claims match the published results."""

from __future__ import annotations

import re
from pathlib import Path


def test_readme_quantizer_example_runs(capsys):
    text = (Path(__file__).parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python example"
    exec(compile(blocks[0], "README.md", "exec"), {})
    assert "usage_fraction" in capsys.readouterr().out


def test_readme_tables_are_generated_from_the_published_results():
    """Every generated block of the README equals what ``fsq readme`` renders from its results file."""
    from fsq.studies.readme import update

    assert update(Path(__file__).parents[1] / "README.md", check=True) == []


def test_readme_blocks_are_rewritten_and_stale_ones_found(tmp_path):
    import shutil

    from fsq.studies.readme import update

    root = Path(__file__).parents[1]
    (tmp_path / "docs" / "results").mkdir(parents=True)
    shutil.copy(root / "docs/results/demo.json", tmp_path / "docs/results/demo.json")
    page = tmp_path / "page.md"
    page.write_text("x\n<!-- fsq:table docs/results/demo.json -->\nold\n<!-- /fsq -->\ny\n")
    assert update(page, check=True) == ["table docs/results/demo.json"] and "old" in page.read_text()
    assert update(page) == ["table docs/results/demo.json"]
    text = page.read_text()
    assert "| FSQ | 64 | 8x8 |" in text and "old" not in text and text.startswith("x\n") and text.endswith("y\n")
    assert update(page, check=True) == []


def test_readme_tokenizer_numbers_come_from_the_shipped_card():
    """The README's numbers of the shipped tokenizer are a generated block of the eval.json its card shows."""
    text = (Path(__file__).parents[1] / "README.md").read_text()
    assert "<!-- fsq:card src/fsq/pretrained/mnist-fsq/eval.json -->" in text
    import json

    psnr = json.loads((Path(__file__).parents[1] / "src/fsq/pretrained/mnist-fsq/eval.json").read_text())["psnr"]
    card = (Path(__file__).parents[1] / "src/fsq/pretrained/mnist-fsq/README.md").read_text()
    assert f"| psnr | {psnr:.4g} |" in card and f"| {psnr:.2f} |" in text


def test_the_maintainer_readme_command_is_not_in_help(capsys):
    import pytest

    from fsq.cli import main

    with pytest.raises(SystemExit):
        main(["--help"])
    listing = capsys.readouterr().out
    assert "readme" not in listing and "train" in listing
    assert main(["readme", "--check", str(Path(__file__).parents[1] / "README.md")]) == 0  # still there


def test_readme_video_tokenizer_numbers_come_from_the_shipped_card():
    """The video bundle's README row is generated from its eval.json: per-frame PSNR beside the naive codec's."""
    import json

    from fsq.studies.readme import card_table

    path = Path(__file__).parents[1] / "src/fsq/pretrained/moving-mnist-fsq/eval.json"
    evaluation = json.loads(path.read_text())
    row = card_table(evaluation, "moving-mnist-fsq")
    assert f"| {evaluation['psnr']:.2f} |" in row and f"| {evaluation['naive']['psnr']:.2f} |" in row
    assert "(256 clips)" in row and "naive codec PSNR dB (equal bits)" in row
    text = (Path(__file__).parents[1] / "README.md").read_text()
    assert f"<!-- fsq:card src/fsq/pretrained/moving-mnist-fsq/eval.json -->\n{row}\n<!-- /fsq -->" in text


def test_readme_photo_tokenizer_numbers_come_from_the_shipped_card():
    """The photo bundle's README block is generated from its eval.json: the tokenizer, then the classical codecs at
    its bits on the same crops, and the margin over the naive codec."""
    import json

    from fsq.studies.readme import card_table

    path = Path(__file__).parents[1] / "src/fsq/pretrained/photos64-fsq/eval.json"
    evaluation = json.loads(path.read_text())
    block = card_table(evaluation, "photos64-fsq")
    naive = evaluation["anchors"]["naive"]["psnr"]
    assert f"| {evaluation['psnr']:.2f} |" in block and f"| {naive:.2f} |" in block and "| WebP, whole file |" in block
    assert f"naive codec at equal bits: {evaluation['psnr'] - naive:+.2f} dB on the same 2,000" in block
    text = (Path(__file__).parents[1] / "README.md").read_text()
    assert f"<!-- fsq:card src/fsq/pretrained/photos64-fsq/eval.json -->\n{block}\n<!-- /fsq -->" in text


def test_a_trials_block_renders_a_studys_tuning_trials(tmp_path):
    """``<!-- fsq:trials FILE -->``: the learning-rate trials a study published (the video study), the rate chosen
    on val marked; a study without trials is refused by name."""
    import json

    import pytest

    from fsq.studies.readme import render

    trials = [
        {"name": f"video_fsq_lr{lr:g}_s0", "method": "FSQ", "seed": 0, "lr": lr, "val_psnr": v, "psnr": p}
        for lr, v, p in ((0.0015, 26.0, 26.5), (0.003, 27.0, 27.5))
    ]
    path = tmp_path / "video.json"
    path.write_text(json.dumps({"study": {"kind": "video", "trials": trials}, "results": []}))
    table = render("trials", path)
    assert "| FSQ | 0.003 | 1 | 27.00 | 27.50 | yes |" in table and "| FSQ | 0.0015 | 1 | 26.00 | 26.50 |  |" in table
    with pytest.raises(ValueError, match="the codebook-size study has no tuning trials"):
        render("trials", Path(__file__).parents[1] / "docs/results/demo.json")
