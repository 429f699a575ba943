"""After a run: did sd-scripts train what we meant? Read from the LoRA's own metadata.

sd-scripts ignores a subset whose image_dir is empty with a warning (`ignore subset with
image_dir=...: no images found`) and trains on: with an empty reg folder (possible with
--skip-validate) it trains without regularization and still writes a valid LoRA. Our dataset TOML
always has a train subset and a reg subset, so `ss_num_train_images` and `ss_num_reg_images`
(written by sd-scripts into every checkpoint) must both be above 0.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from shlex import quote


def trained_as_meant(metadata: Mapping[str, str], train_dir: Path, reg_dir: Path, slug: str) -> str | None:
    """Why the run did not train what the dataset TOML asked for, or None."""
    for key, folder, fix in (("ss_num_train_images", train_dir, f"run `invoke crop --character {quote(slug)}`"),
                             ("ss_num_reg_images", reg_dir, f"run `invoke gen-reg --character {quote(slug)}`")):
        value = metadata.get(key)
        if value is not None and value.strip() in ("0", ""):
            what = "regularization" if "reg" in key else "training"
            return (f"sd-scripts trained without {what} images ({key} = 0 in the LoRA's metadata): {folder} "
                    f"has none it could use; {fix}, then train again")
    return None
