"""argparse types shared by the scripts: numbers checked at the command line, with plain messages."""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def whole_number(minimum: int | None) -> Callable[[str], int]:
    """A type accepting whole numbers of at least `minimum` (None: any sign; the caller checks the range)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, not {text}")
        return value
    return parse


positive_int = whole_number(1)
non_negative_int = whole_number(0)
integer = whole_number(None)


def number(text: str) -> float:
    """Any finite number; the caller checks the range."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
    return value


def positive_float(text: str) -> float:
    """A finite number above zero (e.g. seconds)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a number above 0, not {text}")
    return value
