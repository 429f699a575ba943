"""Grid layout maths, the rendered PNG (pixel checks) and index.html."""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from scripts.imaging.grid import Cell, Column, cell_size, plan_layout, render_grid, render_html, write_html


def fixed_text(text: str) -> tuple[int, int]:
    return 7 * len(text), 12


def solid(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (64, 64)) -> Path:
    Image.new("RGB", size, colour).save(path)
    return path


@pytest.mark.parametrize("size, expected", [((512, 512), (384, 384)), ((64, 64), (64, 64)),
                                            ((768, 512), (384, 256)), ((100, 400), (96, 384))])
def test_cell_size_only_shrinks(size, expected) -> None:
    assert cell_size(size) == expected


def test_layout_boxes_tile_without_overlap_inside_the_canvas() -> None:
    rows = ["no LoRA", "step 100", "step 200", "final (step 920)"]
    columns = [Column("environment", "seed 1001"), Column("novel_pose", "seed 1002"), Column("x", "seed 3")]
    layout = plan_layout(rows, columns, (64, 64), fixed_text, title="t")
    width, height = layout.size
    assert layout.label_w >= 7 * len("final (step 920)")  # the longest row label fits
    assert layout.col_w >= 7 * len("environment")  # a header wider than the cell widens the slot
    boxes = [layout.cell_box(r, c) for r in range(4) for c in range(3)]
    for left, top, right, bottom in boxes:
        assert right - left == 64 and bottom - top == 64
        assert left >= layout.label_w and top >= layout.title_h + layout.header_h
        assert right <= width and bottom <= height
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
    # rows go down, columns go right, in order
    assert layout.cell_box(1, 0)[1] > layout.cell_box(0, 0)[1]
    assert layout.cell_box(0, 1)[0] > layout.cell_box(0, 0)[0]
    assert layout.row_label_box(2)[1] == layout.cell_box(2, 1)[1]


def test_two_header_lines_only_when_a_column_has_a_sublabel() -> None:
    one = plan_layout(["a"], [Column("p")], (64, 64), fixed_text)
    two = plan_layout(["a"], [Column("p", "strength 0.8")], (64, 64), fixed_text)
    assert two.header_h > one.header_h and one.title_h == 0


def test_empty_grid_is_an_error() -> None:
    with pytest.raises(ValueError):
        plan_layout([], [Column("p")], (64, 64), fixed_text)


