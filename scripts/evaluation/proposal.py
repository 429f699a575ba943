"""Read back what `rank` proposed (output/<character>/rank/rank.json) for deploy and status.

`deploy --step proposed` deploys the first proposal after printing it, and refuses when the
checkpoint file changed since the ranking (its sha256 is in the record); `status` shows it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from shlex import quote

PROPOSED = "proposed"
RECORD = Path("rank") / "rank.json"


class ProposalError(ValueError):
    """No usable proposal; the message names the file and the fix."""


@dataclass(frozen=True)
class Proposal:
    step: str  # what deploy --step takes: a number or "final"
    label: str
    reason: str
    sha256: str | None
    created_at: str
    runners_up: tuple[str, ...] = ()
    run: str | None = None  # the training run ranked (output/<character>/runs/<id>/), when rank.json says


def read_proposal(output_dir: Path) -> Proposal | None:
    """The top proposal, or None when rank has not run, proposed nothing or its record is damaged."""
    try:
        data = json.loads((output_dir / RECORD).read_text(encoding="utf-8"))
        top, *rest = data["proposal"]
        return Proposal(str(top["step"]), str(top["label"]), str(top["reason"]), top.get("sha256"),
                        str(data.get("created_at", "")), tuple(str(r["label"]) for r in rest),
                        str(data["run"]) if data.get("run") else None)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def load_proposal(output_dir: Path, slug: str) -> Proposal:
    proposal = read_proposal(output_dir)
    if proposal is not None:
        return proposal
    path = output_dir / RECORD
    if path.is_file():
        raise ProposalError(f"{path} proposes no checkpoint (every one was demoted, or the file is damaged); "
                            f"read {path.parent / 'report.html'} and deploy one by number with --step N, or "
                            f"run invoke rank --character {quote(slug)} again.")
    raise ProposalError(f"There is no ranking for {slug} yet ({path} is missing), so there is no proposed step. "
                        f"Run invoke rank --character {quote(slug)} first, or deploy by number with --step N.")


def proposal_marks(output_dir: Path) -> dict[str, str]:
    """sha256 of each proposed checkpoint -> "proposed N", for marking grid rows (the same file only)."""
    try:
        data = json.loads((output_dir / RECORD).read_text(encoding="utf-8"))
        return {str(p["sha256"]): f"proposed {i}" for i, p in enumerate(data["proposal"], start=1) if p.get("sha256")}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}
