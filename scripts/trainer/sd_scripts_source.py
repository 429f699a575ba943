"""What sd-scripts' own source says: the modules train_network.py imports, the flags it defines, the dataset keys.

Pure: each function reads source text (`required_modules` through the reader it is given).
Which modules train_network.py needs is read from sd-scripts' own source: every module-level
import of train_network.py and of the local modules it reaches (library/, networks/), outside
`try` blocks, plus the function-level imports of optimizers the seed run had to install by hand
(`OPTIONAL_WANTED`), plus `accelerate` (the launcher) and `torchvision` (imported at start-up
though requirements.txt lists neither it nor torch). Module names map to pip names through
`setup_plan.PIP_NAMES` (lion_pytorch -> lion-pytorch, prodigyplus -> prodigy-plus-schedule-free).
"""
from __future__ import annotations

import ast
import re
import sys
from collections.abc import Callable, Iterable

# Function-level imports worth installing up front: the optimizers the seed run lacked.
OPTIONAL_WANTED = {"lion_pytorch", "prodigyplus", "schedulefree", "pytorch_optimizer", "prodigyopt",
                   "imagesize", "rich", "sentencepiece", "altair"}
ALWAYS = ("accelerate",)


def _imports(tree: ast.Module) -> tuple[list[tuple[str, int]], list[str]]:
    """(module-level imports as (name, level), function-level top names), skipping try blocks."""
    top: list[tuple[str, int]] = []
    nested: list[str] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Try):
                continue
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, True)
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    (nested.append(alias.name.split(".")[0]) if in_function else top.append((alias.name, 0)))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if in_function:
                    if child.level == 0:
                        nested.append(base.split(".")[0])
                else:
                    top.append((base, child.level))
                    for alias in child.names:  # `from library import train_util` imports a module
                        top.append((f"{base}.{alias.name}" if base else alias.name, child.level))
            else:
                visit(child, in_function)

    visit(tree, False)
    return top, nested


def required_modules(read: Callable[[str], str | None], local: Iterable[str],
                     entry: str = "train_network") -> list[str]:
    """Third-party top-level modules the entry script needs. `read("library.train_util")` returns
    the source of that local module (a .py file or a package __init__) or None when it is not local."""
    local = set(local)
    stdlib = set(sys.stdlib_module_names)
    needed: set[str] = set(ALWAYS)
    seen: set[str] = set()
    queue = [entry]
    while queue:
        module = queue.pop()
        if module in seen:
            continue
        seen.add(module)
        source = read(module)
        if source is None:
            continue
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        top, nested = _imports(tree)
        for name, level in top:
            if level:  # relative imports are always local: follow them, never install them
                package = module.rsplit(".", level)[0] if module.count(".") >= level else ""
                if package:
                    queue.append(f"{package}.{name}" if name else package)
                continue
            head = name.split(".")[0]
            if not head or head in stdlib:
                continue
            if head in local:
                queue.append(name)
                parts = name.split(".")
                queue.extend(".".join(parts[:i]) for i in range(1, len(parts)))
            else:
                needed.add(head)
        needed.update(n for n in nested if n in OPTIONAL_WANTED)
    if "torch" in needed:
        needed.add("torchvision")
    return sorted(needed)


ADD_ARGUMENT = re.compile(r"""add_argument\(\s*((?:["']--?[\w-]+["']\s*[,)]\s*)+)""")
OPTION = re.compile(r"""["']--([\w-]+)["']""")
SCHEMA_BLOCK = re.compile(r"\w+_SCHEMA\s*=\s*\{(.*?)\n\s*\}", re.DOTALL)
SCHEMA_KEY = re.compile(r"""(?:Required\(\s*)?["'](\w+)["']\s*\)?\s*:""")


def defined_flags(sources: Iterable[str]) -> set[str]:
    """Flag names (without `--`) defined by textual `parser.add_argument("--flag", ...)` calls."""
    found: set[str] = set()
    for text in sources:
        for match in ADD_ARGUMENT.finditer(text):
            found.update(OPTION.findall(match.group(1)))
    return found


def schema_keys(text: str) -> set[str]:
    """Keys of the `*_SCHEMA = {...}` dicts in sd-scripts' library/config_util.py."""
    return {key for block in SCHEMA_BLOCK.findall(text) for key in SCHEMA_KEY.findall(block)}


KIND_PATTERNS = (("bool", re.compile(r"""action\s*=\s*["']store_(?:true|false)["']""")),
                 ("list", re.compile(r"\bnargs\s*=")),
                 ("int", re.compile(r"\btype\s*=\s*int\b")),
                 ("number", re.compile(r"\btype\s*=\s*float\b")))


def defined_flag_kinds(sources: Iterable[str]) -> dict[str, str]:
    """Flag name -> the value it takes ("bool", "list", "int", "number" or "str"), read from the text of
    each `add_argument(...)` call (up to the next one): store_true is bool, nargs a list, type=int/float."""
    kinds: dict[str, str] = {}
    for text in sources:
        matches = list(ADD_ARGUMENT.finditer(text))
        for index, match in enumerate(matches):
            end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
            call = text[match.end():min(end, match.end() + 2000)]
            kind = next((name for name, pattern in KIND_PATTERNS if pattern.search(call)), "str")
            for flag in OPTION.findall(match.group(1)):
                kinds.setdefault(flag, kind)
    return kinds
