"""The facts `setup` gathers about the training side, each read without changing anything: the git
superproject that lists the sd-scripts submodule, the modules sd-scripts imports, the kohya venv's
import/device probe (one subprocess), the configured base checkpoint, and the flags and dataset
keys this project emits that the checkout does not define."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from scripts.common.settings import Settings
from scripts.table.character import CharacterError, load_character
from scripts.trainer import sd_scripts_source, setup_plan
from scripts.trainer.checkout_flags import read_flag_kinds
from scripts.trainer.launch import DATASET_TOML_KEYS, emitted_flags
from scripts.trainer.setup_plan import Probe
from scripts.trainer.train_args import LOCKED_FILE, KohyaConfigError, character_args, load_locked, merge_args
from scripts.trainer.venv_probe import PROBE_SCRIPT

TRAINER_SCRIPTS = ("train_network.py", "sdxl_train_network.py")  # kohya/families/*.toml `script`
PROBE_TIMEOUT = 300


def run_git(*args: str, cwd: Path | None = None, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "GIT_TERMINAL_PROMPT": "0"}, check=False)


def find_superproject(sd_dir: Path) -> tuple[Path | None, str | None]:
    """The git repository listing `sd_dir` in its .gitmodules, and the submodule's URL."""
    parent = sd_dir.parent
    while not parent.is_dir() and parent != parent.parent:
        parent = parent.parent
    try:
        top = run_git("-C", str(parent), "rev-parse", "--show-toplevel")
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    if top.returncode != 0:
        return None, None
    root = Path(top.stdout.strip())
    if not (root / ".gitmodules").is_file():
        return None, None
    listed = run_git("config", "-f", str(root / ".gitmodules"), "--get-regexp", r"^submodule\..*\.(path|url)$")
    entries: dict[str, dict[str, str]] = {}
    for line in listed.stdout.splitlines():
        key, _, value = line.partition(" ")
        name, _, field = key[len("submodule."):].rpartition(".")
        entries.setdefault(name, {})[field] = value
    try:
        rel = sd_dir.absolute().resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None, None
    for entry in entries.values():
        if entry.get("path") == rel:
            return root, entry.get("url")
    return None, None


def local_reader(sd_dir: Path):
    def read(module: str) -> str | None:
        base = sd_dir.joinpath(*module.split("."))
        for path in (base.with_suffix(".py"), base / "__init__.py"):
            if path.is_file():
                return path.read_text(encoding="utf-8", errors="replace")
        return None
    return read


def local_names(sd_dir: Path) -> set[str]:
    return {p.stem if p.suffix == ".py" else p.name for p in sd_dir.iterdir()
            if (p.suffix == ".py" or (p.is_dir() and not p.name.startswith(".")))} if sd_dir.is_dir() else set()


def run_probe(python: Path, required: list[str]) -> Probe:
    imports = [m for m in setup_plan.TORCH_PAIR if m in required]
    modules = [m for m in required if m not in imports]
    argv = [str(python), str(PROBE_SCRIPT), "--modules", ",".join(modules), "--import", ",".join(imports), "--device"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return Probe(error=f"the import probe ({PROBE_SCRIPT.name}) did not finish within {PROBE_TIMEOUT} s "
                           f"(an import hangs?)")
    except OSError as error:
        return Probe(error=f"{python} cannot be started ({error.strerror or error})")
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return Probe(error=f"the probe exited {done.returncode}: {tail}")
    try:
        data = json.loads(done.stdout)
        return Probe(tuple(data["missing"]), dict(data["broken"]), data.get("device", "cpu"), data.get("torch"),
                     data.get("accelerate"), memory=data.get("memory"))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        shown = (done.stdout.strip().splitlines() or ["nothing"])[-1][:200]
        return Probe(error=f"the probe printed no report it could read (last line: {shown!r})")


def model_setting(settings: Settings, character: str | None) -> tuple[Path | None, str, str | None]:
    """(base checkpoint, where it is set, why the configuration could not be read)."""
    locked_path = LOCKED_FILE
    try:
        text = locked_path.read_text(encoding="utf-8")
        if character:
            folder = settings.character_dir(character)
            if (folder / "character.toml").is_file():
                args = character_args(load_character(folder), text, str(locked_path),
                                      read_flag_kinds(settings.sd_scripts_dir.expanduser()))
                source = args.sources.get("pretrained_model_name_or_path", "")
                return args.pretrained_model, source, None
        args = merge_args(load_locked(text, str(locked_path)), {}, None, str(locked_path))
        return args.pretrained_model, args.sources.get("pretrained_model_name_or_path", ""), None
    except OSError as error:
        return None, "", f"{error.filename or locked_path} cannot be read ({error.strerror or error})"
    except (CharacterError, KohyaConfigError) as error:
        return None, "", str(error)


def interface_gaps(sd_dir: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(flags build_command can emit that the checkout does not define, dataset keys its schema lacks).

    Textual: the `"--flag"` option strings of `add_argument(...)` calls in train_network.py,
    sdxl_train_network.py and library/*.py, and the keys of the `*_SCHEMA` dicts in library/config_util.py."""
    def text(path: Path) -> str:
        try:
            return path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
    sources = [text(sd_dir / script) for script in TRAINER_SCRIPTS] + \
        [text(p) for p in sorted((sd_dir / "library").glob("*.py"))]
    flags = sd_scripts_source.defined_flags(sources)
    keys = sd_scripts_source.schema_keys(text(sd_dir / "library" / "config_util.py"))
    return (tuple(sorted(emitted_flags() - flags)),
            tuple(k for k in DATASET_TOML_KEYS if k not in keys))
