"""Beat packing shared by test vectors, test benches and the host driver.

A beat is one pixel: channel c occupies bits [c*bits, (c+1)*bits) of an unsigned
integer of C*bits bits (ints in two's complement).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .ir import Stream


def _beat_bytes(values: np.ndarray, stream: Stream) -> np.ndarray:
    """(N, H, W, C) -> (beats, ceil(C*bits/8)) little-endian bytes of each beat."""
    flat = values.reshape(-1, stream.c).astype(np.int64)
    shifts = np.arange(stream.bits, dtype=np.int64)
    bits = ((flat[:, :, None] >> shifts) & 1).astype(np.uint8).reshape(len(flat), -1)
    return np.packbits(bits, axis=1, bitorder="little")


def to_beats(values: np.ndarray, stream: Stream) -> list[int]:
    """(N, H, W, C) -> N*H*W beat integers in raster order."""
    return [int.from_bytes(row.tobytes(), "little") for row in _beat_bytes(values, stream)]


def from_beats(beats, stream: Stream) -> np.ndarray:
    """Beat integers -> (N, H, W, C) int64 values (sign-extended for 'int' streams)."""
    nbytes = (stream.beat_bits + 7) // 8
    raw = np.frombuffer(b"".join(int(b).to_bytes(nbytes, "little") for b in beats), dtype=np.uint8)
    bits = np.unpackbits(raw.reshape(len(beats), nbytes), axis=1, bitorder="little")
    bits = bits[:, :stream.beat_bits].reshape(len(beats), stream.c, stream.bits).astype(np.int64)
    out = (bits << np.arange(stream.bits, dtype=np.int64)).sum(axis=2)
    if stream.kind == "int":
        out = np.where(out >> (stream.bits - 1), out - (1 << stream.bits), out)
    return out.reshape(-1, stream.h, stream.w, stream.c)


def hex_digits(stream: Stream) -> int:
    return (stream.beat_bits + 3) // 4


def write_hex(path, values: np.ndarray, stream: Stream) -> None:
    """One beat per line, hexadecimal, most significant digit first."""
    digits = hex_digits(stream)
    lines = (row[::-1].tobytes().hex()[-digits:] for row in _beat_bytes(values, stream))
    Path(path).write_text("".join(f"{line}\n" for line in lines))


def read_hex(path, stream: Stream) -> np.ndarray:
    beats = [int(line, 16) for line in Path(path).read_text().split()]
    return from_beats(beats, stream)
