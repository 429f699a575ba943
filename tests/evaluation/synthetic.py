"""Synthetic training runs with known answers, drawn with Pillow (no diffusion model).

A "character" (ginger hair, white cloak, red bracer on its right arm, green boots) is drawn in
poses; the "base model" draws generic figures in muted colours on varied scenes, decided by
(prompt, seed). Checkpoints are made to behave in one known way each:
- under-trained: every render is the baseline render at the same seed, with slight noise;
- good: trigger renders show the character in new poses in the baseline's scene; probes = baseline;
- overtrained: trigger renders are training crops, shifted a pixel and fried (saturated, contrasty);
- leaking: like good, but the probes (no trigger) show the character too.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageEnhance

SIDE = 96
HAIR, CLOAK, BRACER, BOOTS, SKIN = (230, 110, 30), (245, 245, 240), (200, 20, 30), (40, 110, 60), (250, 215, 185)
PROMPTS = ("environment", "novel_pose", "details")
PROBES = ("environment", "novel_pose", "details", "class")
SEEDS = 4


@dataclass(frozen=True)
class Pose:
    x: int
    y: int
    size: int
    lean: int


def draw_character(image: Image.Image, pose: Pose) -> None:
    d = ImageDraw.Draw(image)
    s, x, y, lean = pose.size, pose.x, pose.y, pose.lean
    d.polygon([(x - s // 2, y + s * 2), (x + s // 2, y + s * 2), (x + s // 3 + lean, y + s // 2),
               (x - s // 3 + lean, y + s // 2)], fill=CLOAK)
    d.ellipse([x - s // 3 + lean, y - s // 3, x + s // 3 + lean, y + s // 2], fill=SKIN)
    d.pieslice([x - s // 2 + lean, y - s // 2, x + s // 2 + lean, y + s // 3], 180, 360, fill=HAIR)
    d.rectangle([x + s // 2, y + s, x + s // 2 + s // 4, y + s + s // 3], fill=BRACER)
    d.rectangle([x - s // 3, y + s * 2, x + s // 3, y + s * 2 + s // 4], fill=BOOTS)


def scene(prompt: str, seed: int) -> Image.Image:
    """What the base model draws for (prompt, seed): a muted scene and a generic figure."""
    rng = random.Random(f"{prompt}/{seed}")
    image = Image.new("RGB", (SIDE, SIDE), tuple(rng.randrange(60, 160) for _ in range(3)))
    d = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = rng.randrange(SIDE), rng.randrange(SIDE)
        w, h = rng.randrange(8, 40), rng.randrange(8, 40)
        d.rectangle([x, y, x + w, y + h], fill=tuple(rng.randrange(40, 170) for _ in range(3)))
    x, y = rng.randrange(25, 70), rng.randrange(10, 40)
    figure = tuple(rng.randrange(50, 130) for _ in range(3))
    d.ellipse([x - 8, y - 8, x + 8, y + 8], fill=(170, 140, 120))
    d.rectangle([x - 10, y + 8, x + 10, y + 45], fill=figure)
    return image


def reference_poses(count: int = 6) -> list[Pose]:
    return [Pose(30 + 7 * i, 20 + 3 * (i % 3), 24, (-6, 0, 6)[i % 3]) for i in range(count)]


def reference(pose: Pose) -> Image.Image:
    image = Image.new("RGB", (SIDE, SIDE), (235, 235, 235))
    draw_character(image, pose)
    return image


def noisy(image: Image.Image, seed: str, amount: int = 6) -> Image.Image:
    """The image with seeded noise of up to +-amount on every pixel (grey, so hue is kept)."""
    rng = random.Random(seed)
    noise = Image.frombytes("L", image.size, rng.randbytes(image.width * image.height))
    noise = noise.point(lambda v: v * (2 * amount + 1) // 256).convert("RGB")
    return ImageChops.add(image, noise, 1.0, -amount)


def fried(image: Image.Image) -> Image.Image:
    return ImageEnhance.Contrast(ImageEnhance.Color(image).enhance(2.6)).enhance(1.8)


def new_pose(prompt: str, seed: int) -> Pose:
    rng = random.Random(f"pose/{prompt}/{seed}")
    return Pose(rng.randrange(28, 62), rng.randrange(12, 40), rng.randrange(18, 26), rng.randrange(-10, 11))


def render(behaviour: str, kind: str, prompt: str, seed: int) -> Image.Image:
    """One render of a checkpoint that behaves as `behaviour` ("base" = no LoRA)."""
    base = scene(prompt, seed) if kind == "trigger" or prompt != "class" else scene("class", seed)
    tag = f"{behaviour}/{kind}/{prompt}/{seed}"
    if behaviour == "base":
        return base
    if behaviour == "under":
        return noisy(base, tag)
    if behaviour == "overtrained":
        if kind == "trigger":
            crop = reference(reference_poses()[seed % 6])
            return fried(noisy(crop.transform(crop.size, Image.Transform.AFFINE, (1, 0, -1, 0, 1, 0),
                                              fillcolor=(235, 235, 235)), tag))
        return fried(noisy(base, tag))
    shows = kind == "trigger" or behaviour == "leaking"
    if shows:
        draw_character(base, new_pose(prompt, seed))
    return noisy(base, tag)


def write_run(folder: Path, behaviours: dict[str, str]) -> dict[str, dict[tuple[str, str, int], Path]]:
    """PNG files for the baseline and each checkpoint: {row: {(kind, prompt, seed index): path}}."""
    out: dict[str, dict[tuple[str, str, int], Path]] = {}
    for row, behaviour in {"base": "base", **behaviours}.items():
        files = out.setdefault(row, {})
        for kind, prompts in (("trigger", PROMPTS), ("probe", PROBES)):
            for prompt in prompts:
                for seed in range(SEEDS):
                    path = folder / row / f"{kind}__{prompt}__{seed}.png"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    render(behaviour, kind, prompt, seed).save(path)
                    files[(kind, prompt, seed)] = path
    return out


def write_references(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, pose in enumerate(reference_poses()):
        path = folder / f"crop{i}.png"
        reference(pose).save(path)
        paths.append(path)
    return paths
