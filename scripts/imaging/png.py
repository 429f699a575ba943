"""PNG checks: walk a file's chunks without decoding pixels, decode one to check its size, and a dHash.

`inspect_png` finds truncation and corruption (every chunk's CRC, up to IEND) and the size from
IHDR without inflating pixel data; `png_problem` / `is_valid_file` decode the whole image with
Pillow and check its format and size (gen-reg's test for an image it may keep or skip);
`dhash` / `hamming` compare images for near duplicates.
"""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def inspect_png(data: bytes) -> tuple[tuple[int, int] | None, str | None]:
    """Walk a PNG's chunks to IEND checking each CRC: (size, None) or (size or None, problem)."""
    if not data.startswith(PNG_SIGNATURE):
        return None, "not a PNG (wrong signature)"
    size: tuple[int, int] | None = None
    offset = len(PNG_SIGNATURE)
    first = True
    while True:
        if offset + 8 > len(data):
            return size, "truncated (the file ends before the IEND chunk)"
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        end = offset + 8 + length + 4
        if end > len(data):
            return size, f"truncated (the {kind.decode('latin-1')!r} chunk is cut short)"
        body = data[offset + 8:offset + 8 + length]
        (crc,) = struct.unpack(">I", data[end - 4:end])
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            return size, f"corrupt (bad checksum in the {kind.decode('latin-1')!r} chunk)"
        if first:
            if kind != b"IHDR" or length < 8:
                return None, "corrupt (no IHDR chunk first)"
            size = struct.unpack(">II", body[:8])
            first = False
        if kind == b"IEND":
            return size, None
        offset = end


def dhash(image: Image.Image) -> int:
    """64-bit difference hash: 9x8 greyscale thumbnail, one bit per 'left brighter than right'."""
    small = image.convert("L").resize((9, 8), Image.Resampling.BOX)
    pixels = small.tobytes()
    bits = 0
    for row in range(8):
        for col in range(8):
            bits = (bits << 1) | (pixels[row * 9 + col] > pixels[row * 9 + col + 1])
    return bits


def grey_thumbnail(image: Image.Image) -> bytes:
    """16x16 greyscale box-filtered thumbnail: the second, independent near-duplicate measure."""
    return image.convert("L").resize((16, 16), Image.Resampling.BOX).tobytes()


def thumbnail_difference(a: bytes, b: bytes) -> float:
    """Mean absolute difference of two grey thumbnails, 0 (same) to 255."""
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / max(1, len(a))


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def png_problem(data: bytes, width: int, height: int) -> str | None:
    """None when `data` is a readable PNG of the given size, else what is wrong."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind, size = image.format, image.size
            image.load()
    except Exception as error:  # Pillow raises many kinds for broken data
        return f"not a readable image ({type(error).__name__})"
    if kind != "PNG":
        return f"a {kind} image, not PNG"
    if size != (width, height):
        return f"{size[0]}x{size[1]} instead of {width}x{height}"
    return None


def is_valid_file(path: Path, width: int, height: int) -> bool:
    try:
        return path.is_file() and png_problem(path.read_bytes(), width, height) is None
    except OSError:
        return False
