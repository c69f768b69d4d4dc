"""No stage name is spelled outside its registry entry: the stage's schema module (``fsq/config/<stage>.py``, whose
``stage`` field names it) and its stage module (``fsq/stages/<stage>.py``, which registers it). Everything else
(CLI choices, training, evaluation, export, configs, studies) asks the registry or the schema.

The check reads every source file with ``ast`` and flags a stage name where it is used as one: compared with
something that mentions ``stage``, given as ``stage`` (dict key, keyword, ``Literal``), passed to a function that
takes a stage, used to index the registries, or listed in a table of stage names (a list, tuple, set or dict whose
string items are all stage names: hand-written ``choices`` or per-stage tables). The same words with another
meaning (a folder called ``tokenizer``, the VQ recipes ``maskgit`` and ``uvim`` named after their codebases, the
study kinds) are not stage names and pass.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import fsq
import fsq.stages

PACKAGE = Path(fsq.__file__).parent
TAKES_A_STAGE = {"config_path", "resolve_config", "resolve_configs", "copy_config", "schema_for", "get_stage"}
REGISTRIES = {"SCHEMAS", "STAGES"}


def _is_name(node: ast.AST, names: set[str]) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names


def _callee(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _a_table(items: list[ast.expr | None], names: set[str]) -> bool:
    strings = [i for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)]
    return len(strings) >= 2 and all(_is_name(i, names) for i in strings)


def stage_name_uses(source: str, names: set[str]) -> list[tuple[int, str]]:
    """(line, what) of every use of a stage name as a stage name in ``source``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(_is_name(o, names) for o in operands) and "stage" in ast.unparse(node).lower():
                found.append((node.lineno, f"compared with a stage: {ast.unparse(node)}"))
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == "stage" and _is_name(value, names):
                    found.append((node.lineno, f'"stage": {ast.unparse(value)}'))
            if _a_table(list(node.keys), names):
                found.append((node.lineno, "a dict keyed by stage names"))
        elif isinstance(node, (ast.List, ast.Tuple, ast.Set)) and _a_table(list(node.elts), names):
            found.append((node.lineno, f"a table of stage names: {ast.unparse(node)}"))
        elif isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == "stage" and _is_name(keyword.value, names):
                    found.append((node.lineno, f"stage={ast.unparse(keyword.value)}"))
            if _callee(node) in TAKES_A_STAGE and any(_is_name(a, names) for a in node.args):
                found.append((node.lineno, f"passed as a stage: {ast.unparse(node)}"))
        elif isinstance(node, ast.Subscript) and _is_name(node.slice, names):
            value = ast.unparse(node.value)
            if value.split(".")[-1] in REGISTRIES | {"Literal"}:
                found.append((node.lineno, f"{value}[...]"))
    return found


def registry_entries() -> set[Path]:
    """The files of every registered stage's entry: its schema's module and the module that builds it."""
    files = set()
    for stage in fsq.stages.STAGES.values():
        files.add(Path(inspect.getfile(stage.schema)).resolve())
        files.add(Path(inspect.getfile(stage.phases)).resolve())
    return files


def test_no_stage_name_outside_its_registry_entry():
    names = set(fsq.stages.STAGES)
    entries = registry_entries()
    assert len(entries) == 2 * len(names) and {"tokenizer", "maskgit", "uvim"} <= names
    spelled = [
        f"{path.relative_to(PACKAGE)}:{line}: {what}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.resolve() not in entries
        for line, what in stage_name_uses(path.read_text(), names)
    ]
    assert not spelled, "stage names spelled outside their registry entry:\n" + "\n".join(spelled)


def test_the_check_finds_each_way_of_spelling_a_stage():
    names = {"tokenizer", "maskgit", "uvim"}
    flagged = {
        'if cfg.stage == "tokenizer": pass': "compared",
        'ok = run.get("stage") != "maskgit"': "compared",
        'run = {"name": "a", "stage": "tokenizer"}': '"stage"',
        'USE = {"tokenizer": 1, "maskgit": 2}': "dict keyed",
        'p.add_argument("stage", choices=["tokenizer", "maskgit", "uvim"])': "table",
        'load(path, stage="uvim")': "stage=",
        'config_path(path, "uvim")': "passed as a stage",
        'schema = SCHEMAS["maskgit"]': "SCHEMAS",
        'stage: Literal["uvim"] = "uvim"': "Literal",
    }
    for source, what in flagged.items():
        uses = stage_name_uses(source, names)
        assert uses and what in uses[0][1], (source, uses)
    other_meanings = [
        'tokenizer = Tokenizer.from_pretrained(directory / "tokenizer")',
        'recipe: Literal["maskgit", "maskgit_noentropy", "uvim", "uvim_nosplit"] = "maskgit"',
        'study.add_argument("kind", choices=["codebook-size", "levels", "maskgit", "uvim"])',
        'push_bundle(save, repo_id, what="tokenizer")',
        'QuantizerConfig(levels=[7, 5, 5, 5, 5], recipe="uvim")',
    ]
    for source in other_meanings:
        assert stage_name_uses(source, names) == [], source
