"""Draw the bundled example character's reference sheets, deterministically, with Pillow.

Owns the art of `dataset/example/`: Ember, a simple figure with ginger hair, a white cloak, a gold
bracer on the right forearm and a steel pauldron on the left knee (one-sided marks, so the
character is asymmetric), drawn in several poses, views, framings and expressions. One sheet is
2816x1536 like the seed's wide sheet; the others are 1024x1024. Every sheet has a title line;
the lineup's guard holds a long blade high above the head (the box the example first shipped with
cut it and a foot; `invoke boxes --fix-cuts` widened it), and `ember_more.png`, on light grey, has
no table entries yet (`invoke boxes --write-proposals` adds them). The same Pillow version draws the
same bytes every time; a sheet whose file already holds exactly those bytes is left alone, and
new files are written atomically. The crop boxes in `dataset/example/character.toml` refer to the
panels laid out here (`PANELS`), so change both together.
"""
from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from scripts.common import atomic, interrupts
from scripts.imaging.fonts import label_font

DEFAULT_OUT = Path("dataset/example")
WHITE = (255, 255, 255)
SKIN = (246, 208, 176)
HAIR = (222, 108, 38)
HAIR_DARK = (168, 70, 22)
CLOAK = (250, 250, 252)
CLOAK_LINE = (128, 132, 146)
TUNIC = (44, 56, 98)
TROUSERS = (64, 58, 76)
BOOTS = (92, 60, 38)
BRACER = (212, 160, 40)
BRACER_LINE = (120, 84, 10)
PAULDRON = (96, 126, 166)
PAULDRON_LINE = (40, 56, 84)
STEEL = (176, 182, 194)
INK = (30, 26, 30)

Point = tuple[float, float]
Limb = tuple[Point, Point, Point]  # joint, middle joint (elbow/knee), end (hand/foot)


@dataclass(frozen=True)
class Pose:
    """Joint positions in figure units: x from the centre line, y from the top, height 100.

    `right_*` are the character's right side (the viewer's left in a front view).
    """

    right_arm: Limb
    left_arm: Limb
    right_leg: Limb
    left_leg: Limb
    drop: float = 0.0  # how far the upper body sinks (crouch, kneel)
    lean: float = 0.0  # sideways shift of the head and shoulders
    sword: tuple[Point, Point] | None = None  # hilt, tip
    cloak_sway: float = 0.0


POSES: dict[str, Pose] = {
    "stand": Pose(((-10, 22), (-13, 37), (-14, 51)), ((10, 22), (13, 37), (14, 51)),
                  ((-5, 52), (-6, 74), (-6, 96)), ((5, 52), (6, 74), (6, 96))),
    "walk": Pose(((-10, 22), (-16, 36), (-20, 48)), ((10, 22), (12, 37), (9, 50)),
                 ((-5, 52), (-11, 73), (-15, 95)), ((5, 52), (8, 74), (12, 96)), cloak_sway=-5),
    "rest": Pose(((-10, 22), (-20, 33), (-8, 46)), ((10, 22), (14, 37), (15, 50)),
                 ((-5, 52), (-4, 74), (-2, 96)), ((5, 52), (9, 74), (13, 96))),
    "guard": Pose(((-10, 22), (-20, 32), (-26, 40)), ((10, 22), (4, 34), (-22, 40)),
                  ((-5, 52), (-16, 72), (-24, 96)), ((5, 52), (16, 72), (22, 96)),
                  drop=3, sword=((-24, 40), (-44, 8))),
    "slash": Pose(((-10, 22), (-16, 10), (-8, 2)), ((10, 22), (14, 10), (-4, 3)),
                  ((-5, 52), (-18, 70), (-28, 96)), ((5, 52), (14, 76), (26, 94)),
                  lean=-3, sword=((-6, 2), (30, -18)), cloak_sway=8),
    "jump": Pose(((-10, 22), (-20, 12), (-26, 0)), ((10, 22), (20, 12), (26, 0)),
                 ((-5, 52), (-14, 64), (-10, 82)), ((5, 52), (14, 66), (12, 84)), cloak_sway=-4),
    "kick": Pose(((-10, 22), (-22, 28), (-32, 30)), ((10, 22), (18, 30), (24, 40)),
                 ((-5, 52), (-6, 74), (-8, 96)), ((5, 52), (22, 50), (42, 46)), lean=-4, cloak_sway=-6),
    "run": Pose(((-10, 22), (-4, 36), (4, 30)), ((10, 22), (18, 30), (26, 22)),
                ((-5, 52), (-20, 62), (-30, 80)), ((5, 52), (12, 72), (4, 94)), lean=4, cloak_sway=-12),
    "kneel": Pose(((-10, 22), (-14, 36), (-10, 48)), ((10, 22), (16, 34), (18, 46)),
                  ((-5, 52), (-14, 60), (-18, 78)), ((5, 52), (16, 54), (16, 78)), drop=18),
    "guard_high": Pose(((-10, 22), (-20, 32), (-26, 40)), ((10, 22), (4, 34), (-22, 40)),
                       ((-5, 52), (-16, 72), (-24, 96)), ((5, 52), (16, 72), (22, 96)),
                       drop=3, sword=((-24, 40), (-30, -28))),  # a long blade reaching high above the head
    "lunge": Pose(((-10, 22), (-22, 24), (-36, 22)), ((10, 22), (20, 26), (30, 24)),
                  ((-5, 52), (-22, 66), (-34, 94)), ((5, 52), (16, 72), (34, 96)),
                  drop=4, sword=((-36, 22), (-48, -6)), cloak_sway=10),
}
EXPRESSIONS = ("neutral", "determined", "angry", "surprised", "calm")


