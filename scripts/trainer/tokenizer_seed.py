"""Fill sd-scripts' CLIP tokenizer cache from a ComfyUI install, so training never needs the hub.

Every ComfyUI install ships the SD 1.x CLIP tokenizer in `comfy/sd1_tokenizer/` (vocab.json,
merges.txt, tokenizer_config.json, special_tokens_map.json): the files
`CLIPTokenizer.from_pretrained` reads from the folder sd-scripts looks in first
(`<tokenizer_cache_dir>/openai_clip-vit-large-patch14`). Copies are atomic; an existing cache is
never touched, so a second setup changes nothing.
"""
from __future__ import annotations

from pathlib import Path

from scripts.common import atomic

COMFY_TOKENIZER = Path("comfy") / "sd1_tokenizer"
NEEDED = ("vocab.json", "merges.txt")


def comfyui_tokenizer(comfyui_dir: Path) -> Path | None:
    """ComfyUI's tokenizer folder when it has the files a tokenizer needs."""
    folder = comfyui_dir.expanduser() / COMFY_TOKENIZER
    return folder if all((folder / name).is_file() for name in NEEDED) else None


def comfyui_problem(comfyui_dir: Path) -> str:
    """Why `comfyui_dir` cannot fill the cache, as the fix setup prints; "" when it can."""
    folder = comfyui_dir.expanduser()
    if comfyui_tokenizer(comfyui_dir) is not None:
        return ""
    if not folder.is_dir():
        return (f"comfyui_dir {folder} does not exist: set comfyui_dir to your ComfyUI (the folder holding main.py; "
                f"setup copies its comfy/sd1_tokenizer)")
    missing = f"{folder / COMFY_TOKENIZER} is missing (or lacks {' or '.join(NEEDED)})"
    if not (folder / "main.py").is_file():
        return f"{missing}: {folder} is not a ComfyUI install? point comfyui_dir at the folder holding main.py"
    return f"{missing}: update that ComfyUI, or point comfyui_dir at one that has it"


def fill_from_comfyui(comfyui_dir: Path, target: Path) -> str | None:
    """Copy ComfyUI's tokenizer files into an empty `target`; a one-line report, or None if nothing was done."""
    if target.is_dir() and any(target.iterdir()):
        return None
    source = comfyui_tokenizer(comfyui_dir)
    if source is None:
        return None
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for path in sorted(source.iterdir()):
        if path.is_file():
            atomic.write_bytes(target / path.name, path.read_bytes())
            copied.append(path.name)
    return f"CLIP tokenizer: copied {', '.join(copied)} from {source} to {target} (training needs no hub)"
