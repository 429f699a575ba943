"""Where each stage of a character's chain stands, read from the filesystem, and the run record.

The chain is crop-preview -> approve (gate 1) -> crop -> gen-reg -> validate -> setup -> smoke ->
train -> compare -> rank (where scripts/rank.py exists) -> choose (gate 2) -> deploy. This module
owns `output/<character>/pipeline.json` (each stage's start, end, result and the hashes of its
inputs, plus the crop approval) and decides, from that record and the files, whether a stage is
done, and if not, why (never ran, failed, interrupted, or which input changed since it last
passed). It runs nothing and talks to no server: `scripts.pipeline` runs the stages,
`scripts.approve` records the approval and `scripts.status` shows the record. It lives in
trainer/ because it is the lowest layer that sees both the character table and the training output.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scripts.common.atomic import write_text
from scripts.common.hashing import file_sha256
from scripts.common.settings import Settings
from scripts.table.character import Character
from scripts.trainer.checkpoints import list_checkpoints
from scripts.trainer.run_dataset import stale_stage
from scripts.trainer.runs import latest_folder
from scripts.trainer.train_args import LOCKED_FILE, KohyaConfigError, character_args

STAGES = ("crop-preview", "approve", "crop", "gen-reg", "validate", "setup", "smoke", "train", "compare",
          "rank", "choose", "deploy")
NEEDS_SERVER = ("gen-reg", "compare", "rank")  # checked by scripts.pipeline, which may talk to servers
SCRIPTS_DIR = Path(__file__).resolve().parents[1]


def present_stages(scripts_dir: Path = SCRIPTS_DIR) -> tuple[str, ...]:
    """The stages this checkout has: `rank` only where its verb (scripts/rank.py) exists."""
    return tuple(s for s in STAGES if s != "rank" or (scripts_dir / "rank.py").is_file())
RECORD_NAME = "pipeline.json"


@dataclass(frozen=True)
class StageState:
    name: str
    done: bool
    why: str  # for a stage that is not done: why it must run; for a done one: when it last passed
    changed: tuple[str, ...] = ()  # the inputs that changed since it last passed


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _sha(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()[:16]


def _files_fingerprint(paths: list[Path]) -> str:
    """Names, sizes and modification times of the files (not their bytes: fast on any dataset)."""
    rows = []
    for path in sorted(paths):
        try:
            info = path.stat()
        except OSError:
            rows.append(f"{path}\tmissing")
            continue
        rows.append(f"{path}\t{info.st_size}\t{info.st_mtime_ns}")
    return _sha("\n".join(rows))


def _folder_files(*folders: Path) -> list[Path]:
    return [p for folder in folders if folder.is_dir() for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith(".") and "preview" not in p.relative_to(folder).parts]


def table_hash(character: Character) -> str:
    return _sha(character.table_path.read_bytes())


def stage_inputs(stage: str, character: Character, settings: Settings) -> dict[str, str]:
    """The hashes of what a stage reads; a stage whose inputs changed since it passed runs again."""
    sheets = [character.folder / s for s in sorted({c.source for c in character.crops})]
    output = settings.character_output(character.slug)
    if stage in ("crop-preview", "crop"):
        return {"table": table_hash(character), "sheets": _files_fingerprint(sheets)}
    if stage == "gen-reg":
        return {"regularization": _sha(repr(character.regularization))}
    if stage == "validate":
        return {"table": table_hash(character), "dataset": _files_fingerprint(
            _folder_files(character.train_dir, character.reg_root))}
    if stage == "setup":
        return {"paths": _sha(f"{settings.sd_scripts_dir}\n{settings.kohya_python}")}
    if stage in ("smoke", "train"):
        locked = LOCKED_FILE.read_bytes() if LOCKED_FILE.is_file() else b""
        return {"dataset": _files_fingerprint(_folder_files(character.train_dir, character.reg_root)),
                "training": _sha(json.dumps(dict(character.training), sort_keys=True, default=str)),
                "train.toml": _sha(locked)}
    if stage in ("compare", "rank"):
        run = latest_folder(output, character.trigger)  # the latest training run's checkpoints
        return {"checkpoints": _files_fingerprint([c.path for c in list_checkpoints(run, character.trigger)]),
                "prompts": _sha(repr((character.test_prompts, character.compare)))}
    return {}


# --- the record ---------------------------------------------------------------------------------

def record_path(settings: Settings, character: Character) -> Path:
    return settings.character_output(character.slug) / RECORD_NAME


def read_record(path: Path) -> dict[str, Any]:
    """The record, or an empty one when there is none (or it is unreadable: the chain then re-checks)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    data = data if isinstance(data, dict) else {}
    return {**data, "stages": dict(data.get("stages") or {}), "approvals": dict(data.get("approvals") or {})}