def _at(origin: Point, unit: float, point: Point, drop: float = 0.0, lean: float = 0.0, mirror: bool = False) -> Point:
    x = (-point[0] if mirror else point[0]) + lean
    return (origin[0] + x * unit, origin[1] + (point[1] + drop) * unit)


def _limb(draw: ImageDraw.ImageDraw, points: Sequence[Point], width: float, colour: tuple[int, int, int],
          end_colour: tuple[int, int, int]) -> None:
    w = max(1, int(width))
    draw.line([tuple(map(round, p)) for p in points], fill=colour, width=w, joint="curve")
    for p in points[1:2]:
        r = w / 2
        draw.ellipse((p[0] - r, p[1] - r, p[0] + r, p[1] + r), fill=colour)
    end = points[-1]
    r = w * 0.62
    draw.ellipse((end[0] - r, end[1] - r, end[0] + r, end[1] + r), fill=end_colour)


def _lerp(a: Point, b: Point, t: float) -> Point:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)


def draw_face(draw: ImageDraw.ImageDraw, centre: Point, unit: float, expression: str) -> None:
    cx, cy = centre
    eye_w = max(2, int(unit * 0.7))
    for side in (-1, 1):
        ex = cx + side * 2.8 * unit
        ey = cy + 0.5 * unit
        if expression == "calm":
            draw.arc((ex - 1.4 * unit, ey - 1.0 * unit, ex + 1.4 * unit, ey + 1.0 * unit), 200, 340,
                     fill=INK, width=eye_w)
        elif expression == "surprised":
            draw.ellipse((ex - 1.2 * unit, ey - 1.5 * unit, ex + 1.2 * unit, ey + 1.5 * unit),
                         fill=WHITE, outline=INK, width=eye_w)
            draw.ellipse((ex - 0.5 * unit, ey - 0.5 * unit, ex + 0.5 * unit, ey + 0.5 * unit), fill=INK)
        else:
            draw.ellipse((ex - 1.0 * unit, ey - 1.2 * unit, ex + 1.0 * unit, ey + 1.2 * unit), fill=(60, 120, 70))
            draw.ellipse((ex - 0.45 * unit, ey - 0.6 * unit, ex + 0.45 * unit, ey + 0.6 * unit), fill=INK)
        # brows: the inner end (towards the centre line) is lower when angry or determined
        inner_drop = {"angry": 1.4, "determined": 0.7, "surprised": -0.8, "calm": -0.2}.get(expression, 0.0)
        outer = (cx + side * 4.2 * unit, cy - 2.0 * unit - (1.0 if expression == "surprised" else 0) * unit)
        inner = (cx + side * 1.4 * unit, cy - 2.0 * unit + inner_drop * unit)
        draw.line([outer, inner], fill=HAIR_DARK, width=eye_w)
    my = cy + 4.0 * unit
    if expression == "surprised":
        draw.ellipse((cx - 1.0 * unit, my - 1.2 * unit, cx + 1.0 * unit, my + 1.2 * unit),
                     fill=(120, 40, 40), outline=INK)
    elif expression == "angry":
        draw.arc((cx - 2.0 * unit, my - 0.2 * unit, cx + 2.0 * unit, my + 2.2 * unit), 200, 340, fill=INK, width=eye_w)
    elif expression == "calm":
        draw.arc((cx - 1.8 * unit, my - 1.6 * unit, cx + 1.8 * unit, my + 0.6 * unit), 20, 160, fill=INK, width=eye_w)
    elif expression == "determined":
        draw.line([(cx - 1.8 * unit, my + 0.3 * unit), (cx + 1.8 * unit, my - 0.2 * unit)], fill=INK, width=eye_w)
    else:
        draw.line([(cx - 1.4 * unit, my), (cx + 1.4 * unit, my)], fill=INK, width=eye_w)


