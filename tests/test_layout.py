"""The layout the README draws is the one on disk, and the import graph keeps verbs on top.

Verbs are the modules directly in `scripts/`; libraries live in one subpackage per outside world.
No library imports a verb, and the libraries import each other only downwards in this order:
common < imaging < table < trainer < comfyui < evaluation.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.paths import ROOT

SCRIPTS = ROOT / "scripts"
LAYERS = ("common", "imaging", "table", "trainer", "comfyui", "evaluation")


def imported_scripts_modules(path: Path) -> set[str]:
    """Dotted `scripts.*` names a file imports (`from scripts import x` counts as `scripts.x`)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "scripts":
            if node.module == "scripts" or (node.module.count(".") == 1
                                            and (SCRIPTS / node.module.split(".")[1]).is_dir()):
                names |= {f"{node.module}.{alias.name}" for alias in node.names}
            else:
                names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names if alias.name.split(".")[0] == "scripts"}
    return names


def verbs() -> set[str]:
    return {p.stem for p in SCRIPTS.glob("*.py") if p.stem != "__init__"}


def test_no_library_imports_a_verb_and_layers_point_down() -> None:
    problems = []
    for package in SCRIPTS.iterdir():
        if not package.is_dir() or package.name == "__pycache__":
            continue
        assert package.name in LAYERS, f"scripts/{package.name}/ is not in the README's layout"
        for module in package.rglob("*.py"):
            for name in imported_scripts_modules(module):
                parts = name.split(".")
                if parts[1] in verbs():
                    problems.append(f"{module.relative_to(ROOT)} imports the verb {name}")
                elif parts[1] in LAYERS and LAYERS.index(parts[1]) > LAYERS.index(package.name):
                    problems.append(f"{module.relative_to(ROOT)} imports {name}, a layer above it")
    assert not problems, "\n".join(problems)


def test_readme_layout_tree_matches_the_folders() -> None:
    readme = (ROOT / "README.md").read_text()
    tree = readme.split("## Layout", 1)[1].split("```")[1]
    drawn = set(re.findall(r"^\s*(scripts/\w+/)", tree, re.MULTILINE))
    on_disk = {f"scripts/{p.name}/" for p in SCRIPTS.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert drawn == on_disk
    drawn_tests = set(re.findall(r"^\s*(tests/\w+/)", tree, re.MULTILINE))
    on_disk_tests = {f"tests/{p.name}/" for p in (ROOT / "tests").iterdir()
                     if p.is_dir() and p.name != "__pycache__"}
    assert drawn_tests == on_disk_tests


def test_every_verb_is_runnable_as_a_module_with_main() -> None:
    for verb in verbs():
        tree = ast.parse((SCRIPTS / f"{verb}.py").read_text())
        functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert "main" in functions, f"scripts/{verb}.py has no main(argv)"
        assert any(isinstance(node, ast.If) and "__main__" in ast.unparse(node.test) for node in tree.body), verb
