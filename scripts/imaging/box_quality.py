"""Will a crop make a usable training image? Pure checks on a box and the training resolution.

A crop is letterboxed: its longer side is scaled to `resolution`. A box much smaller than that is
upscaled into a blurry image, and a very thin box leaves a sliver of character on a field of
background. Past the warning limits the image is poor; past the error limits it teaches nothing.
sd-scripts' aspect-ratio buckets step in 64 pixels, so a resolution off that grid is resized again.
"""
from __future__ import annotations

WARN_UPSCALE, FAIL_UPSCALE = 4.0, 8.0    # how many times the box is enlarged
WARN_ASPECT, FAIL_ASPECT = 6.0, 16.0     # long side / short side of the box
BUCKET_STEP = 64


def upscale(box: tuple[int, int, int, int], resolution: int) -> float:
    return resolution / max(box[2], box[3], 1)


def aspect(box: tuple[int, int, int, int]) -> float:
    return max(box[2], box[3]) / max(min(box[2], box[3]), 1)


def box_findings(name: str, box: tuple[int, int, int, int], resolution: int) -> tuple[list[str], list[str]]:
    """(warnings, problems) for one crop's box, each naming the crop and the fix."""
    warnings: list[str] = []
    problems: list[str] = []
    size = f"{box[2]}x{box[3]}"
    factor = upscale(box, resolution)
    if factor > FAIL_UPSCALE:
        problems.append(f"crop {name!r}: box {size} would be enlarged {factor:.1f}x to {resolution} pixels (more "
                        f"than {FAIL_UPSCALE:g}x gives a useless blur); draw a larger box or use a larger sheet")
    elif factor > WARN_UPSCALE:
        warnings.append(f"crop {name!r}: box {size} is enlarged {factor:.1f}x to {resolution} pixels (over "
                        f"{WARN_UPSCALE:g}x looks soft); a larger box or sheet gives a sharper image")
    ratio = aspect(box)
    if ratio > FAIL_ASPECT:
        problems.append(f"crop {name!r}: box {size} has an aspect ratio of 1:{ratio:.0f} (beyond 1:{FAIL_ASPECT:g} "
                        f"the letterboxed image is almost all background); fix the box")
    elif ratio > WARN_ASPECT:
        warnings.append(f"crop {name!r}: box {size} has an aspect ratio of 1:{ratio:.1f} (beyond 1:{WARN_ASPECT:g} "
                        f"most of the image is background); consider a squarer box")
    return warnings, problems


def resolution_warning(resolution: int) -> str | None:
    if resolution % BUCKET_STEP:
        lower = max(BUCKET_STEP, resolution // BUCKET_STEP * BUCKET_STEP)
        return (f"resolution {resolution} is not a multiple of {BUCKET_STEP}: sd-scripts' buckets resize it "
                f"again; use {lower} or {lower + BUCKET_STEP}")
    return None