def draw_figure(image: Image.Image, origin: Point, height: float, pose_name: str, expression: str,
                back: bool = False) -> None:
    """Draw Ember with the top of the head at `origin` (centre x, top y), `height` pixels tall.

    In a back view the figure is mirrored: the character's right side is on the viewer's right.
    """
    pose = POSES[pose_name]
    unit = height / 100
    draw = ImageDraw.Draw(image)
    mirror = back

    def at(point: Point, upper: bool = True) -> Point:
        return _at(origin, unit, point, pose.drop if upper else 0.0, pose.lean if upper else 0.0, mirror)

    def leg(point: Point, is_hip: bool) -> Point:
        return _at(origin, unit, point, pose.drop if is_hip else 0.0, pose.lean if is_hip else 0.0, mirror)

    # the cloak hangs behind the body; in a back view it covers the back down to above the knees
    sway = pose.cloak_sway * (-1 if mirror else 1)
    hem = 64 if back else 80
    cloak = [at((-11, 19)), at((11, 19)), at((19 + sway, hem)), at((4 + sway, hem + 4)), at((-19 + sway, hem))]

    def draw_cloak() -> None:
        draw.polygon([tuple(map(round, p)) for p in cloak], fill=CLOAK, outline=CLOAK_LINE,
                     width=max(2, int(unit * 0.5)))
        if back:
            for dx in (-6, 0, 6):
                draw.line([at((dx * 0.6, 24)), at((dx + sway * 0.5, hem))], fill=CLOAK_LINE,
                          width=max(1, int(unit * 0.3)))

    if not back:
        draw_cloak()

    # legs, then torso, then arms (the near arm last)
    for name, limb in (("right", pose.right_leg), ("left", pose.left_leg)):
        points = [leg(limb[0], True), leg(limb[1], False), leg(limb[2], False)]
        _limb(draw, points, 6 * unit, TROUSERS, BOOTS)
        if name == "left":  # the pauldron on the left knee
            kx, ky = points[1]
            draw.rounded_rectangle((kx - 4.6 * unit, ky - 4.0 * unit, kx + 4.6 * unit, ky + 3.6 * unit),
                                   radius=2 * unit, fill=PAULDRON, outline=PAULDRON_LINE, width=max(2, int(unit * 0.6)))
            draw.line([(kx - 3 * unit, ky - 0.4 * unit), (kx + 3 * unit, ky - 0.4 * unit)], fill=PAULDRON_LINE,
                      width=max(1, int(unit * 0.4)))
    torso = [at((-10, 19)), at((10, 19)), at((7, 53)), at((-7, 53))]
    draw.polygon([tuple(map(round, p)) for p in torso], fill=TUNIC, outline=INK)
    belt_y = at((0, 46))[1]
    draw.rectangle((at((-8, 46))[0], belt_y, at((8, 46))[0], belt_y + 2.4 * unit) if not mirror else
                   (at((8, 46))[0], belt_y, at((-8, 46))[0], belt_y + 2.4 * unit), fill=BOOTS)
    if back:
        draw_cloak()
    if pose.sword:
        hilt, tip = at(pose.sword[0]), at(pose.sword[1])
        draw.line([hilt, tip], fill=STEEL, width=max(2, int(1.8 * unit)))
        guard = _lerp(hilt, tip, 0.08)
        draw.ellipse((guard[0] - 2 * unit, guard[1] - 2 * unit, guard[0] + 2 * unit, guard[1] + 2 * unit),
                     fill=BRACER_LINE)
    for name, limb in (("left", pose.left_arm), ("right", pose.right_arm)):
        points = [at(p) for p in limb]
        _limb(draw, points, 4.6 * unit, TUNIC, SKIN)
        if name == "right":  # the bracer on the right forearm
            start, end = _lerp(points[1], points[2], 0.25), _lerp(points[1], points[2], 0.8)
            draw.line([start, end], fill=BRACER_LINE, width=max(3, int(6.4 * unit)))
            draw.line([start, end], fill=BRACER, width=max(2, int(5.0 * unit)))
    # head: hair behind, face, hair on top
    head = at((0, 9))
    r = 7.2 * unit
    draw.rectangle((head[0] - 1.6 * unit, head[1] + 5 * unit, head[0] + 1.6 * unit, head[1] + 10 * unit), fill=SKIN)
    draw.ellipse((head[0] - r - 1.2 * unit, head[1] - r - 1.0 * unit, head[0] + r + 1.2 * unit, head[1] + r * 0.6),
                 fill=HAIR)
    if back:
        draw.ellipse((head[0] - r, head[1] - r, head[0] + r, head[1] + r), fill=HAIR, outline=HAIR_DARK,
                     width=max(2, int(unit * 0.5)))
        for i in range(-2, 3):
            draw.line([(head[0] + i * 2.4 * unit, head[1] - r * 0.6), (head[0] + i * 3.0 * unit, head[1] + r * 1.05)],
                      fill=HAIR_DARK, width=max(1, int(unit * 0.5)))
        return
    draw.ellipse((head[0] - r, head[1] - r, head[0] + r, head[1] + r), fill=SKIN, outline=INK,
                 width=max(1, int(unit * 0.3)))
    spikes = [(head[0] + dx * unit, head[1] + dy * unit) for dx, dy in
              ((-8.6, 1), (-9.6, -6), (-6, -4), (-5, -10), (-1, -6), (1.5, -11.5), (4, -6), (7.5, -9.5),
               (6.5, -3.5), (9.6, -4.5), (8.6, 1), (6, -2.5), (1, -3.8), (-4, -2.4))]
    draw.polygon(spikes, fill=HAIR, outline=HAIR_DARK)
    draw_face(draw, (head[0], head[1] + 1.2 * unit), unit, expression)


