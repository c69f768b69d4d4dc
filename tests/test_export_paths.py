"""``fsq export`` bundles do not carry the exporting machine's folders (cards and JSON are shared)."""

from __future__ import annotations

import json

from fsq.inference.export import strip_local_paths


def test_paths_under_the_working_and_home_folders_are_rewritten(tmp_path):
    cwd, home, bundle = tmp_path / "work" / "repo", tmp_path / "home", tmp_path / "bundle"
    for folder in (cwd, home, bundle / "tokenizer"):
        folder.mkdir(parents=True)
    config = {"tokenizer": f"{cwd}/runs/ship/fsq_mnist", "cache": f"{home}/.cache/fsq/mnist", "other": "/data/x"}
    (bundle / "config.json").write_text(json.dumps(config))
    (bundle / "README.md").write_text(f"fsq train x.yaml --run-dir {cwd}/runs/a\n{cwd}-other/keep\n")
    (bundle / "tokenizer" / "config.json").write_text(json.dumps({"run": f"{cwd}/runs/b"}))
    (bundle / "model.safetensors").write_bytes(f"{cwd}/".encode())  # weights are never touched
    strip_local_paths(bundle, cwd=cwd, home=home)
    assert json.loads((bundle / "config.json").read_text()) == {
        "tokenizer": "runs/ship/fsq_mnist",
        "cache": "~/.cache/fsq/mnist",
        "other": "/data/x",
    }
    assert (bundle / "README.md").read_text() == f"fsq train x.yaml --run-dir runs/a\n{cwd}-other/keep\n"
    assert json.loads((bundle / "tokenizer" / "config.json").read_text()) == {"run": "runs/b"}
    assert (bundle / "model.safetensors").read_bytes() == f"{cwd}/".encode()


def test_shipped_bundles_name_no_local_folder():
    import re
    from pathlib import Path

    import fsq

    absolute = re.compile(r"(?<![\w.~/:])/(?:[\w.-]+/)+[\w.-]*")  # /a/b... not inside a URL, ~/..., or a/b
    assert absolute.findall("run: /x/runs/a, url https://h/a/b, cache ~/.cache/f, rel runs/a") == ["/x/runs/a"]
    for path in (Path(fsq.__file__).parent / "pretrained").rglob("*"):
        if path.suffix in (".json", ".md", ".yaml"):
            assert absolute.findall(path.read_text()) == [], path
