"""Run-time weight files (docs/WEIGHTS.md): weights.json + weights.bin, read and checked.

A build made with --runtime-weights has no weights in its bitstream; the driver streams a
weight file through the weight port after the overlay loads, and the hardware answers with
the Fletcher sums of what it received (`fletcher`), which must equal the file's. The file's
hardware signature must be the build's (cfgen_meta.json "weights"), or its words would land
in memories of another shape. This module is the one owner of the checksum: the generator
writes files with it (generator/hw/weights.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .checks import one_line
from .errors import WeightsError

FORMAT = "cfgen-weights-1"
BIN, MANIFEST = "weights.bin", "weights.json"
MAX_WEIGHT_BYTES = 1 << 30          # 1 GiB: far above any board's on-chip memory
MAX_MANIFEST_BYTES = 16 << 20


def fletcher(words) -> tuple[int, int]:
    """(s1, s2) over 32-bit words: s1 = sum of the words, s2 = sum of the running s1, both
    mod 2**32 (s2 = sum of (n - i) * w_i: a changed word and a swapped pair both show)."""
    w = np.asarray(words, dtype=np.uint64)
    n = len(w)
    s1 = int(w.sum(dtype=np.uint64) % (1 << 32))
    s2 = 0
    # blocks small enough that (n - i) * w_i sums stay exact in uint64 (< 2**16 * 2**32 * 2**16)
    for lo in range(0, n, 1 << 15):
        blk = w[lo:lo + (1 << 15)]
        wt = np.arange(n - lo, n - lo - len(blk), -1, dtype=np.uint64) % (1 << 32)
        s2 += int(((blk * (wt & 0xFFFF)) % (1 << 32)).sum(dtype=np.uint64))
        s2 += int(((blk * (wt >> 16)) % (1 << 32)).sum(dtype=np.uint64)) << 16
    return s1, s2 % (1 << 32)


@dataclass(frozen=True)
class WeightFile:
    folder: Path
    words: np.ndarray           # uint32
    checksum: tuple             # (s1, s2)
    signature: str
    graph: str
    memories: int
    logit_scale: float | None   # real logits per output integer of the model the file holds

    def describe(self) -> str:
        return (f"{one_line(self.folder, 80)} ({len(self.words):,} words, checksum "
                f"{self.checksum[0]:08x} {self.checksum[1]:08x})")


def _folder(path) -> Path:
    p = Path(path)
    if p.is_file() and p.name in (BIN, MANIFEST):
        return p.parent
    if (p / MANIFEST).is_file():
        return p
    if (p / "weights" / MANIFEST).is_file():     # a build or package folder
        return p / "weights"
    raise WeightsError(f"{one_line(p, 120)}: no {MANIFEST} (a weight folder written by the build "
                       "or by `python -m generator weights`)")


def read(path) -> WeightFile:
    """The weight file in `path` (a weights/ folder, a build or package folder, or one of the
    two files), its words checked against its own checksum."""
    folder = _folder(path)
    man_p, bin_p = folder / MANIFEST, folder / BIN
    try:
        if man_p.stat().st_size > MAX_MANIFEST_BYTES:
            raise WeightsError(f"{one_line(man_p, 120)}: larger than {MAX_MANIFEST_BYTES >> 20} MiB")
        man = json.loads(man_p.read_text(encoding="utf-8"))
    except WeightsError:
        raise
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as e:
        raise WeightsError(f"{one_line(man_p, 120)}: unreadable ({type(e).__name__}: {one_line(e, 100)})") from None
    if not isinstance(man, dict) or man.get("format") != FORMAT:
        raise WeightsError(f"{one_line(man_p, 120)}: not a cfgen weight manifest (format != {FORMAT!r})")
    n, cs, sig = man.get("words"), man.get("checksum"), man.get("signature")
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_WEIGHT_BYTES // 4 or \
            not isinstance(cs, list) or len(cs) != 2 or \
            not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c < 1 << 32 for c in cs) or \
            not isinstance(sig, str) or not sig:
        raise WeightsError(f"{one_line(man_p, 120)}: damaged (words, checksum or signature malformed)")
    try:
        size = bin_p.stat().st_size
        if size != 4 * n:
            raise WeightsError(f"{one_line(bin_p, 120)}: {size:,} bytes, the manifest says {n:,} words "
                               f"({4 * n:,} bytes)")
        words = np.fromfile(bin_p, dtype="<u4").astype(np.uint32)
    except WeightsError:
        raise
    except (OSError, ValueError) as e:
        raise WeightsError(f"{one_line(bin_p, 120)}: unreadable ({type(e).__name__}: {one_line(e, 100)})") from None
    got = fletcher(words)
    if got != tuple(cs):
        raise WeightsError(f"{one_line(bin_p, 120)}: damaged (checksum {got[0]:08x} {got[1]:08x}, the "
                           f"manifest says {cs[0]:08x} {cs[1]:08x})")
    mems = man.get("memories")
    ls = man.get("logit_scale")
    ok = isinstance(ls, (int, float)) and not isinstance(ls, bool) and np.isfinite(ls) and ls > 0
    return WeightFile(folder, words, tuple(cs), sig, str(man.get("graph", "")),
                      len(mems) if isinstance(mems, list) else 0, float(ls) if ok else None)


def check_fits(wf: WeightFile, meta: dict) -> None:
    """The file is for the hardware `meta` describes (same signature and length)."""
    want = meta.get("weights")
    if not want:
        raise WeightsError(f"{meta['name']}: this build keeps its weights in the bitstream (built "
                           "without --runtime-weights): there is nothing to load")
    if wf.signature != want["signature"] or len(wf.words) != want["words"]:
        raise WeightsError(f"{wf.describe()} is for other hardware (signature {wf.signature[:12]}, "
                           f"the build's {want['signature'][:12]}; {len(wf.words):,} words, the build's "
                           f"{want['words']:,}): write it with `python -m generator weights MODEL BUILD`")


def check_status(wf: WeightFile, status) -> None:
    """The hardware's answer to a load must be the file's checksum."""
    s = tuple(int(x) & 0xFFFFFFFF for x in status)
    if s != tuple(wf.checksum):
        raise WeightsError(f"the weights did not arrive intact: the accelerator received checksum "
                           f"{s[0]:08x} {s[1]:08x}, the file's is {wf.checksum[0]:08x} "
                           f"{wf.checksum[1]:08x}; load them again (reset() first on the board)")
