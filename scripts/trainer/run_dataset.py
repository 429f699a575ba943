"""Which dataset a training run trained on, and whether the folders still hold it.

`launch.dataset_fingerprint` hashes every file of the train and reg folders (images by size,
captions by content); `begin_run` records it in the run's run.json as `dataset` when a run starts
(a resume keeps it). A run whose recorded fingerprint differs from the folders' now was trained on
other images or captions (a re-crop after a caption edit, new regularization images): its
checkpoints, and the grid, ranking and deploy made from them, are stale. A run without one (made
before runs recorded it, or the legacy flat folder) is taken as current, as before.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scripts.table.character import Character
from scripts.trainer.launch import dataset_files, dataset_fingerprint
from scripts.trainer.runs import RECORD, Run, latest_run, read_record

KEY = "dataset"


def current_fingerprint(character: Character) -> str:
    """The fingerprint of the dataset the trainer would read now (the same hash train puts in ss_training_comment)."""
    return dataset_fingerprint(dataset_files([character.train_dir, character.reg_dir]))


def stale_because(run: Run | None, character: Character) -> str | None:
    """Why `run`'s checkpoints are stale ("the training images changed since run ID"), or None when they are not."""
    if run is None or run.legacy:
        return None
    recorded = run.record.get(KEY)
    if not isinstance(recorded, str) or not recorded:
        return None
    now = current_fingerprint(character)
    if recorded == now:
        return None
    return f"the training images changed since run {run.run_id} (dataset {recorded} then, {now} now)"


def run_of(checkpoint: Path) -> Run | None:
    """The run whose folder holds `checkpoint` (a deployed source), or None outside a run folder."""
    folder = checkpoint.parent
    return Run(folder.name, folder, read_record(folder)) if (folder / RECORD).is_file() else None


def stale_stage(stage: str, character: Character, output: Path, deployed: Mapping[str, Any] | None) -> str | None:
    """Why a stage made from training is stale (None: it is not, or cannot be told): train and what was made
    from the latest run (compare, rank) when that run trained on another dataset; choose/deploy when the
    deployed checkpoint's run did."""
    if stage in ("train", "compare", "rank"):
        why = stale_because(latest_run(output, character.trigger), character)
        return why if stage == "train" or why is None else f"made from a stale training run: {why}"
    if stage in ("choose", "deploy") and deployed and deployed.get("source"):
        why = stale_because(run_of(Path(str(deployed["source"]))), character)
        return None if why is None else f"the deployed LoRA is stale: {why}"
    return None
