"""The dataset TOML's built-in defaults are the locked ones: a train.toml without its dataset keys
(an older copy, an external kohya_ss) still gets keep_tokens 1, shuffled captions after the
trigger, .txt captions, no flip augmentation and buckets on."""
from __future__ import annotations

import tomllib
from pathlib import Path

from scripts.table.character import parse_character
from scripts.trainer.launch import dataset_config
from scripts.trainer.train_args import character_args
from tests.paths import ROOT

LOCKED = (ROOT / "kohya" / "train.toml").read_text()
DATASET_KEYS = ("keep_tokens", "shuffle_caption", "caption_extension", "flip_aug", "enable_bucket")


def test_defaults_equal_the_locked_values(tmp_path: Path) -> None:
    locked = tomllib.loads(LOCKED)
    assert {key: locked[key] for key in DATASET_KEYS} == {"keep_tokens": 1, "shuffle_caption": True,
                                                          "caption_extension": ".txt", "flip_aug": False,
                                                          "enable_bucket": True}
    bare = "\n".join(line for line in LOCKED.splitlines() if not line.startswith(DATASET_KEYS))
    character = parse_character({"character": {"name": "Spyke", "trigger": "spyke_v1", "class": "anime character",
                                               "repeats": 10, "resolution": 512},
                                 "training": {"pretrained_model": "/m.safetensors"}}, tmp_path / "spyke")
    config = dataset_config(character, character_args(character, bare))
    train, reg = config["datasets"][0]["subsets"]
    assert config["general"]["enable_bucket"] is True
    assert (train["keep_tokens"], train["shuffle_caption"], train["caption_extension"], train["flip_aug"]) == \
        (1, True, ".txt", False)
    assert reg["flip_aug"] is False and reg["is_reg"] is True
