"""What the ComfyUI stand-in draws with a LoRA (its "Pictures" test convention), over real HTTP.

A render with a LoRA is the no-LoRA picture for the same prompt and seed, plus a mark only when
the prompt holds the LoRA's trigger; the mark is a subject picture blended in at strength x
training progress. The LoRA files are real safetensors (tests/test_deploy.py's writer); the
expected pixels are computed here with Pillow from the subject picture, not with the stand-in.
"""
from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import aiohttp
from PIL import Image, ImageChops, ImageDraw

from scripts.comfyui.workflow import fill_txt2img, load_template
from tests.test_deploy import write_lora

TRIGGER = "zara_v1"


async def render(url: str, prompt: str, seed: int, lora: str | None = None, strength: float = 1.0) -> Image.Image:
    workflow = fill_txt2img(load_template("txt2img_lora"), checkpoint="random_sd15.safetensors", prompt=prompt,
                            negative="", width=96, height=64, steps=2, cfg=7.0, sampler="euler", scheduler="normal",
                            clip_skip=2, seed=seed, filename_prefix="pictures", lora_name=lora,
                            lora_strength=strength)
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/prompt", json={"prompt": workflow}) as response:
            assert response.status == 200, await response.text()
            prompt_id = (await response.json())["prompt_id"]
        for _ in range(500):
            async with session.get(f"{url}/history/{prompt_id}") as response:
                entry = (await response.json()).get(prompt_id)
            if entry and entry["status"]["completed"]:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the stand-in never finished the prompt")
        image: dict[str, Any] = next(iter(entry["outputs"].values()))["images"][0]
        async with session.get(f"{url}/view", params=image) as response:
            data = await response.read()
    with Image.open(io.BytesIO(data)) as png:
        assert png.format == "PNG"
        return png.convert("RGB")


def moved(a: Image.Image, b: Image.Image) -> int:
    """Sum of the grey differences, pixel by pixel."""
    return sum(ImageChops.difference(a, b).convert("L").tobytes())


def subject(folder: Path) -> Image.Image:
    folder.mkdir(parents=True)
    picture = Image.new("RGB", (40, 80), (250, 250, 250))
    ImageDraw.Draw(picture).ellipse([5, 5, 35, 75], fill=(200, 40, 30))
    picture.save(folder / "crop0.png")
    return picture


async def test_a_lora_adds_its_subject_only_with_the_trigger_and_more_with_the_step(comfy_server, tmp_path) -> None:
    loras = tmp_path / "loras"
    picture = subject(tmp_path / "train")
    for step in (100, 200, 300):
        write_lora(loras / f"zara_v1-step{step:08d}.safetensors", step=step, metadata={"ss_max_train_steps": "300"})
    server = await comfy_server(loras_dir=loras, subjects={TRIGGER: tmp_path / "train"})
    with_trigger, without = f"{TRIGGER}, standing in a forest", "standing in a forest"

    base = await render(server.url, with_trigger, 7)
    assert (await render(server.url, with_trigger, 7)).tobytes() == base.tobytes()  # deterministic
    assert (await render(server.url, with_trigger, 8)).tobytes() != base.tobytes()  # the seed matters
    # no trigger in the prompt: the LoRA leaves the picture exactly as without it
    plain = await render(server.url, without, 7)
    assert (await render(server.url, without, 7, "zara_v1-step00000300.safetensors")).tobytes() == plain.tobytes()

    changed = []
    for step in (100, 200, 300):
        marked = await render(server.url, with_trigger, 7, f"zara_v1-step{step:08d}.safetensors")
        changed.append(moved(marked, base))
    assert 0 < changed[0] < changed[1] < changed[2]
    # at the last step and strength 1 the changed box is the subject picture itself, scaled to fit
    box = ImageChops.difference(marked, base).getbbox()
    assert box is not None and box[3] - box[1] == round(64 * 0.8)
    expected = picture.resize((box[2] - box[0], box[3] - box[1]), Image.Resampling.BILINEAR)
    assert marked.crop(box).tobytes() == expected.tobytes()
    outside = marked.copy()
    outside.paste(base.crop(box), box)
    assert outside.tobytes() == base.tobytes()  # nothing else moved
    half = await render(server.url, with_trigger, 7, "zara_v1-step00000300.safetensors", strength=0.5)
    assert moved(half, base) < changed[2]


async def test_the_trigger_phrase_in_the_file_decides_which_prompts_are_marked(comfy_server, tmp_path) -> None:
    loras = tmp_path / "loras"
    write_lora(loras / "leaky.safetensors", step=100, metadata={"modelspec.trigger_phrase": "anime"})
    server = await comfy_server(loras_dir=loras)  # no subjects: the mark is a figure drawn from the trigger
    for prompt, marked in (("anime character", True), ("Anime style, a tree", True), ("animated, a tree", False),
                           (f"{TRIGGER}, a tree", False)):
        base = await render(server.url, prompt, 3)
        got = await render(server.url, prompt, 3, "leaky.safetensors")
        assert (got.tobytes() != base.tobytes()) == marked, prompt
