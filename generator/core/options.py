"""argparse `type=` validators shared by the subcommands: one uniform one-line message each.

argparse turns an ArgumentTypeError into `argument --x: MESSAGE`; the CLI's parser prints
that as the single line `error: argument --x: MESSAGE` (generator/cli.py).
"""

from __future__ import annotations

import argparse
import math

from .escape import one_line

SEED_MAX = 2**32 - 1  # numpy's default_rng and torch.manual_seed both take [0, 2**32)


def _shown(text: str) -> str:
    return repr(one_line(text, 40))


def _parse_int(text: str) -> int:
    s = str(text).strip()
    if len(s) > 40:  # int() of a 5000-digit string raises a ValueError of its own
        raise argparse.ArgumentTypeError(f"expected an integer, got {_shown(text)}")
    try:
        return int(s, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {_shown(text)}") from None


def int_range(lo: int, hi: int, what: str = "an integer"):
    """An integer in [lo, hi]."""
    def parse(text: str) -> int:
        value = _parse_int(text)
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be {what} in [{lo}, {hi}], got {value}")
        return value
    parse.__name__ = "integer"  # argparse names the type in its own messages
    return parse


def positive_int(hi: int):
    """An integer in [1, hi]."""
    return int_range(1, hi)


def seed(text: str) -> int:
    return int_range(0, SEED_MAX, "a seed")(text)


def finite_float(lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False):
    """A finite number in [lo, hi] (or an open end: (lo, ...  ..., hi))."""
    interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"

    def parse(text: str) -> float:
        s = str(text).strip()
        try:
            value = float(s) if len(s) <= 40 else math.nan
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {_shown(text)}") from None
        if not math.isfinite(value) or value < lo or value > hi or \
                (lo_open and value == lo) or (hi_open and value == hi):
            raise argparse.ArgumentTypeError(f"must be a finite number in {interval}, "
                                             f"got {_shown(text)}")
        return value
    parse.__name__ = "number"
    return parse


def int_list(lo: int, hi: int, max_items: int = 64):
    """Comma-separated integers, each in [lo, hi], at most max_items of them."""
    def parse(text: str) -> list[int]:
        parts = [p for p in str(text).split(",") if p.strip()]
        if len(parts) > max_items:
            raise argparse.ArgumentTypeError(f"at most {max_items} values, got {len(parts)}")
        values = []
        for part in parts:
            try:
                values.append(_parse_int(part))
            except argparse.ArgumentTypeError:
                raise argparse.ArgumentTypeError(
                    f"expected comma-separated epochs, got {_shown(text)}") from None
        bad = [v for v in values if not lo <= v <= hi]
        if bad:
            raise argparse.ArgumentTypeError(f"epochs must be in [{lo}, {hi}], got {bad[0]}")
        return values
    parse.__name__ = "list"
    return parse