@dataclass(frozen=True)
class Figure:
    """One figure on a sheet: drawn on its own panel (clipped there), then pasted at `panel[:2]`."""

    panel: tuple[int, int, int, int]  # left, top, width, height on the sheet
    pose: str
    expression: str
    height: float  # figure height in pixels; larger than the panel for busts and closeups
    top: float  # where the head's top sits inside the panel
    x: float = 0.5  # centre line as a share of the panel width
    back: bool = False


@dataclass(frozen=True)
class Sheet:
    """`clip`: each figure is cut to its panel (busts, closeups); otherwise drawn whole on the sheet."""

    name: str
    size: tuple[int, int]
    title: str
    figures: tuple[Figure, ...]
    background: tuple[int, int, int] = WHITE
    clip: bool = True


SHEETS: tuple[Sheet, ...] = (
    Sheet("ember_lineup.png", (2816, 1536), "EMBER - turnaround and poses", (
        Figure((0, 80, 560, 1456), "stand", "neutral", 1280, 110),
        Figure((560, 80, 560, 1456), "walk", "determined", 1240, 130, x=0.55),
        Figure((1120, 80, 560, 1456), "guard_high", "angry", 950, 300, x=0.6),
        Figure((1680, 80, 560, 1456), "stand", "calm", 1250, 90, x=0.55, back=True),
        Figure((2240, 80, 576, 1456), "slash", "determined", 920, 400, x=0.52),
    ), clip=False),
    Sheet("ember_action.png", (1024, 1024), "EMBER - action", (
        Figure((0, 40, 512, 984), "jump", "surprised", 760, 150),
        Figure((512, 40, 512, 984), "kick", "angry", 640, 180, x=0.42),
    )),
    Sheet("ember_views.png", (1024, 1024), "EMBER - rest and run", (
        Figure((0, 40, 512, 984), "rest", "calm", 930, 30),
        Figure((512, 40, 512, 984), "run", "determined", 760, 120, x=0.5),
    )),
    Sheet("ember_poses.png", (1024, 1024), "EMBER - kneel and lunge", (
        Figure((0, 40, 512, 984), "kneel", "neutral", 900, 60, x=0.52),
        Figure((512, 40, 512, 984), "lunge", "angry", 600, 300, x=0.43, back=True),
    )),
    Sheet("ember_faces.png", (1024, 1024), "EMBER - expressions", (
        Figure((0, 40, 512, 472), "stand", "neutral", 1300, 50),
        Figure((512, 40, 512, 472), "guard", "determined", 1200, 60, x=0.62),
        Figure((0, 532, 512, 472), "rest", "surprised", 1300, 50),
        Figure((512, 532, 512, 236), "stand", "calm", 1000, 36),
        Figure((512, 788, 512, 236), "slash", "angry", 1000, 50, x=0.5),
    )),
    Sheet("ember_more.png", (1024, 1024), "EMBER - more poses (not in the table yet)", (
        Figure((0, 60, 512, 964), "walk", "calm", 760, 120, x=0.5, back=True),
        Figure((512, 60, 512, 964), "lunge", "determined", 620, 260, x=0.5),
    ), background=(226, 226, 230), clip=False),
)


