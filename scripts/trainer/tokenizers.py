"""The offline tokenizer cache sd-scripts reads: CLIP-L for every family, plus OpenCLIP bigG's for SDXL.

sd-scripts looks for `<tokenizer_cache_dir>/<hub repo id with / -> _>/` (library/strategy_base.py
`_load_tokenizer`) and otherwise downloads; offline without the bigG folder the SDXL trainer dies
with `TypeError: expected str, bytes or os.PathLike object, not NoneType`
(../shared/fixtures/sd-scripts-sdxl/fail_missing_tokenizer2.log). The bigG tokenizer has the same
vocab.json / merges.txt as CLIP-L, declares pad token `!` (id 0) and model_max_length 77; the
recording's scripts/make_tok2.py made it from the CLIP-L folder that way, and so does `bigg_code`,
without network. `bigg_code` returns a stdlib-only Python program for setup to run as an action.
"""
from __future__ import annotations

from pathlib import Path

CLIP_L_REPO = "openai/clip-vit-large-patch14"
BIGG_REPO = "laion/CLIP-ViT-bigG-14-laion2B-39B-b160k"
CLIP_L_FOLDER = CLIP_L_REPO.replace("/", "_")
BIGG_FOLDER = BIGG_REPO.replace("/", "_")
BIGG_FILES = ("vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json")


def folders(family: str | None) -> tuple[str, ...]:
    """Cache folders a family's trainer reads."""
    return (CLIP_L_FOLDER, BIGG_FOLDER) if family == "sdxl" else (CLIP_L_FOLDER,)


def complete(cache: Path, folder: str) -> bool:
    path = cache / folder
    if folder == BIGG_FOLDER:
        return all((path / name).is_file() for name in BIGG_FILES)
    return path.is_dir() and any(path.iterdir())


def bigg_code(cache: Path) -> str:
    """Python source (stdlib only) that writes the bigG folder from the CLIP-L one, each file by temp + rename."""
    src, dst = str(cache / CLIP_L_FOLDER), str(cache / BIGG_FOLDER)
    return f"""import json, os, shutil
src, dst = {src!r}, {dst!r}
os.makedirs(dst, exist_ok=True)
def put(name, write):
    temp = os.path.join(dst, "." + name + ".tmp")
    write(temp)
    os.replace(temp, os.path.join(dst, name))
for name in ("vocab.json", "merges.txt"):
    put(name, lambda temp, name=name: shutil.copyfile(os.path.join(src, name), temp))
tok = lambda s: {{"content": s, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}}
special = {{"bos_token": tok("<|startoftext|>"), "eos_token": tok("<|endoftext|>"), "pad_token": "!",
           "unk_token": tok("<|endoftext|>")}}
config = {{"add_prefix_space": False, "do_lower_case": True, "errors": "replace", "model_max_length": 77,
          "name_or_path": {BIGG_REPO!r}, "pad_token": "!", "bos_token": tok("<|startoftext|>"),
          "eos_token": tok("<|endoftext|>"), "unk_token": tok("<|endoftext|>"), "tokenizer_class": "CLIPTokenizer"}}
for name, data in (("special_tokens_map.json", special), ("tokenizer_config.json", config)):
    put(name, lambda temp, data=data: open(temp, "w").write(json.dumps(data, indent=2)))
print("wrote", dst)
"""


def missing_for(family: str, cache: Path) -> str | None:
    """Why a run of `family` would die offline on the tokenizer cache (None: it will not).

    Only the recorded case is refused: a cache holding CLIP-L but not bigG (an SD 1.5-only cache) fails the
    SDXL trainer with an unhelpful TypeError; an empty cache means sd-scripts downloads both (online)."""
    if family != "sdxl" or not complete(cache, CLIP_L_FOLDER) or complete(cache, BIGG_FOLDER):
        return None
    return (f"the tokenizer cache {cache} holds CLIP-L ({CLIP_L_FOLDER}) but not SDXL's second tokenizer "
            f"({BIGG_FOLDER}); offline, sdxl_train_network.py would stop with `TypeError: expected str, bytes or "
            f"os.PathLike object, not NoneType`. Run `invoke setup --character <name>`: it makes that folder "
            f"from the CLIP-L one without network")
