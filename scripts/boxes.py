"""Show every crop box on its reference sheet, find the figures no box covers, and the boxes that cut one.

For each sheet of `dataset/<character>/` (the images at the top of the folder, and every source a
boxed `[[crop]]` names) this finds the figures (`scripts.imaging.figures`), matches each table
box to the figure it overlaps most, and writes `boxes/<sheet>.png`: the sheet with every table
box labelled with its crop's name (red, with a thick mark on the cut side, when it cuts its
figure), every figure no table box covers in orange with its number, and dropped text lines in
grey (drawn by `scripts.imaging.overlay`). It prints one table per sheet. Only `full_body` crops
are checked for cuts: a bust or a closeup cuts its figure on purpose.

`--write-proposals` appends the uncovered figures as `[[crop]]` entries (name, source, box, a
framing guess; caption, pose, expression left as TODO comments); `--fix-cuts` widens each cutting
box to its figure's box and prints old -> new. Both edit the table's text (`scripts.table.toml_edit`),
keeping every comment and entry, and write it atomically. Exit 1 while a box still cuts a figure.
"""
from __future__ import annotations

import argparse
import io
import re
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from PIL import Image, UnidentifiedImageError

from scripts.common import atomic
from scripts.common.settings import SettingsError, add_settings_arguments, settings_from_args
from scripts.imaging.cuts import Cut, best_figure, covers, find_cuts, iou, widen
from scripts.imaging.figures import Scan, find_figures, guess_framing
from scripts.imaging.geometry import Box, check_box, format_box
from scripts.imaging.overlay import Marked, draw_overlay
from scripts.table.character import TABLE_NAME
from scripts.table.entries import Entry, crop_entries
from scripts.table.toml_edit import NewEntry, TomlEditError, append_entries, replace_box, unique_name

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}
OVERLAY_DIR = "boxes"
SMALL_WIDTH = 960


class BoxesError(ValueError):
    """The character folder or table cannot be read; the message names it and the fix."""


@dataclass(frozen=True)
class Row:
    entry: Entry
    figure: int | None  # index into the sheet's figures
    match: float  # IoU with that figure's padded box
    cuts: tuple[Cut, ...]
    checked: bool  # False for busts and closeups, which cut on purpose


@dataclass(frozen=True)
class SheetReport:
    source: str
    scan: Scan
    rows: tuple[Row, ...]
    uncovered: tuple[int, ...]  # indexes of figures no table box covers


# --- pure -----------------------------------------------------------------------------------------

def assess(source: str, scan: Scan, entries: Sequence[Entry]) -> SheetReport:
    """Match each boxed entry of this sheet to a figure; find cuts and the uncovered figures."""
    rows = []
    boxed = [e for e in entries if e.source == source and e.box is not None]
    whole = any(e.source == source and e.box is None for e in entries)
    for entry in boxed:
        assert entry.box is not None
        index = best_figure(entry.box, scan.figures)
        figure = scan.figures[index] if index is not None else None
        checked = entry.framing in (None, "full_body")
        cuts = tuple(find_cuts(entry.box, figure)) if figure is not None and checked else ()
        rows.append(Row(entry, index, iou(entry.box, figure.box) if figure else 0.0, cuts, checked))
    uncovered = () if whole else tuple(i for i, f in enumerate(scan.figures)
                                       if not any(e.box and covers(e.box, f) for e in boxed))
    return SheetReport(source, scan, tuple(rows), uncovered)


def describe_cuts(cuts: Sequence[Cut]) -> str:
    return ", ".join(f"{cut.side} {cut.depth} px" for cut in cuts)


def proposals(reports: Sequence[SheetReport], taken: set[str]) -> list[NewEntry]:
    """One new entry per uncovered figure, named `<sheet stem>_<figure number>`."""
    names = set(taken)
    found = []
    for report in reports:
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(report.source).stem).strip("._") or "sheet"
        for index in report.uncovered:
            figure = report.scan.figures[index]
            name = unique_name(f"{stem}_{index + 1}", names)
            names.add(name)
            found.append(NewEntry(name, report.source, figure.box,
                                  f"figure #{index + 1} on {report.source}, found by `invoke boxes`",
                                  framing=guess_framing(figure)))
    return found


