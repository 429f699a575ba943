"""setup and the model family: the checklist names the family, refuses the wrong kind of file, and makes
SDXL's second tokenizer folder offline from the CLIP-L one (as ../shared/fixtures/sd-scripts-sdxl's
scripts/make_tok2.py did for the recorded runs)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from scripts.trainer import setup_plan, tokenizers
from scripts.trainer.family_args import describe_base
from scripts.trainer.setup_plan import FAIL, FIX, OK, plan
from tests.paths import ROOT
from tests.sparse import from_recording, sdxl_lora
from tests.trainer.test_setup_plan import by_name, facts

LOCKED = (ROOT / "kohya" / "train.toml").read_text()


def test_model_item_names_the_family_or_the_problem(tmp_path: Path) -> None:
    sdxl = from_recording("sdxl", tmp_path / "anythingXL.safetensors")
    line, problem, family = describe_base(None, LOCKED, sdxl)
    assert (problem, family) == (None, "sdxl") and line == "SDXL (2514 tensors, 6.9 GB) -> sdxl_train_network.py"
    item = by_name(plan(facts(tmp_path, pretrained_model=sdxl, model_family=line)))["base checkpoint"]
    assert item.state == OK and item.detail.endswith(": SDXL (2514 tensors, 6.9 GB) -> sdxl_train_network.py")
    lora = sdxl_lora(tmp_path / "rec_sdxl_v1.safetensors")
    line, problem, family = describe_base(None, LOCKED, lora)
    assert family is None and problem is not None and "is a LoRA for SDXL, not a base checkpoint" in problem
    item = by_name(plan(facts(tmp_path, pretrained_model=lora, model_problem=problem)))["base checkpoint"]
    assert item.state == FAIL and str(lora) in item.detail


def test_sdxl_needs_the_bigg_tokenizer_and_setup_makes_it_offline(tmp_path: Path) -> None:
    cache = tmp_path / "tok"
    clip_l = cache / tokenizers.CLIP_L_FOLDER
    clip_l.mkdir(parents=True)
    (clip_l / "vocab.json").write_text('{"!": 0, "<|endoftext|>": 49407}')
    (clip_l / "merges.txt").write_text("#version: 0.2\ni n\n")
    sd15 = by_name(plan(facts(tmp_path, tokenizer_cache=cache)))["CLIP tokenizer cache"]
    assert sd15.state == OK and "bigG" not in sd15.detail
    item = by_name(plan(facts(tmp_path, tokenizer_cache=cache, bigg_needed=True)))["CLIP tokenizer cache"]
    assert item.state == FIX and "not NoneType" in item.detail and len(item.actions) == 1
    argv = list(item.actions[0].argv)
    argv[0] = sys.executable
    subprocess.run(argv, check=True, capture_output=True, timeout=60)
    made = cache / tokenizers.BIGG_FOLDER
    assert sorted(p.name for p in made.iterdir()) == sorted(tokenizers.BIGG_FILES)  # as outputs.txt lists them
    assert (made / "vocab.json").read_bytes() == (clip_l / "vocab.json").read_bytes()
    config = json.loads((made / "tokenizer_config.json").read_text())
    assert config["model_max_length"] == 77 and config["pad_token"] == "!"  # pad id 0, per the SDXL README
    assert json.loads((made / "special_tokens_map.json").read_text())["pad_token"] == "!"
    assert tokenizers.complete(cache, tokenizers.BIGG_FOLDER)
    done = by_name(plan(facts(tmp_path, tokenizer_cache=cache, bigg_needed=True, bigg_cached=True)))
    assert done["CLIP tokenizer cache"].state == OK and "bigG" in done["CLIP tokenizer cache"].detail


def test_empty_cache_for_sdxl_downloads_clip_l_then_makes_bigg(tmp_path: Path) -> None:
    probe = setup_plan.Probe(accelerate="/a", device="cpu", torch="2.13.0")
    item = by_name(plan(facts(tmp_path, tokenizer_cached=False, bigg_needed=True, probe=probe,
                              required=("accelerate", "transformers"))))["CLIP tokenizer cache"]
    assert item.state == FIX and [a.optional for a in item.actions] == [True, False]
    assert "from_pretrained('openai/clip-vit-large-patch14')" in item.actions[0].argv[-1]
    assert tokenizers.BIGG_FOLDER in item.actions[1].argv[-1]
