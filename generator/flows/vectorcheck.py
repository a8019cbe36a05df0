"""Checks of a build folder's simulation inputs, shared by generator.flows.csim and generator.flows.rtlsim.

Everything a simulation reads from OUT/vectors/ (input.hex, the <node>.hex files its checkers
compare with, meta.json) and the numeric options of their Python API (check_int; the command
lines use generator/core/options.py) are checked here *before* a compiler or simulator
starts, so a bad file or option is one `error: ...` line (exit 2) instead of a traceback from
the cocotb module or a test bench that silently simulates fewer frames than asked.

A hex vector file (generator/hw/streams.py: write_hex) holds one beat per line, hexadecimal,
most significant digit first, at most ceil(bits/4) digits and a value below 2**bits; its
line count is a whole number of frames (beats per frame from the manifest).
"""

from __future__ import annotations

import json
import string
from pathlib import Path

from ..core.errors import CfgenError

_HEX = frozenset(string.hexdigits)
# largest vector file read for checking (a 20-frame NIN input.hex is 0.2 MB)
MAX_VECTOR_BYTES = 1 << 30


class VectorError(CfgenError):
    """A simulation input (vector file, manifest, option) is missing or malformed."""


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _short(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def load_json(path: Path, what: str) -> dict:
    """A JSON object from path, or VectorError (missing, unreadable, not an object)."""
    path = Path(path)
    if not path.is_file():
        raise VectorError(f"{path} not found: {what}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise VectorError(f"{path} is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise VectorError(f"{path} is not a JSON object")
    return data


def hex_frames(path: Path, bits: int, beats: int, what: str = "") -> int:
    """Check one hex vector file of `bits`-bit beats, `beats` per frame; returns its frames."""
    path = Path(path)
    label = f"{_short(path)}{' (' + what + ')' if what else ''}"
    if not path.exists():
        raise VectorError(f"{path} not found: {label} is needed by the simulation")
    if not path.is_file():
        raise VectorError(f"{path} is not a file")
    if path.stat().st_size > MAX_VECTOR_BYTES:
        raise VectorError(f"{label} is larger than {MAX_VECTOR_BYTES >> 20} MiB")
    try:
        text = path.read_bytes().decode("ascii")
    except OSError as exc:
        raise VectorError(f"{label} cannot be read ({exc.strerror or type(exc).__name__})") from None
    except UnicodeDecodeError as exc:
        raise VectorError(f"{label}: byte {exc.start} is not ASCII (not a hex vector file)") from None
    digits = (bits + 3) // 4
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()                                  # trailing blank lines are harmless
    for i, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            raise VectorError(f"{label} line {i} is empty (one {bits}-bit beat per line)")
        if not set(line) <= _HEX:
            bad = next(c for c in line if c not in _HEX)
            raise VectorError(f"{label} line {i}: {bad!r} is not a hex digit")
        if len(line) > digits or int(line, 16) >> bits:
            raise VectorError(f"{label} line {i}: value wider than the {bits}-bit beat "
                              f"({len(line)} hex digits, at most {digits})")
    n = len(lines)
    if n == 0:
        raise VectorError(f"{label} is empty (no frame)")
    if n % beats:
        raise VectorError(f"{label} holds {n} beats: not a whole number of {beats}-beat frames "
                          f"({_plural(n // beats, 'frame')} and {_plural(n % beats, 'beat')})")
    return n // beats


def check_vectors(vectors: Path, streams, frames: int | None = None, what: str = "simulation") -> int:
    """Check every file in `streams` (name, bits, beats per frame: "input" is input.hex, any
    other name <name>.hex) holds the same whole number of frames, at least `frames` of them,
    and that meta.json (when present) agrees. Returns the number of vector frames."""
    vectors = Path(vectors)
    if not vectors.is_dir():
        raise VectorError(f"{vectors} not found: the build folder has no test vectors")
    counts = {}
    for name, bits, beats in streams:
        counts[name] = hex_frames(vectors / f"{name}.hex", int(bits), int(beats),
                                  "graph input" if name == "input" else f"node {name} output")
    have = counts[streams[0][0]]
    for name, n in counts.items():
        if n != have:
            raise VectorError(f"vectors/{name}.hex holds {n} frames but vectors/{streams[0][0]}.hex "
                              f"{have}: the vector files do not belong together")
    meta = vectors / "meta.json"
    if meta.exists():
        m = load_json(meta, "vector metadata")
        mf = m.get("frames")
        if not isinstance(mf, int) or isinstance(mf, bool) or mf != have:
            raise VectorError(f"vectors/meta.json says frames = {mf!r} but the vector files hold "
                              f"{have} frames")
    if frames is not None and frames > have:
        raise VectorError(f"{what} of {frames} frames asked for, but vectors/ holds {have} "
                          f"{'frame' if have == 1 else 'frames'}")
    return have


# ----------------------------------------------------------------------- options

def check_int(name: str, value, lo: int, hi: int) -> int:
    """Range check of an option given to the Python API (run_csim, rtlsim.run)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise VectorError(f"{name} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise VectorError(f"{name} must be in [{lo}, {hi}], got {value}")
    return value