def write_record(path: Path, record: Mapping[str, Any]) -> None:
    write_text(path, json.dumps(record, indent=2, sort_keys=True) + "\n")


def update_stage(path: Path, stage: str, **fields: Any) -> dict[str, Any]:
    """Merge `fields` into one stage's entry (read, change, atomic write) and return the entry."""
    record = read_record(path)
    entry = dict(record["stages"].get(stage, {}))
    entry.update(fields)
    record["stages"][stage] = entry
    write_record(path, record)
    return entry


def approve_crops(path: Path, character: Character) -> str:
    """Record that a person looked at the previews of this table and these sheets; returns the table hash."""
    record = read_record(path)
    seen = stage_inputs("crop-preview", character, Settings())  # no machine setting enters these inputs
    record["approvals"]["crops"] = {**seen, "at": now()}
    write_record(path, record)
    return seen["table"]


def result_word(code: int) -> str:
    return "ok" if code == 0 else "interrupted" if code == 130 else f"failed (exit {code})"


# --- what is done -------------------------------------------------------------------------------

def _count(folder: Path, pattern: str) -> int:
    return sum(1 for _ in folder.glob(pattern)) if folder.is_dir() else 0


def _outputs_present(stage: str, character: Character, settings: Settings) -> bool:
    output = settings.character_output(character.slug)
    if stage == "crop-preview":
        return (character.preview_dir / "contact_sheet.png").is_file()
    if stage == "crop":
        return _count(character.train_dir, "*.png") >= len(character.crops) > 0
    if stage == "gen-reg":
        return _count(character.reg_dir, "*.png") >= character.regularization.count
    if stage == "setup":
        return (settings.sd_scripts_dir.expanduser() / "train_network.py").is_file() and \
            settings.kohya_python.expanduser().exists()
    if stage == "train":
        return bool(list_checkpoints(latest_folder(output, character.trigger), character.trigger))
    if stage == "compare":
        return (output / "compare" / "grid.png").is_file()
    if stage == "rank":
        return (output / "rank" / "rank.json").is_file()
    return True


def _previews_newer_than_inputs(character: Character) -> bool:
    sheet = character.preview_dir / "contact_sheet.png"
    inputs = [character.table_path] + [character.folder / c.source for c in character.crops]
    try:
        made = sheet.stat().st_mtime_ns
        return all(path.stat().st_mtime_ns <= made for path in inputs)
    except OSError:
        return False


def deploy_record(settings: Settings, character: Character) -> dict[str, Any] | None:
    """output/<character>/deployed.json as deploy wrote it, or None."""
    path = settings.character_output(character.slug) / "deployed.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def live_problem(record: Mapping[str, Any]) -> str | None:
    """Why the file ComfyUI loads is not the one deploy put there (None: it is, or the record cannot say)."""
    sha256, target = record.get("sha256"), record.get("target")
    if not sha256 or not target:
        return None
    live = Path(str(target))
    if not live.is_file():
        return f"the deployed file {live} is gone"
    if file_sha256(live) != sha256:
        return (f"{live} is not the file deployed (its sha256 differs from deployed.json's: another LoRA "
                f"replaced it)")
    return None


def deployed(settings: Settings, character: Character) -> dict[str, Any] | None:
    """The deploy record when the live file is the one deployed and a current checkpoint still holds it."""
    data = deploy_record(settings, character)
    if data is None:
        return None
    source = Path(str(data.get("source") or ""))
    if not source.is_file() or file_sha256(source) != data.get("sha256"):
        return None
    return data if live_problem(data) is None else None


def changed_inputs(stage: str, character: Character, settings: Settings, entry: Mapping[str, Any]) -> list[str]:
    recorded = entry.get("inputs", {})
    return [k for k, v in stage_inputs(stage, character, settings).items() if recorded.get(k) != v]


def resumable(stage: str, character: Character, settings: Settings) -> bool:
    """The stage's last run stopped part-way (interrupted, failed, killed) on the inputs it has now."""
    entry = read_record(record_path(settings, character))["stages"].get(stage)
    return bool(entry) and entry.get("result") != "ok" and not changed_inputs(stage, character, settings, entry)