def test_rendered_grid_puts_each_image_in_its_cell_with_labels(tmp_path: Path) -> None:
    colours = {(0, 0): (255, 0, 0), (0, 1): (0, 255, 0), (1, 0): (0, 0, 255), (1, 1): (255, 255, 0),
               (2, 0): (0, 255, 255)}
    cells = [Cell(r, c, solid(tmp_path / f"{r}{c}.png", colour), prompt=f"p{c}", seed=c)
             for (r, c), colour in colours.items()]
    cells.append(Cell(2, 1, None, note="failed"))
    rows = ["no LoRA", "step 100", "step 200"]
    columns = [Column("environment", "seed 1"), Column("details", "seed 2")]
    target = tmp_path / "out" / "grid.png"
    layout = render_grid(target, rows, columns, cells, title="Zara")
    image = Image.open(target).convert("RGB")
    assert image.size == layout.size
    for (r, c), colour in colours.items():
        left, top, right, bottom = layout.cell_box(r, c)
        assert image.getpixel(((left + right) // 2, (top + bottom) // 2)) == colour
        assert image.getpixel((left + 1, top + 1)) == colour and image.getpixel((right - 2, bottom - 2)) == colour
    left, top, right, bottom = layout.cell_box(2, 1)
    assert image.getpixel((left + 2, top + 2)) == (200, 200, 200)  # the failed cell is a grey box

    def has_text(box: tuple[int, int, int, int]) -> bool:
        darkest, _ = image.crop(box).convert("L").getextrema()
        return darkest < 80

    for r in range(3):
        assert has_text(layout.row_label_box(r))
    for c in range(2):
        assert has_text(layout.column_box(c))
    assert not list(target.parent.glob(".*.tmp"))


def test_large_cells_are_scaled_down_in_the_png(tmp_path: Path) -> None:
    cells = [Cell(0, 0, solid(tmp_path / "big.png", (10, 20, 30), (512, 512)))]
    layout = render_grid(tmp_path / "grid.png", ["step 1"], [Column("p")], cells)
    assert (layout.cell_w, layout.cell_h) == (384, 384)


def test_index_html_shows_every_cell_full_size_with_prompt_seed_and_file(tmp_path: Path) -> None:
    (tmp_path / "cells").mkdir()
    cells = [Cell(0, 0, solid(tmp_path / "cells" / "base__env.png", (1, 2, 3)), prompt="zara, <forest> & rain",
                  negative="lowres", seed=1001, strength=None),
             Cell(1, 0, solid(tmp_path / "cells" / "step1__env.png", (1, 2, 3)), prompt="zara, forest",
                  seed=1001, strength=0.8),
             Cell(1, 1, None, note="failed")]
    page = render_html("Zara grid", ["no LoRA", "step 1"], [Column("env", "seed 1001"), Column("pose")], cells,
                       tmp_path)
    assert '<img src="cells/base__env.png"' in page and '<img src="cells/step1__env.png"' in page
    assert "zara, &lt;forest&gt; &amp; rain" in page and "<forest>" not in page
    assert "<b>seed</b> 1001" in page and "<b>strength</b> 0.8" in page and "<b>negative</b> lowres" in page
    assert page.count("<tr>") == 3 and "failed" in page and 'href="grid.png"' in page
    assert "width=" not in page  # full size: no scaling attribute
    write_html(tmp_path / "index.html", "Zara grid", ["no LoRA", "step 1"], [Column("env"), Column("pose")], cells)
    assert (tmp_path / "index.html").read_text().startswith("<!doctype html>")


def test_a_title_wider_than_a_narrow_grid_wraps_onto_more_lines() -> None:
    title = "Zara (zara_v1) on random_sd15.safetensors: same seed per column"
    columns = [Column("a"), Column("b"), Column("c")]
    layout = plan_layout(["no LoRA", "step 100"], columns, (64, 64), fixed_text, title=title)
    width = layout.size[0]
    assert fixed_text(title)[0] > width  # one line would be clipped at both ends
    assert len(layout.title_lines) >= 3 and " ".join(layout.title_lines) == title
    assert all(fixed_text(line)[0] <= width - 16 for line in layout.title_lines)
    assert layout.title_h == len(layout.title_lines) * (12 + 8) + 8
    wide = plan_layout(["no LoRA"], [Column(f"prompt{i}") for i in range(12)], (64, 64), fixed_text, title=title)
    assert wide.title_lines == (title,)


def test_a_word_longer_than_the_grid_is_cut_not_clipped() -> None:
    from scripts.imaging.grid import wrap
    assert wrap("ab " + "x" * 10, 28, fixed_text) == ["ab", "xxxx", "xxxx", "xx"]


def test_a_spanning_cell_is_centred_across_its_columns_and_spans_in_html(tmp_path: Path) -> None:
    red, blue = solid(tmp_path / "r.png", (255, 0, 0)), solid(tmp_path / "b.png", (0, 0, 255))
    columns = [Column("p", "strength 0.5"), Column("p", "strength 1")]
    cells = [Cell(0, 0, red, span=2), Cell(1, 0, blue), Cell(1, 1, blue)]
    layout = render_grid(tmp_path / "grid.png", ["no LoRA", "step 1"], columns, cells)
    grid = Image.open(tmp_path / "grid.png").convert("RGB")
    left, top, right, bottom = layout.cell_box(0, 0, 2)
    assert (left + right) // 2 == (layout.column_box(0)[0] + layout.column_box(1)[2]) // 2
    assert grid.getpixel((left + 1, top + 1)) == (255, 0, 0) and grid.getpixel((right - 1, bottom - 1)) == (255, 0, 0)
    assert grid.getpixel((layout.cell_box(0, 0)[0] + 1, top + 1)) != (255, 0, 0)  # not in the first slot's place
    page = render_html("t", ["no LoRA", "step 1"], columns, cells, tmp_path)
    first_row = page.split("<tr><th>no LoRA</th>")[1].split("</tr>")[0]
    assert first_row.count("<td") == 1 and '<td colspan="2"><img src="r.png"' in first_row
