"""The deploy record `output/<character>/deployed.json`: what is live now and what the backup holds."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from scripts.comfyui.production import Target
from scripts.table.character import Character
from scripts.trainer.lora_file import LoraInfo


def read_record(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def make_record(*, action: str, character: Character, step: int | str | None, info: LoraInfo, sha256: str,
                source: Path | None, target: Target, previous: dict[str, Any] | None,
                servers: dict[str, str], now: datetime) -> dict[str, Any]:
    """What is live now (`step`, `source`, `sha256`, `target`, time) and what the backup holds."""
    return {
        "character": character.slug,
        "trigger": character.trigger,
        "action": action,
        "step": step,
        "trained_steps": info.steps,
        "source": str(source) if source else None,
        "sha256": sha256,
        "size": info.size,
        "dim": info.dim,
        "alpha": info.alpha,
        "target": str(target.production),
        "backup": str(target.backup) if target.backup.exists() else None,
        "deployed_at": now.isoformat(timespec="seconds"),
        "servers": servers,
        "previous": {k: v for k, v in previous.items() if k != "previous"} if previous else None,
    }


def describe_file(record: dict[str, Any] | None, sha256: str) -> dict[str, Any]:
    """What we know of a file with this hash: our record of it, or a note that it was not ours."""
    if record and record.get("sha256") == sha256:
        return record
    return {"step": None, "source": None, "sha256": sha256,
            "note": "a file that was live before, not deployed by this tool"}
