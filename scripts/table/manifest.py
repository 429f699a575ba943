"""The generation manifest: `manifest.jsonl`, one JSON record per image, written atomically.

This module owns the record format and the done set (pure apart from `load`/`Manifest.flush`).
Records are appended in memory as results arrive; each flush rewrites the whole file through
`scripts.common.atomic` with the latest record per file (last record wins), in index order, so the
file on disk is always complete and holds exactly one line per image ever attempted. A line
that does not parse (a file edited by hand) is skipped on load, never fatal.

Record keys: file, index, seed, prompt_hash, server, prompt_id, seconds, status
("done" | "failed"), error, attempts.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from scripts.common.atomic import write_text

MANIFEST_NAME = "manifest.jsonl"
FIELDS = ("file", "index", "seed", "prompt_hash", "server", "prompt_id", "seconds", "status", "error", "attempts")


def prompt_hash(*parts: Any) -> str:
    """A short stable hash of what decides an image besides its seed (prompt, negative, model...)."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def make_record(**values: Any) -> dict[str, Any]:
    """A record with every field present (missing ones None), in the documented key order."""
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown manifest fields: {sorted(unknown)}")
    record = {name: values.get(name) for name in FIELDS}
    if isinstance(record["seconds"], float):
        record["seconds"] = round(record["seconds"], 3)
    return record


def parse_lines(text: str) -> list[dict[str, Any]]:
    records = []
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("file"), str):
            records.append(record)
    return records


def latest(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """file -> its last record."""
    found: dict[str, dict[str, Any]] = {}
    for record in records:
        found[record["file"]] = dict(record)
    return found


def done_set(records: Iterable[Mapping[str, Any]]) -> set[str]:
    """Files whose last record says done."""
    return {name for name, record in latest(records).items() if record.get("status") == "done"}


def render(records: Iterable[Mapping[str, Any]]) -> str:
    """The file text: the latest record per file, ordered by index then file name."""
    rows = sorted(latest(records).values(),
                  key=lambda r: (r.get("index") if isinstance(r.get("index"), int) else 1 << 62, r["file"]))
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def load(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return parse_lines(path.read_text(encoding="utf-8", errors="replace"))


class Manifest:
    """The records of one folder's manifest; `add` then `flush` (atomic rewrite)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: list[dict[str, Any]] = load(path)
        self.dirty = False

    def add(self, record: Mapping[str, Any]) -> None:
        self.records.append(dict(record))
        self.dirty = True

    def latest(self) -> dict[str, dict[str, Any]]:
        return latest(self.records)

    def done(self) -> set[str]:
        return done_set(self.records)

    def flush(self) -> None:
        if self.dirty or not self.path.exists():
            write_text(self.path, render(self.records))
            self.dirty = False