def stage_state(stage: str, character: Character, settings: Settings,
                record: Mapping[str, Any] | None = None) -> StageState:
    """Done or not, and why, from the record and the files (see the module docstring)."""
    if record is None:
        record = read_record(record_path(settings, character))
    if stage == "approve":
        approval = record.get("approvals", {}).get("crops")
        if not approval:
            return StageState(stage, False, "the crop previews are not approved yet")
        current = stage_inputs("crop-preview", character, settings)
        changed = [k for k in ("table", "sheets") if k in approval and approval[k] != current[k]]
        names = {"table": "the table", "sheets": "the sheets"}
        if changed or "table" not in approval:
            what = " and ".join(names[k] for k in changed) or "the table"
            return StageState(stage, False, f"{what} changed after the approval of {approval.get('at')}",
                              tuple(changed))
        return StageState(stage, True, f"approved {approval.get('at')}")
    stale = stale_stage(stage, character, settings.character_output(character.slug),
                        deploy_record(settings, character) if stage in ("choose", "deploy") else None)
    if stale:  # trained on other images than the dataset holds now (run.json's fingerprint)
        return StageState(stage, False, stale)
    if stage in ("choose", "deploy"):
        live = deployed(settings, character)
        if live:
            return StageState(stage, True, f"step {live.get('step')} deployed {live.get('deployed_at')}")
        return StageState(stage, False, "no checkpoint of this run is deployed yet")
    entry = record.get("stages", {}).get(stage)
    if not entry:
        # Done outside the chain (by hand, before `invoke all` existed): the costly stages trust the files.
        if stage in ("train", "compare") and _outputs_present(stage, character, settings):
            return StageState(stage, True, "outputs present (made outside `invoke all`)")
        if stage == "crop-preview" and _previews_newer_than_inputs(character):
            return StageState(stage, True, "previews newer than the table and sheets (made outside `invoke all`)")
        return StageState(stage, False, "never ran")
    if entry.get("result") != "ok":
        result = entry.get("result")
        word = "did not finish" if result in (None, "running") else result
        return StageState(stage, False, f"last run {word} ({entry.get('started')})")
    changed = changed_inputs(stage, character, settings, entry)
    if changed:
        return StageState(stage, False, f"changed since it last ran ({entry.get('ended')}): {', '.join(changed)}",
                          tuple(changed))
    if not _outputs_present(stage, character, settings):
        return StageState(stage, False, "its outputs are missing")
    return StageState(stage, True, f"last ran {entry.get('ended')}")


# --- what each stage needs from outside ---------------------------------------------------------

def base_model_problem(character: Character) -> str | None:
    try:
        model = character_args(character, LOCKED_FILE.read_text(encoding="utf-8")).pretrained_model
    except (OSError, KohyaConfigError, ValueError) as error:
        return f"the training settings cannot be read: {error}"
    if model is None:
        return (f'no base model is set: add pretrained_model = "/path/to/model.safetensors" to [training] in '
                f"{character.table_path}")
    if not model.is_file():
        return f"the base model {model} does not exist: put it there or change pretrained_model"
    return None


def file_prerequisites(stage: str, character: Character, settings: Settings, chain: tuple[str, ...]) -> list[str]:
    """What `stage` needs that no earlier stage in `chain` makes, and that is absent (no network)."""
    problems: list[str] = []
    if stage in ("crop-preview", "crop"):
        missing = sorted({c.source for c in character.crops if not (character.folder / c.source).is_file()})
        if missing:
            draw = " (draw them: python -m scripts.example_art)" if character.slug == "example" else ""
            problems.append(f"reference sheets missing in {character.folder}: {', '.join(map(str, missing))}{draw}")
    if stage == "gen-reg" and not character.regularization.checkpoint:
        problems.append(f"no checkpoint for the regularization images: set checkpoint in [regularization] of "
                        f"{character.table_path}")
    if stage in ("setup", "smoke", "train"):
        problem = base_model_problem(character)
        if problem:
            problems.append(problem)
    if stage in ("smoke", "train") and "setup" not in chain and not _outputs_present("setup", character, settings):
        problems.append(f"sd-scripts or the kohya venv is missing ({settings.sd_scripts_dir}, "
                        f"{settings.kohya_python}): run `invoke setup`")
    if stage == "deploy" and not settings.comfyui_dir.expanduser().is_dir():
        problems.append(f"the ComfyUI folder {settings.comfyui_dir} does not exist: set comfyui_dir "
                        f"(invoke.yaml lora:, LORA_COMFYUI_DIR)")
    return problems




def describe(character: Character, settings: Settings) -> list[str]:
    """`status` lines for the run record: each stage's last run and, when not done, why it must run."""
    path = record_path(settings, character)
    if not path.is_file():
        return []
    record = read_record(path)
    lines = [f"  invoke all record ({path}):"]
    for stage in present_stages():
        state = stage_state(stage, character, settings, record)
        entry = record["stages"].get(stage, {})
        ran = f"last ran {entry.get('started')} -> {entry.get('ended') or '?'}, {entry.get('result')}" if entry \
            else "not run by invoke all"
        stale = f"stale, changed: {', '.join(state.changed)}" if state.changed else f"to run: {state.why}"
        lines.append(f"    [{'done' if state.done else 'todo'}] {stage:<12} " +
                     (state.why if state.done or not entry else f"{ran}; {stale}"))
    return lines