def draw_sheet(sheet: Sheet) -> Image.Image:
    image = Image.new("RGB", sheet.size, sheet.background)
    ink = (150, 150, 150) if sheet.background == WHITE else (110, 110, 116)
    ImageDraw.Draw(image).text((16, 8), sheet.title, fill=ink, font=label_font(24))
    for figure in sheet.figures:
        left, top, width, height = figure.panel
        if not sheet.clip:
            draw_figure(image, (left + width * figure.x, top + figure.top), figure.height, figure.pose,
                        figure.expression, figure.back)
            continue
        panel = Image.new("RGB", (width, height), sheet.background)
        draw_figure(panel, (width * figure.x, figure.top), figure.height, figure.pose, figure.expression, figure.back)
        image.paste(panel, (left, top))
    return image


def encode(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


def write_sheets(out: Path, sheets: Sequence[Sheet] = SHEETS) -> tuple[list[Path], list[Path]]:
    """Draw every sheet into `out`; return (written, unchanged)."""
    written, unchanged = [], []
    for sheet in sheets:
        target = out / sheet.name
        data = encode(draw_sheet(sheet))
        if target.is_file() and target.read_bytes() == data:
            unchanged.append(target)
            continue
        atomic.write_bytes(target, data)
        written.append(target)
    return written, unchanged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.example_art",
        description="Draw the example character's reference sheets (deterministic, no network).")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"folder for the sheets (default: {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    try:
        written, unchanged = write_sheets(args.out)
    except OSError as error:
        print(f"error: cannot write the example sheets into {args.out} ({error.strerror or error}); "
              f"check that the folder is writable or pass another --out.", file=sys.stderr)
        return 1
    for path in written:
        print(f"drew {path}")
    print(f"{len(written)} sheets drawn, {len(unchanged)} already up to date in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(interrupts.run_main("example-art", main))
