"""When the trainer fails, the message names the cause (the first ERROR record), not the last exception."""
from __future__ import annotations

from scripts.trainer.log import LogScanner
from scripts.trainer.run import RunResult, failure
from tests.paths import SHARED_FIXTURES


def scan(text: str) -> LogScanner:
    scanner = LogScanner()
    scanner.feed(text)
    scanner.close()
    return scanner


def test_the_recorded_bad_key_failure_names_the_config_error_first() -> None:
    scanner = scan((SHARED_FIXTURES / "sd-scripts/fail_bad_toml_key.log").read_text(encoding="utf-8"))
    message = failure(RunResult(1, scanner, 1.0, None)) or ""
    assert message.startswith("train_network.py exited 1: Invalid user config /")
    assert "extra keys not allowed" in message  # the exception that followed is still shown


def test_a_wrapped_error_record_is_joined_and_beats_the_later_exception() -> None:
    # The shape of a rich ERROR record as the recordings show it (time, level, message wrapped at
    # column 29, source location); the text is the corrupt-image report quoted in issue 11.
    log = ("2026-11-23 07:44:50 INFO     loading image sizes.              train_util.py:992\n"
           "                    ERROR    failed to get image size:       train_util.py:1032\n"
           "                             /data/hero/train/10_hero_v1/bad.pn                  \n"
           "                             g, cannot identify image file                      \n"
           "Traceback (most recent call last):\n"
           "ZeroDivisionError: division by zero\n")
    message = failure(RunResult(1, scan(log), 1.0, None)) or ""
    assert "failed to get image size: /data/hero/train/10_hero_v1/bad.png, cannot identify image file" in message
    assert message.index("failed to get image size") < message.index("ZeroDivisionError")


def test_the_image_size_warning_is_the_cause_and_other_warnings_are_not() -> None:
    # get_image_size's WARNING as sd-scripts' source writes it (train_util.py:1489), wrapped by rich with the
    # path's cut falling right after its comma; a harmless WARNING (fail_missing_dataset.log) comes first.
    log = ("                    WARNING  not directory:                   train_util.py:1974\n"
           "                             /data/old                                          \n"
           "2026-11-23 07:44:50 WARNING  failed to get image size:        train_util.py:1489\n"
           "                             /data/hero/train/10_hero/b.png,                    \n"
           "                             error: cannot identify image                       \n"
           "                             file '/data/hero/train/10_hero/b                   \n"
           "                             .png'                                              \n"
           "Traceback (most recent call last):\n"
           "ZeroDivisionError: division by zero\n")
    scanner = scan(log)
    assert scanner.image_failures == [("/data/hero/train/10_hero/b.png", "cannot identify image file")]
    message = failure(RunResult(1, scanner, 1.0, None)) or ""
    assert message.startswith("train_network.py exited 1: sd-scripts could not read the image "
                              "/data/hero/train/10_hero/b.png (cannot identify image file) (then ZeroDivisionError")
    assert "not directory" not in message


def test_harmless_warnings_before_the_exception_are_not_the_cause() -> None:
    # fail_missing_model.log: caption and reg-folder WARNINGs while the dataset loads, then the ValueError
    scanner = scan((SHARED_FIXTURES / "sd-scripts/fail_missing_model.log").read_text(encoding="utf-8"))
    message = failure(RunResult(1, scanner, 1.0, None)) or ""
    assert message.startswith("train_network.py exited 1: ValueError: The provided pretrained_model_name_or_path")
    assert "No caption file found" not in message
