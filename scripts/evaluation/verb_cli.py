"""What `compare` and `rank` share at the command line: the checkpoint flags and one way to end.

Both verbs render one character's checkpoints on ComfyUI. Their parsers start with the same flags
(`--character`, `--steps`, `--keep-staged`, `--timeout` and the ComfyUI/folder settings) and their
`main`s end the same way, by README "Exit codes": bad input or configuration (the table, a setting,
the kohya family files, a --steps, --run or --comfyui-dir naming nothing there) is its one-paragraph
message and exit 2; the verb's own refusals and ComfyUI failures exit 1; a file error exits 1 with
the verb's sentence on what was kept; Ctrl-C (or SIGTERM/SIGHUP) is the one stop line and 130;
otherwise the summary is printed, and a failed render makes the exit 1.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from scripts import comfyui
from scripts.common import interrupts
from scripts.common.cli import positive_float
from scripts.common.settings import Settings, SettingsError, add_settings_arguments, settings_from_args
from scripts.evaluation.grid_plan import CompareInputError
from scripts.table.character import Character, CharacterError, load_character
from scripts.trainer.train_args import KohyaConfigError

BAD_INPUT: tuple[type[Exception], ...] = (CharacterError, SettingsError, KohyaConfigError, CompareInputError)
SETTINGS = ("comfyui_urls", "comfyui_dir", "concurrency", "output_root", "dataset_root")


class Finished(Protocol):
    failed: list[str]


S = TypeVar("S", bound=Finished)


def add_checkpoint_arguments(parser: argparse.ArgumentParser, *settings: str) -> None:
    """--character, --steps, --run, --keep-staged, --timeout, then the settings flags (SETTINGS + `settings`)."""
    parser.add_argument("--character", required=True, help="character folder under the dataset root")
    parser.add_argument("--steps", default=None,
                        help="only these checkpoints, comma-separated, e.g. 230,460,final (default: all)")
    parser.add_argument("--run", default=None, metavar="RUN_ID",
                        help="the training run, e.g. 20261203-131500 or legacy (default: the latest; the runs are "
                             "the folders in output/<character>/runs/)")
    parser.add_argument("--keep-staged", action="store_true",
                        help="leave the staged copies in <loras>/_eval/<character>/ for trying them in the UI")
    parser.add_argument("--timeout", type=positive_float, default=comfyui.DEFAULT_TIMEOUTS.job,
                        help="seconds per image before it is retried")
    add_settings_arguments(parser, *SETTINGS, *settings)


def run_verb(verb: str, args: argparse.Namespace, start: Callable[[Settings, Character], Coroutine[Any, Any, S]],
             summary_text: Callable[[S, Character], str], failures: tuple[type[Exception], ...],
             file_error: str) -> int:
    """Load settings and character, run `start`, print its summary; `file_error` takes `{error}`."""
    try:
        settings = settings_from_args(args)
        character = load_character(settings.character_dir(args.character))
        summary: S = asyncio.run(start(settings, character))
    except BAD_INPUT as error:
        print(str(error), file=sys.stderr)
        return 2
    except failures as error:
        print(str(error), file=sys.stderr)
        return 1
    except OSError as error:
        print(file_error.format(error=error), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return interrupts.stopped(verb)  # queued prompts were cancelled, staged copies removed
    print(summary_text(summary, character))
    return 1 if summary.failed else 0
