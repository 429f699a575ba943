"""Stand-in for sd-scripts' library/config_util.py: the dataset TOML schema and --dataset_config.

The schema dicts are written in the same textual form as the real file at 48d368f
(`"key": type,` and `Required("key"): type,` inside `*_SCHEMA = {...}` blocks), so the setup
check that greps the checkout's source for the keys we write finds them here too. Only the
keys this project or the recordings use are listed. Standard library only.
"""
import argparse
from pathlib import Path


def Required(key):  # stands in for voluptuous.Required
    return key


def add_config_arguments(parser: argparse.ArgumentParser):
    parser.add_argument(
        "--dataset_config", type=Path, default=None, help="config file for detail settings"
    )


class ConfigSanitizer:
    SUBSET_ASCENDABLE_SCHEMA = {
        "color_aug": bool,
        "flip_aug": bool,
        "num_repeats": int,
        "random_crop": bool,
        "shuffle_caption": bool,
        "keep_tokens": int,
        "keep_tokens_separator": str,
        "caption_prefix": str,
        "caption_suffix": str,
    }
    DO_SUBSET_ASCENDABLE_SCHEMA = {
        "caption_dropout_rate": float,
    }
    DB_SUBSET_ASCENDABLE_SCHEMA = {
        "caption_extension": str,
        "class_tokens": str,
    }
    DB_SUBSET_DISTINCT_SCHEMA = {
        Required("image_dir"): str,
        "is_reg": bool,
        "alpha_mask": bool,
    }
    DATASET_ASCENDABLE_SCHEMA = {
        "batch_size": int,
        "bucket_no_upscale": bool,
        "bucket_reso_steps": int,
        "enable_bucket": bool,
        "max_bucket_reso": int,
        "min_bucket_reso": int,
        "resolution": int,
    }


_S = ConfigSanitizer
GENERAL_KEYS = {*_S.DATASET_ASCENDABLE_SCHEMA, *_S.SUBSET_ASCENDABLE_SCHEMA, *_S.DB_SUBSET_ASCENDABLE_SCHEMA,
                *_S.DO_SUBSET_ASCENDABLE_SCHEMA}
DATASET_KEYS = GENERAL_KEYS | {"subsets"}
SUBSET_KEYS = {*_S.SUBSET_ASCENDABLE_SCHEMA, *_S.DB_SUBSET_DISTINCT_SCHEMA, *_S.DB_SUBSET_ASCENDABLE_SCHEMA,
               *_S.DO_SUBSET_ASCENDABLE_SCHEMA}
