"""Small validators for the driver's API boundary: every bad argument becomes one `DriverError`
line (numpy only; runs on the board).

    count(frames, "frames", hi=MAX_FRAMES)       an int in [lo, hi] (no bool, NaN, 2.5, "3")
    seconds(timeout, "timeout")                  a finite number of seconds in (0, MAX_SECONDS]
    buffer_bytes(batch, frame_bytes, "input")    batch * frame_bytes within MAX_BUFFER_BYTES
    one_line(text)                               an exception message on one line
"""

from __future__ import annotations

import math
import numbers

from .errors import InputError

#: one DMA / simulation buffer (contiguous memory on the board: PYNQ images reserve 128 MiB+).
MAX_BUFFER_BYTES = 128 << 20
#: frames one throughput_test may generate or a batch may hold.
MAX_FRAMES = 1 << 20
MAX_REPEATS = 10_000
#: a timeout longer than a day is a mistake (and a NaN one would never expire).
MAX_SECONDS = 86_400.0


def one_line(text, limit: int = 400) -> str:
    """`text` on one line: whitespace runs (newlines included) become one space."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[:limit - 3] + "..."


def count(value, what: str, lo: int = 1, hi: int = MAX_FRAMES, error=InputError) -> int:
    """An integer in [lo, hi]; bool, floats (even 3.0), strings and None are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise error(f"{what} must be an integer in {lo}..{hi}, got {type(value).__name__} {one_line(repr(value), 60)}")
    v = int(value)
    if not lo <= v <= hi:
        raise error(f"{what} must be an integer in {lo}..{hi}, got {v}")
    return v


def seconds(value, what: str = "timeout", hi: float = MAX_SECONDS, error=InputError) -> float:
    """A finite, positive number of seconds, at most `hi`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise error(f"{what} must be a number of seconds, got {type(value).__name__} {one_line(repr(value), 60)}")
    v = float(value)
    if not math.isfinite(v) or v <= 0 or v > hi:
        raise error(f"{what} must be a finite number of seconds in (0, {hi:g}], got {v!r}")
    return v


def buffer_bytes(n: int, frame_bytes: int, what: str, limit: int = MAX_BUFFER_BYTES, error=InputError,
                 name: str = "batch") -> int:
    """Refuse, before allocating, `n` frames whose buffer would exceed `limit` bytes."""
    need = int(n) * int(frame_bytes)
    if need > limit:
        raise error(f"{name} {n} needs a {need / 2**20:.1f} MiB {what} buffer ({n} x {frame_bytes} bytes), "
                    f"over the {limit / 2**20:.0f} MiB limit: use {name} <= {max(1, limit // int(frame_bytes))}")
    return need


def optional_str(value, what: str, error=InputError):
    if value is not None and not isinstance(value, str):
        raise error(f"{what} must be a string or None, got {type(value).__name__}")
    return value
