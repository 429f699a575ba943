"""The character table (scripts.table.character): schema errors name file, entry and key; defaults; triggers."""
from __future__ import annotations

from pathlib import Path

import pytest

from scripts.table.character import CharacterError, load_character
from scripts.table.character_sections import with_trigger
from tests.character_tables import CROP, HEAD, write_character
from tests.paths import ROOT


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(CharacterError) as caught:
        load_character(write_character(tmp_path, text))
    return str(caught.value)


def test_minimal_table_gets_defaults(tmp_path: Path) -> None:
    character = load_character(write_character(tmp_path, HEAD + CROP))
    assert (character.repeats, character.resolution, character.background) == (10, 512, (255, 255, 255))
    assert character.asymmetric is False and character.details == ()
    assert character.train_dir == tmp_path / "tess" / "train" / "10_tess_v1"
    assert character.preview_dir == character.train_dir / "preview"
    assert character.reg_dir == tmp_path / "tess" / "reg" / "1_anime_character"
    crop = character.crops[0]
    assert crop.box == (0, 0, 10, 10) and crop.flip is False and crop.source == Path("sheet.png")
    assert character.validation.min_train == 15 and character.validation.min_reg == 100
    assert len(character.test_prompts) == 3


def test_unknown_key_names_file_entry_and_key(tmp_path: Path) -> None:
    message = error_of(tmp_path, HEAD + CROP.replace("flip", "x") + 'flipp = true\n')
    assert str(tmp_path / "tess" / "character.toml") in message
    assert "[[crop]] #1 ('tess_front')" in message
    assert "unknown key 'flipp'" in message


def test_wrong_type_names_the_key_and_the_expected_type(tmp_path: Path) -> None:
    message = error_of(tmp_path, HEAD + CROP.replace("shows_details = true", 'shows_details = "yes"'))
    assert "[[crop]] #1 ('tess_front')" in message
    assert "key 'shows_details' must be true or false" in message


def test_box_must_be_four_whole_numbers(tmp_path: Path) -> None:
    message = error_of(tmp_path, HEAD + CROP.replace("[0, 0, 10, 10]", "[0, 0, 10]"))
    assert "key 'box' must be [left, top, width, height]" in message


def test_missing_required_key_is_named(tmp_path: Path) -> None:
    message = error_of(tmp_path, HEAD + CROP.replace('expression = "calm"\n', ""))
    assert "[[crop]] #1 ('tess_front')" in message and "missing required key 'expression'" in message


def test_missing_key_in_character_section(tmp_path: Path) -> None:
    message = error_of(tmp_path, HEAD.replace('trigger = "tess_v1"\n', "") + CROP)
    assert "[character]" in message and "missing required key 'trigger'" in message


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    second = (CROP.replace('"tess_front"', '"tess_back"').replace('"full_body"', '"wide"')
              .replace('"neutral"', '"sitting"'))
    message = error_of(tmp_path, HEAD + CROP + second)
    assert "2 problems" in message
    assert "key 'framing' must be one of full_body, bust, closeup, not 'wide'" in message
    assert "key 'pose' must be one of neutral, action, not 'sitting'" in message


def test_duplicate_crop_names(tmp_path: Path) -> None:
    assert "used by an earlier crop" in error_of(tmp_path, HEAD + CROP + CROP)


def test_unknown_section(tmp_path: Path) -> None:
    assert "[extra]: unknown section" in error_of(tmp_path, HEAD + CROP + "[extra]\nx = 1\n")


def test_source_outside_the_folder_is_refused(tmp_path: Path) -> None:
    assert "inside the character folder" in error_of(tmp_path, HEAD + CROP.replace('"sheet.png"', '"../x.png"'))


def test_missing_table_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(CharacterError, match="No character table"):
        load_character(tmp_path / "nobody")
    assert "not valid TOML" in error_of(tmp_path, HEAD + "box = [")


def test_validation_shares_must_add_up(tmp_path: Path) -> None:
    message = error_of(tmp_path, HEAD + CROP + "[validation]\npose = { neutral = 0.5, action = 0.2 }\n")
    assert "shares must add up to 1.0" in message


