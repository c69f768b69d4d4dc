"""Import rules: the import graph of ``fsq`` (function-level imports included) has no cycle; evaluation never
reaches training; tasks and models reach neither; the library subpackages depend on torch alone (quantizers may
also import triton, lazily); configs, run-dir layout and reports import no torch."""

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


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """``fsq`` module -> the ``fsq`` modules it imports anywhere in its file (``from a import b``: ``a.b`` when b
    is a module), relative imports resolved."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            edges.update(t for t in targets if t in modules and t != name)
        graph[name] = edges
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _in(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_no_import_cycle():
    assert _cycle(import_graph()) is None, " -> ".join(_cycle(import_graph()) or [])


def test_the_graph_sees_function_level_and_relative_imports(tmp_path):
    """The rules below are only as good as the graph: a known function-level import must be in it."""
    graph = import_graph()
    assert "fsq.app" in graph["fsq.studies.codebook"]  # imported inside run_study (torch-free reports)
    assert {"fsq.stages.tokenizer", "fsq.stages.maskgit", "fsq.stages.uvim"} <= graph["fsq.stages"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_layers_of_the_application():
    graph = import_graph()
    rules = [  # (modules under, packages they must not reach, even indirectly)
        ("fsq.evaluation", ["fsq.training", "fsq.app", "fsq.studies", "fsq.cli"]),
        ("fsq.training", ["fsq.evaluation", "fsq.app", "fsq.studies", "fsq.cli"]),
        ("fsq.stages", ["fsq.training", "fsq.evaluation", "fsq.inference", "fsq.app", "fsq.studies"]),
        ("fsq.inference", ["fsq.training", "fsq.evaluation", "fsq.app", "fsq.studies"]),
        ("fsq.tasks", ["fsq.training", "fsq.evaluation", "fsq.stages", "fsq.app"]),
        ("fsq.models", ["fsq.training", "fsq.evaluation", "fsq.stages", "fsq.app"]),
        ("fsq.metrics", ["fsq.training", "fsq.evaluation", "fsq.stages", "fsq.tasks", "fsq.app"]),
    ]
    broken = []
    for package, banned in rules:
        for module in (m for m in graph if _in(m, package)):
            for target in _reachable(graph, module):
                if any(_in(target, b) for b in banned):
                    broken.append(f"{module} reaches {target}")
    assert not broken, "\n".join(sorted(broken))


def test_config_rundir_and_reports_import_no_torch():
    """``fsq config`` and ``fsq report`` work without torch: configs, the run-dir layout and every study report;
    the stage names (CLI choices) and the built-in stages' schemas come from the torch-free schema registry."""
    import subprocess

    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import fsq.config, fsq.rundir, fsq.io, fsq.studies, fsq.studies.codebook, fsq.studies.maskgit\n"
        "import fsq.studies.uvim, fsq.studies.paired, fsq.studies.readme\n"
        "from fsq.cli import main\n"
        "assert fsq.config.stage_names()[:3] == ['tokenizer', 'maskgit', 'uvim'], fsq.config.stage_names()\n"
        "assert main(['config']) == 0 and main(['config', '--schema', 'maskgit']) == 0\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def _ref_modules(part: str) -> dict[str, set[str]]:
    """Stage name -> the modules its ``part`` references (``"module:attribute"``), for the built-in stages."""
    import fsq.stages

    found: dict[str, set[str]] = {}
    for name, stage in fsq.stages.STAGES.items():
        ref = getattr(stage, part)
        assert isinstance(ref, str), f"built-in stage {name!r}: {part} should be a reference (it lives above stages)"
        found[name] = {ref.partition(":")[0]}
    return found


def test_stage_references_resolve_into_the_layer_above_stages():
    """A built-in stage names its evaluation and its export as references (``fsq.stages`` must not import the layers
    above it): each resolves, lies in its layer, and the edges the application adds when it resolves them (``fsq.app``
    to the evaluations, ``fsq.inference.export`` to the bundles) keep the graph acyclic and the layers intact."""
    import fsq.stages

    for stage in fsq.stages.STAGES.values():
        assert callable(stage.evaluator()) and callable(stage.exporter())
    evaluations, exports = _ref_modules("evaluate"), _ref_modules("export")
    assert all(_in(m, "fsq.evaluation") for ms in evaluations.values() for m in ms), evaluations
    assert all(_in(m, "fsq.inference") for ms in exports.values() for m in ms), exports
    graph = import_graph()
    graph["fsq.app"] |= set().union(*evaluations.values())
    graph["fsq.inference.export"] |= set().union(*exports.values()) - {"fsq.inference.export"}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])
    for module in (m for m in graph if _in(m, "fsq.inference")):
        assert not any(_in(t, "fsq.evaluation") or _in(t, "fsq.training") for t in _reachable(graph, module)), module
