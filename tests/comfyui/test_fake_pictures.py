"""What the ComfyUI stand-in draws with a LoRA (its "Pictures" test convention), over real HTTP.

A render with a LoRA is the no-LoRA picture for the same prompt and seed, plus a mark: a subject
picture blended in at strength x training progress when the prompt holds the LoRA's trigger, and
at 4 % of that when it does not (close to the baseline, still its own picture). The LoRA files
are real safetensors (tests/test_deploy.py's writer); the expected pixels and weights are computed
here with Pillow from the subject picture and the files' step numbers, not with the stand-in.
"""
from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import aiohttp
import pytest
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


def weight(marked: Image.Image, base: Image.Image) -> float:
    """How much of the subject's red (200, 40, 30) is blended in at the centre of the changed box."""
    box = ImageChops.difference(marked, base).getbbox()
    assert box is not None, "no mark"
    centre = ((box[0] + box[2]) // 2, (box[1] + box[3]) // 2)
    got, was = marked.getpixel(centre), base.getpixel(centre)
    assert isinstance(got, tuple) and isinstance(was, tuple)
    channel = max(range(3), key=lambda c: abs((200, 40, 30)[c] - was[c]))
    return (got[channel] - was[channel]) / ((200, 40, 30)[channel] - was[channel])


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
    # no trigger in the prompt: the LoRA nudges the picture, at 4 % of the weight, and nothing else
    plain = await render(server.url, without, 7)
    nudged = await render(server.url, without, 7, "zara_v1-step00000300.safetensors")
    assert weight(nudged, plain) == pytest.approx(0.04, abs=0.015)
    assert max(ImageChops.difference(nudged, plain).getextrema(), key=lambda e: e[1])[1] <= round(0.04 * 255) + 1

    # the mark is blended in at strength x ss_steps / ss_max_train_steps: read the weight back at the
    # centre of the changed box, where the subject picture is its ellipse's red
    for step in (100, 200, 300):
        for strength in (1.0, 0.5):
            marked = await render(server.url, with_trigger, 7, f"zara_v1-step{step:08d}.safetensors", strength)
            assert weight(marked, base) == pytest.approx(strength * step / 300, abs=0.02), (step, strength)
    # at the last step and strength 1 the changed box is the subject picture itself, scaled to fit
    marked = await render(server.url, with_trigger, 7, "zara_v1-step00000300.safetensors")
    box = ImageChops.difference(marked, base).getbbox()
    assert box is not None and box[3] - box[1] == round(64 * 0.8)
    expected = picture.resize((box[2] - box[0], box[3] - box[1]), Image.Resampling.BILINEAR)
    assert marked.crop(box).tobytes() == expected.tobytes()
    outside = marked.copy()
    outside.paste(base.crop(box), box)
    assert outside.tobytes() == base.tobytes()  # nothing else moved
    # two checkpoints at full weight still differ: the spot depends on the LoRA file too
    write_lora(loras / "zara_v1.safetensors", step=300, metadata={"ss_max_train_steps": "300"})
    final = await render(server.url, with_trigger, 7, "zara_v1.safetensors")
    assert weight(final, base) == pytest.approx(1.0, abs=0.02) and final.tobytes() != marked.tobytes()

async def test_the_trigger_phrase_in_the_file_decides_which_prompts_are_marked(comfy_server, tmp_path) -> None:
    loras = tmp_path / "loras"
    write_lora(loras / "leaky.safetensors", step=100, metadata={"modelspec.trigger_phrase": "anime"})
    subject(tmp_path / "anime")
    server = await comfy_server(loras_dir=loras, subjects={"anime": tmp_path / "anime"})
    for prompt, called in (("anime character", True), ("Anime style, a tree", True), ("animated, a tree", False),
                           (f"{TRIGGER}, a tree", False)):
        base = await render(server.url, prompt, 3)
        got = await render(server.url, prompt, 3, "leaky.safetensors")
        assert weight(got, base) == pytest.approx(1.0 if called else 0.04, abs=0.015), prompt