@pytest.mark.parametrize(("caption", "expected"), [
    ("full body, calm", "tess_v1, full body, calm"),
    ("tess_v1, full body", "tess_v1, full body"),
    ("full body, tess_v1, calm", "tess_v1, full body, calm"),
    ("  tess_v1 ,  bust ", "tess_v1, bust"),
    ("", "tess_v1"),
])
def test_trigger_is_put_first_once(caption: str, expected: str) -> None:
    assert with_trigger(caption, "tess_v1") == expected


def test_table_caption_gets_the_trigger(tmp_path: Path) -> None:
    character = load_character(write_character(tmp_path, HEAD + CROP))
    assert character.crops[0].caption == "tess_v1, full body"


def test_the_example_table_loads() -> None:
    folder = ROOT / "dataset" / "example"
    character = load_character(folder)
    assert character.asymmetric and not any(c.flip for c in character.crops)
    assert 15 <= len(character.crops) <= 20
    assert all(c.caption.split(",")[0] == character.trigger for c in character.crops)


def test_compare_settings_inherit_regularization_and_can_be_overridden(tmp_path: Path) -> None:
    regularization = '[regularization]\ncheckpoint = "base.safetensors"\nsteps = 25\nsampler = "dpmpp_2m"\n'
    inherited = load_character(write_character(tmp_path, HEAD + CROP + regularization)).compare
    assert (inherited.checkpoint, inherited.steps, inherited.sampler) == ("base.safetensors", 25, "dpmpp_2m")
    assert (inherited.width, inherited.height) == (512, 512) and "lowres" in inherited.negative
    own = '[compare]\ncheckpoint = "other.safetensors"\nwidth = 256\nnegative = "blurry"\n'
    chosen = load_character(write_character(tmp_path, HEAD + CROP + regularization + own)).compare
    assert (chosen.checkpoint, chosen.width, chosen.height, chosen.steps) == ("other.safetensors", 256, 512, 25)
    assert chosen.negative == "blurry"


def test_compare_section_is_checked_like_the_others(tmp_path: Path) -> None:
    message = error_of(tmp_path, HEAD + CROP + '[compare]\nsteps = 0\nsampel = "euler"\n')
    assert "[compare]: unknown key 'sampel'" in message and "key 'steps' must be at least 1" in message


def test_topup_inherits_regularization_settings_and_builds_its_prompt_from_the_details(tmp_path: Path) -> None:
    head = HEAD + 'details = ["red scarf", "silver hairpin"]\n'
    regularization = '[regularization]\ncheckpoint = "base.safetensors"\nwidth = 640\nsteps = 25\nseed = 40\n'
    inherited = load_character(write_character(tmp_path, head + CROP + regularization)).topup
    assert (inherited.checkpoint, inherited.width, inherited.height, inherited.steps) == (
        "base.safetensors", 640, 512, 25)
    assert inherited.prompt == ("anime character, solo, full body, standing, red scarf, silver hairpin, "
                                "simple background, white background")
    assert "tess_v1" not in inherited.negative and inherited.seed == 100_040 and inherited.count == 8
    own = '[topup]\ncount = 30\nprompt = "tess in a plain room"\nsampler = "dpmpp_2m"\nseed = 7\n'
    chosen = load_character(write_character(tmp_path, head + CROP + regularization + own)).topup
    assert (chosen.count, chosen.prompt, chosen.sampler, chosen.seed, chosen.steps) == (
        30, "tess in a plain room", "dpmpp_2m", 7, 25)
    assert "[topup]: key 'count' must be at least 1" in error_of(tmp_path, head + CROP + "[topup]\ncount = 0\n")


def test_a_crop_without_box_is_the_whole_picture(tmp_path: Path) -> None:
    crop = CROP.replace("box = [0, 0, 10, 10]\n", "").replace('"sheet.png"', '"picked/one.png"')
    (only,) = load_character(write_character(tmp_path, HEAD + crop)).crops
    assert only.box is None and only.source == Path("picked/one.png")
