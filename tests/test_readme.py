"""The README's API example runs as printed."""

from __future__ import annotations

import re
from pathlib import Path


def test_readme_quantizer_example_runs(capsys):
    text = (Path(__file__).parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python example"
    exec(compile(blocks[0], "README.md", "exec"), {})
    assert "usage_fraction" in capsys.readouterr().out
