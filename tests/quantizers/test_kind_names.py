"""No quantizer kind is tested outside its registry entry (``fsq/quantizers/registry.py``): callers ask the section
or the registry (``section.report()``, ``describe()``, ``setting(name)``, ``family_of(q).level_digits`` ...)
instead of comparing ``kind`` with a name, listing the kinds, or testing a quantizer's class.

The check reads every source file with ``ast`` and flags: a kind name compared with anything that mentions
``kind``; a ``Literal`` or table (list, tuple, set, dict keys) of two or more kind names; ``isinstance`` /
``issubclass`` against a quantizer class outside ``fsq/quantizers/``. Config data that names the quantizer a run
trains (``{"kind": "vq", "recipe": "maskgit"}`` in a study's plan, as in a YAML file) is a setting, not a test,
and passes; so does the package's own name ``fsq`` where it means the package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import fsq
from fsq.quantizers import registry

PACKAGE = Path(fsq.__file__).parent
CLASSES = {"FSQ", "ResidualFSQ", "VQ", "LFQ", "BSQ"}


def _is_kind(node: ast.AST, names: set[str]) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names


def kind_tests(source: str, names: set[str], library: bool = False) -> list[tuple[int, str]]:
    """(line, what) of every test of a quantizer kind in ``source`` (class tests allowed when ``library``)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(_is_kind(o, names) for o in operands) and "kind" in ast.unparse(node).lower():
                found.append((node.lineno, f"compared with a kind: {ast.unparse(node)}"))
        elif isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            if sum(_is_kind(e, names) for e in node.elts) >= 2:
                found.append((node.lineno, f"a table of kinds: {ast.unparse(node)}"))
        elif isinstance(node, ast.Dict):
            if sum(_is_kind(k, names) for k in node.keys if k is not None) >= 2:
                found.append((node.lineno, "a dict keyed by kinds"))
        elif isinstance(node, ast.Call) and not library:
            callee = node.func.id if isinstance(node.func, ast.Name) else ""
            if callee in ("isinstance", "issubclass") and len(node.args) == 2:
                if {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)} & CLASSES:
                    found.append((node.lineno, f"a quantizer class test: {ast.unparse(node)}"))
    return found


def test_no_quantizer_kind_is_tested_outside_the_registry():
    names = set(registry.kinds())
    assert {"fsq", "residual_fsq", "vq", "lfq", "bsq"} <= names
    entry = Path(registry.__file__).resolve()
    spelled = [
        f"{path.relative_to(PACKAGE)}:{line}: {what}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.resolve() != entry
        for line, what in kind_tests(path.read_text(), names, library=path.parent.name in ("quantizers", "compat"))
    ]
    assert not spelled, "quantizer kinds tested outside the registry:\n" + "\n".join(spelled)


def test_the_check_finds_each_way_of_testing_a_kind():
    names = {"fsq", "vq", "lfq"}
    flagged = {
        'levels = q.levels if q.kind == "fsq" else None': "compared",
        'if quantizer["kind"] != "vq": pass': "compared",
        'kind: Literal["fsq", "vq"] = "fsq"': "table",
        'CHOICES = ("fsq", "lfq")': "table",
        'WIDTH = {"fsq": 4, "vq": 256}': "dict keyed",
        "if isinstance(model.quantizer, FSQ): pass": "class test",
        "ok = isinstance(q, (VQ, LFQ))": "class test",
    }
    for source, what in flagged.items():
        uses = kind_tests(source, names)
        assert uses and what in uses[0][1], (source, uses)
    other_meanings = [
        'QUANTIZERS = {"FSQ": {"kind": "fsq"}, "VQ": {"kind": "vq", "recipe": "maskgit"}}',
        'root = files("fsq").joinpath("pretrained")',
        'parser = argparse.ArgumentParser(prog="fsq")',
        "label = cfg.quantizer.kind.upper()",
    ]
    for source in other_meanings:
        assert kind_tests(source, names) == [], source