def fixes(reports: Sequence[SheetReport]) -> list[tuple[str, Box, Box]]:
    """(crop name, old box, new box) for every box that cuts its figure."""
    found = []
    for report in reports:
        for row in report.rows:
            if row.cuts and row.figure is not None and row.entry.box is not None:
                figure = report.scan.figures[row.figure]
                found.append((row.entry.name, row.entry.box, widen(row.entry.box, row.cuts, figure, report.scan.size)))
    return found


def draw_report(sheet: Image.Image, report: SheetReport) -> Image.Image:
    marked = [Marked(row.entry.box, row.entry.name, [(c.side, c.depth) for c in row.cuts])
              for row in report.rows if row.entry.box is not None]
    new = [(i + 1, report.scan.figures[i].box) for i in report.uncovered]
    return draw_overlay(sheet, marked, new, report.scan.text_lines)


def overlay_name(source: str) -> str:
    """`sheet.png` -> `sheet.png`, `sheets/a.jpg` -> `sheets__a.png`: one overlay per sheet, never two on one name."""
    return Path(source).with_suffix(".png").as_posix().replace("/", "__")


def png_bytes(image: Image.Image, compress_level: int = 1) -> bytes:
    """PNG bytes, fast to write: an overlay is looked at and redrawn, not kept small."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


# --- the run --------------------------------------------------------------------------------------

def read_table(folder: Path) -> tuple[str, list[Entry], list[str]]:
    path = folder / TABLE_NAME
    if not path.is_file():
        raise BoxesError(f"No character table at {path}. Create it (copy dataset/example/{TABLE_NAME} as a start) "
                         f"or pass the right --character name.")
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise BoxesError(f"The character table {path} is not valid TOML ({error}). "
                         f"Fix the syntax and run again.") from None
    entries, skipped = crop_entries(data)
    return text, entries, skipped


def sheet_sources(folder: Path, entries: Sequence[Entry]) -> list[str]:
    """Images at the top of the character folder, then every other source a boxed entry names."""
    top = sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    named = [e.source for e in entries if e.box is not None]
    return list(dict.fromkeys(top + named))


def load_sheet(path: Path) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            rgba = image.convert("RGBA")
            flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            flat.alpha_composite(rgba)
            return flat.convert("RGB")
        return image.convert("RGB")


def scan_sheets(folder: Path, entries: Sequence[Entry], out: TextIO,
                only: str | None = None) -> list[tuple[SheetReport, Image.Image]]:
    found = []
    sources = sheet_sources(folder, entries)
    if only is not None:
        if only not in sources:
            raise BoxesError(f"No sheet {only!r} in {folder} (its sheets: {', '.join(sources) or 'none'}); "
                             f"pass one of those to --sheet.")
        sources = [only]
    for source in sources:
        try:
            sheet = load_sheet(folder / source)
        except FileNotFoundError:
            print(f"warning: source {folder / source} does not exist (fix 'source' in the table)", file=out)
            continue
        except (UnidentifiedImageError, OSError, ValueError) as error:
            print(f"warning: {folder / source} is not an image Pillow can read ({error}); skipped", file=out)
            continue
        found.append((assess(source, find_figures(sheet), entries), sheet))
    return found


def print_report(report: SheetReport, out: TextIO) -> None:
    w, h = report.scan.size
    figures = report.scan.figures
    print(f"{report.source} ({w}x{h}): {len(figures)} figures, {len(report.scan.text_lines)} text lines and "
          f"{report.scan.specks} specks ignored", file=out)
    table = [("crop", "box", "cuts", "best figure (IoU)")]
    for row in report.rows:
        unchecked = f"not checked ({row.entry.framing})"
        cuts = describe_cuts(row.cuts) if row.cuts else ("none" if row.checked else unchecked)
        best = (f"#{row.figure + 1} {format_box(figures[row.figure].box)} ({row.match:.2f})"
                if row.figure is not None else "none")
        assert row.entry.box is not None
        bounds = check_box(row.entry.box, report.scan.size)
        if not bounds.ok:  # crop refuses such a box (or clamps it with --clamp)
            cuts += f"; {bounds.describe()}"
        table.append((row.entry.name, format_box(row.entry.box), cuts, best))
    for index in report.uncovered:
        figure = figures[index]
        table.append((f"#{index + 1} (no crop)", format_box(figure.box), "-",
                      f"{guess_framing(figure)} (guess)"))
    if len(table) == 1:
        print("  no crops and no figures", file=out)
        return
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    for row_cells in table:
        print("  " + "  ".join(c.ljust(wd) for c, wd in zip(row_cells, widths, strict=True)).rstrip(), file=out)


def run(folder: Path, *, write_proposals: bool = False, fix_cuts: bool = False, sheet: str | None = None,
        small_copy: Path | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    text, entries, skipped = read_table(folder)
    for reason in skipped:
        print(f"warning: {reason}; skipped", file=out)
    scanned = scan_sheets(folder, entries, out, sheet)
    reports = [report for report, _ in scanned]
    edited, done = text, []
    if fix_cuts:
        for name, old, new in fixes(reports):
            edited = replace_box(edited, name, new)
            done.append(f"fixed {name}: {format_box(old)} -> {format_box(new)}")
    if write_proposals:
        new_entries = proposals(reports, {e.name for e in entries})
        edited = append_entries(edited, new_entries)
        done += [f"added {e.name}: {e.source} {format_box(e.box or (0, 0, 0, 0))} ({e.framing}, a guess)"
                 for e in new_entries]
        if new_entries:
            done.append(f"Write a caption, pose, expression and shows_details for the {len(new_entries)} new "
                        f"entries (the TODO comments in {folder / TABLE_NAME}).")
    if edited != text:
        atomic.write_text(folder / TABLE_NAME, edited)
        entries, _ = crop_entries(tomllib.loads(edited))
        scanned = [(assess(report.source, report.scan, entries), image) for report, image in scanned]
    for line in done:
        print(line, file=out)
    cutting = 0
    for report, image in scanned:
        print_report(report, out)
        target = folder / OVERLAY_DIR / overlay_name(report.source)
        overlay = draw_report(image, report)
        atomic.write_bytes(target, png_bytes(overlay))
        if small_copy is not None:
            overlay.thumbnail((SMALL_WIDTH, SMALL_WIDTH), Image.Resampling.LANCZOS)
            atomic.write_bytes(small_copy, png_bytes(overlay.quantize(128).convert("RGB"), compress_level=9))
            print(f"small copy of {target.name} in {small_copy}", file=out)
            small_copy = None  # only the first sheet's
        cutting += sum(1 for row in report.rows if row.cuts)
    print(f"{len(scanned)} sheets, overlays in {folder / OVERLAY_DIR}; {cutting} boxes cut a figure"
          + (" (run with --fix-cuts to widen them)" if cutting else ""), file=out)
    return 1 if cutting else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.boxes",
        description="Find the figures on a character's reference sheets, draw every crop box on them "
                    "(boxes/<sheet>.png) and flag boxes that cut a figure.")
    parser.add_argument("--character", required=True, help="character folder under the dataset root, e.g. example")
    parser.add_argument("--write-proposals", action="store_true",
                        help="append every figure no crop covers to character.toml as a [[crop]] entry to caption")
    parser.add_argument("--fix-cuts", action="store_true",
                        help="widen every full_body box that cuts its figure to the figure's box "
                             "(edits character.toml)")
    parser.add_argument("--sheet", default=None, help="only this sheet (a file name in the character folder)")
    parser.add_argument("--small-copy", type=Path, default=None, metavar="PATH",
                        help=f"also write the first overlay at most {SMALL_WIDTH} px wide to PATH (for docs)")
    add_settings_arguments(parser, "dataset_root")
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
        return run(settings.character_dir(args.character), write_proposals=args.write_proposals,
                   fix_cuts=args.fix_cuts, sheet=args.sheet, small_copy=args.small_copy)
    except (BoxesError, TomlEditError, SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: boxes failed while reading or writing {error.filename or 'a file'} "
              f"({error.strerror or error}); the table is unchanged unless 'fixed' or 'added' lines were printed.",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
