"""Beat packing shared by test vectors, test benches and the host driver.

A beat is one pixel: channel c occupies bits [c*bits, (c+1)*bits) of an unsigned
integer of C*bits bits (ints in two's complement).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .ir import Stream


def to_beats(values: np.ndarray, stream: Stream) -> list[int]:
    """(N, H, W, C) -> N*H*W beat integers in raster order."""
    flat = values.reshape(-1, stream.c).astype(np.int64)
    mask = (1 << stream.bits) - 1
    beats = []
    for row in flat:
        v = 0
        for c in range(stream.c - 1, -1, -1):
            v = (v << stream.bits) | (int(row[c]) & mask)
        beats.append(v)
    return beats


def from_beats(beats, stream: Stream) -> np.ndarray:
    """Beat integers -> (N, H, W, C) int64 values (sign-extended for 'int' streams)."""
    mask = (1 << stream.bits) - 1
    out = np.empty((len(beats), stream.c), dtype=np.int64)
    for i, b in enumerate(beats):
        b = int(b)
        for c in range(stream.c):
            v = (b >> (c * stream.bits)) & mask
            if stream.kind == "int" and v >> (stream.bits - 1):
                v -= 1 << stream.bits
            out[i, c] = v
    return out.reshape(-1, stream.h, stream.w, stream.c)


def hex_digits(stream: Stream) -> int:
    return (stream.beat_bits + 3) // 4


def write_hex(path, values: np.ndarray, stream: Stream) -> None:
    """One beat per line, hexadecimal, most significant digit first."""
    digits = hex_digits(stream)
    Path(path).write_text("".join(f"{b:0{digits}x}\n" for b in to_beats(values, stream)))


def read_hex(path, stream: Stream) -> np.ndarray:
    beats = [int(line, 16) for line in Path(path).read_text().split()]
    return from_beats(beats, stream)
