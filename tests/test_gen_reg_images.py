"""gen-reg keeps only what it asked for: a returned image that is not a PNG of the requested size is
refused (never saved, recorded as failed with the reason) and the next run renders it again."""
from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from scripts import gen_reg
from scripts.comfyui.workflow import seed_of
from tests.test_gen_reg import SIZE, config, make_character, reg_state


def shrink(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        out = io.BytesIO()
        image.resize((SIZE // 2, SIZE // 2)).save(out, format="PNG")
    return out.getvalue()


def as_jpeg(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        out = io.BytesIO()
        image.convert("RGB").save(out, format="JPEG")
    return out.getvalue()


def spoil_first_outputs(fake: Any, count: int, spoil: Callable[[bytes], bytes]) -> None:
    """The next `count` images the server saves come out spoiled (as a misconfigured workflow or
    an upscaler node would); the server reports them as ordinary outputs."""
    original = fake._save_images
    left = [count]

    def save(images: Any, prefix: str, prompt: Any, extra: Any) -> dict[str, Any]:
        outputs = original(images, prefix, prompt, extra)
        for ref in outputs["images"]:
            key = ("output", ref["subfolder"], ref["filename"])
            if left[0] > 0 and key in fake.images:
                left[0] -= 1
                fake.images[key] = spoil(fake.images[key])
        return outputs

    fake._save_images = save


@pytest.mark.parametrize(("spoil", "reason"), [(shrink, f"{SIZE // 2}x{SIZE // 2} instead of {SIZE}x{SIZE}"),
                                                (as_jpeg, "JPEG image, not PNG")])
async def test_a_wrong_image_is_refused_and_the_next_run_redoes_it(comfy_server: Any, tmp_path: Path,
                                                                    spoil: Callable[[bytes], bytes],
                                                                    reason: str) -> None:
    folder = make_character(tmp_path)
    out = folder / "reg" / "1_anime_character"
    fake = await comfy_server(service_time=0.002)
    spoil_first_outputs(fake, 2, spoil)
    stream = io.StringIO()
    assert await gen_reg.run(config(folder, [fake.url], count=4, retries=0), stream) == 1
    files, lines = reg_state(folder)
    assert len(files) == 2  # only the good ones were saved
    for name in files:
        with Image.open(out / name) as image:
            assert image.format == "PNG" and image.size == (SIZE, SIZE)
    failed = [line for line in lines if line["status"] == "failed"]
    assert len(failed) == 2 and all(reason in line["error"] for line in failed)
    assert not (set(files) & {line["file"] for line in failed})
    assert "run again" in stream.getvalue() and reason in stream.getvalue()

    again = await comfy_server(service_time=0.002)
    assert await gen_reg.run(config(folder, [again.url], count=4), io.StringIO()) == 0
    assert sorted(seed_of(p["prompt"]) for p in again.state.posts) == sorted(line["seed"] for line in failed)
    files, _ = reg_state(folder)
    assert files == [f"reg_{i:03d}.png" for i in range(1, 5)]
    for name in files:
        with Image.open(out / name) as image:
            assert image.format == "PNG" and image.size == (SIZE, SIZE)
