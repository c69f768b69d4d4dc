"""Import rules from DESIGN.md: quantizers depend on torch (and the standard library) alone, plus optional triton."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import fsq

PACKAGE = Path(fsq.__file__).parent
TORCH_ONLY = ["quantizers", "layers", "generation"]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_torch_only_subpackages():
    for sub in TORCH_ONLY:
        files = sorted((PACKAGE / sub).glob("*.py"))
        assert files
        for path in files:
            for name in _imports(path):
                top = name.split(".")[0]
                allowed = top in sys.stdlib_module_names or top in {"torch", "__future__"}
                allowed = allowed or name.startswith(f"fsq.{sub}")
                allowed = allowed or (sub == "quantizers" and top == "triton")  # optional, imported lazily
                assert allowed, f"{path.relative_to(PACKAGE)} imports {name}"


def test_report_modules_import_no_torch():
    """``fsq report`` rebuilds every study's report without torch."""
    import subprocess

    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import fsq.reporting, fsq.generation_report, fsq.uvim_report, fsq.config\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
