"""Vectorized stream packing (docs/CONTRACT.md), numpy only (numpy 1.x on the board, 2.x here).

A frame is h*w beats in raster order; a beat holds channel c at bits [c*bits, (c+1)*bits)
(two's complement for 'int'), padded with zeros to `beat_bytes` whole bytes, little-endian:
exactly the bytes the AXI DMA moves. Frames are rows of a uint8 array (N, frame_bytes).
"""

from __future__ import annotations

import numpy as np


def _byte_dtype(bits: int, signed: bool):
    return np.dtype(("<i" if signed else "<u") + str(bits // 8))


def pack_frames(values: np.ndarray, stream: dict) -> np.ndarray:
    """(N, h, w, c) integers -> uint8 (N, frame_bytes)."""
    h, w, c, bits, bb = (stream[k] for k in ("h", "w", "c", "bits", "beat_bytes"))
    n = values.shape[0]
    beats = values.reshape(n * h * w, c)
    used = (c * bits + 7) // 8
    if bits in (8, 16, 32, 64):
        signed = stream["kind"] == "int"
        if values.dtype == np.uint8 and bits == 8 and not signed:
            raw = beats
        else:
            # astype wraps negatives modulo 2**bits: two's complement, as the stream holds them.
            raw = beats.astype(np.int64).astype(_byte_dtype(bits, False)).view(np.uint8).reshape(len(beats), -1)
        if bb == used:
            return np.ascontiguousarray(raw).reshape(n, -1)
        out = np.zeros((len(beats), bb), dtype=np.uint8)
        out[:, :used] = raw
        return out.reshape(n, -1)
    v = beats.astype(np.int64)
    bitplanes = ((v[:, :, None] >> np.arange(bits, dtype=np.int64)) & 1).astype(np.uint8)
    packed = np.packbits(bitplanes.reshape(len(beats), c * bits), axis=1, bitorder="little")
    if packed.shape[1] == bb:
        return packed.reshape(n, -1)
    out = np.zeros((len(beats), bb), dtype=np.uint8)
    out[:, :packed.shape[1]] = packed
    return out.reshape(n, -1)


def unpack_frames(raw: np.ndarray, stream: dict) -> np.ndarray:
    """uint8 (N, frame_bytes) -> (N, h, w, c) int64 (sign-extended for 'int' streams)."""
    h, w, c, bits, bb = (stream[k] for k in ("h", "w", "c", "bits", "beat_bytes"))
    n = raw.shape[0]
    beats = raw.reshape(n * h * w, bb)
    signed = stream["kind"] == "int"
    if bits in (8, 16, 32, 64):
        used = c * bits // 8
        vals = np.ascontiguousarray(beats[:, :used]).view(_byte_dtype(bits, signed)).astype(np.int64)
        return vals.reshape(n, h, w, c)
    used = (c * bits + 7) // 8
    planes = np.unpackbits(beats[:, :used], axis=1, bitorder="little")[:, :c * bits]
    planes = planes.reshape(len(beats), c, bits).astype(np.int64)
    # bit 63 of a 64-bit field lands on the sign bit of int64, which is its two's complement weight.
    vals = (planes << np.arange(bits, dtype=np.int64)).sum(axis=2)
    if signed and bits < 64:
        vals -= planes[:, :, bits - 1] << bits
    return vals.reshape(n, h, w, c)
