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


# ----------------------------------------------------------------------- run-time weights

#: how a deliberate weight corruption is named: "WORD:BIT" (bit 0 when omitted)
FLIP_HELP = "WORD[:BIT]"


def check_weights(out: Path, layout: dict) -> dict:
    """A build with run-time weights (docs/WEIGHTS.md): weights/weights.json must be a cfgen
    weight manifest for this hardware (its signature, the words and memories the build's
    loader counts, a two-word checksum) and weights/weights.hex that many 32-bit words, one
    per line. Returns the weight manifest."""
    from ..hw import weights
    out = Path(out)
    files = layout.get("files", {})
    mpath = out / files.get("manifest", f"weights/{weights.MANIFEST}")
    hpath = out / files.get("hex", f"weights/{weights.HEX}")
    man = load_json(mpath, "the run-time weight manifest of this build (build with "
                           "--runtime-weights, or write one with `weights MODEL BUILD`)")
    if man.get("format") != weights.FORMAT:
        raise VectorError(f"{_short(mpath)}: format {str(man.get('format'))[:40]!r}, not "
                          f"{weights.FORMAT!r}")
    ck = man.get("checksum")
    if not (isinstance(ck, list) and len(ck) == 2 and
            all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 1 << 32 for x in ck)):
        raise VectorError(f"{_short(mpath)}: checksum is not two 32-bit words")
    want = [(m["index"], m["node"], m["role"], m["depth"], m["width"], m["offset"])
            for m in layout.get("memories", [])]
    try:
        have = [(m["index"], m["node"], m["role"], m["depth"], m["width"], m["offset"])
                for m in man.get("memories", [])]
    except (KeyError, TypeError):
        raise VectorError(f"{_short(mpath)}: its memories lack index/node/role/depth/width/offset") from None
    if have != want or man.get("words") != layout.get("words"):
        diff = next((f"memory {i}: {h} vs the build's {w}" for i, (h, w) in enumerate(zip(have, want))
                     if h != w), f"{len(have)} memories, {man.get('words')!r} words vs the build's "
                                 f"{len(want)}, {layout.get('words')}")
        raise VectorError(f"{_short(mpath)} does not fit this build's weight port ({diff})")
    sig = weights.signature(out)
    if man.get("signature") != sig:
        raise VectorError(f"{_short(mpath)} was made for other hardware (signature "
                          f"{str(man.get('signature'))[:12]} vs this build's {sig[:12]}): "
                          "`weights MODEL BUILD` writes a weight file for this build")
    if not hpath.is_file():
        raise VectorError(f"{hpath} not found: the weight stream of this build")
    if hpath.stat().st_size > MAX_VECTOR_BYTES:
        raise VectorError(f"{_short(hpath)} is larger than {MAX_VECTOR_BYTES >> 20} MiB")
    try:
        text = hpath.read_bytes().decode("ascii")
    except UnicodeDecodeError as exc:
        raise VectorError(f"{_short(hpath)}: byte {exc.start} is not ASCII (not a hex word file)") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    for i, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or len(line) > 8 or not set(line) <= _HEX:
            raise VectorError(f"{_short(hpath)} line {i}: {line[:12]!r} is not a 32-bit hex word")
    if len(lines) != layout.get("words"):
        raise VectorError(f"{_short(hpath)} holds {_plural(len(lines), 'word')}, the build's "
                          f"weight port takes {layout.get('words')}")
    return man


def parse_flip(text: str, words: int) -> tuple[int, int]:
    """A deliberate corruption, FLIP_HELP: (word, bit) within a stream of `words` words."""
    w, _, b = str(text).partition(":")
    try:
        word, bit = int(w), int(b or 0)
    except ValueError:
        raise VectorError(f"weight flip {str(text)[:40]!r}: expected {FLIP_HELP}") from None
    if not (0 <= word < words and 0 <= bit < 32):
        raise VectorError(f"weight flip {text}: word 0..{words - 1}, bit 0..31")
    return word, bit
