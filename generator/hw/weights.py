"""Run-time weights: the weight stream a build with `Graph.runtime_weights` loads after
start-up, its checksum and its manifest (docs/WEIGHTS.md is the contract).

The stream is every read-only memory of the graph (`units.contents`, the one owner of what
a memory holds), in node order and, within a node, in plan order; a memory is its words in
address order, each word cut into 32-bit chunks, least significant chunk first (the last
chunk zero-padded). The hardware knows the layout at compile time, so the stream has no
header; after its last word it answers with the Fletcher checksum of what it received.

A build's hardware signature (`signature`) hashes its synthesizable sources, which hold no
weights when they are loaded at run time: a weight file fits a build exactly when the
signatures agree.
"""

from __future__ import annotations

import hashlib
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import units
from .ir import Graph

WORD_BITS = 32
FORMAT = "cfgen-weights-1"     # = cfgen_driver.weightfile.FORMAT (test_stream_is_every_rom_in_order)
#: files of a build folder's weights/ (written by `write`, read by the driver and the sims)
BIN, HEX, MANIFEST = "weights.bin", "weights.hex", "weights.json"


@dataclass(frozen=True)
class LoadMem:
    """One memory written through the weight port."""
    index: int              # position in the stream (the RTL loader's memory select)
    node: str
    role: str
    depth: int
    width: int              # bits per word
    offset: int             # first stream word
    chunks: np.ndarray      # uint32 [depth, chunks_per_word]

    @property
    def chunks_per_word(self) -> int:
        return chunks_per_word(self.width)

    @property
    def words(self) -> int:
        return self.depth * self.chunks_per_word


def chunks_per_word(width: int) -> int:
    return -(-width // WORD_BITS)


def word_bytes(fields: np.ndarray, bits: int) -> np.ndarray:
    """[depth, n] integer fields of `bits` bits (two's complement) -> uint8 [depth, bytes]:
    each word little-endian, field f at bits [f*bits, (f+1)*bits), zero-padded to bytes."""
    v = np.asarray(fields, dtype=np.int64)
    if v.ndim == 1:
        v = v[:, None]
    nw, nf = v.shape
    shifts = np.minimum(np.arange(bits), 63).astype(np.int64)
    bitarr = ((v[:, :, None] >> shifts) & 1).astype(np.uint8).reshape(nw, nf * bits)
    return np.packbits(bitarr, axis=1, bitorder="little")


def to_chunks(fields: np.ndarray, bits: int) -> np.ndarray:
    """[depth, n] fields -> uint32 [depth, chunks_per_word(n*bits)], least significant first."""
    by = word_bytes(fields, bits)
    nw = by.shape[0]
    width = np.asarray(fields).reshape(nw, -1).shape[1] * bits
    pad = chunks_per_word(width) * 4 - by.shape[1]
    if pad:
        by = np.concatenate([by, np.zeros((nw, pad), np.uint8)], axis=1)
    return np.ascontiguousarray(by).view("<u4").reshape(nw, -1)


#: extra bits a run-time weights build gives every width that depends on the model's
#: values (not on the architecture alone), so that a retrained model whose ranges grow a
#: little still fits the bitstream (runtime_weights.adopt_folding takes the wider widths)
HEADROOM_BITS = 2
_VALUE_WIDTHS = ("acc_bits", "thr_bits", "sum_bits", "group_bits", "bias_bits", "m_bits")
#: memories whose field width the unit takes from Node.param_bits, and the kinds whose
#: units do (with the flag bit each field carries besides the value)
PARAM_ROLES = ("params", "thresholds", "bias")
PARAM_FLAG_BITS = {"conv": 1, "avgpool": 1, "scalemac": 0}


def add_headroom(graph: Graph, bits: int = HEADROOM_BITS) -> None:
    """Widen, before folding, every value-dependent width of `graph` by `bits` (the IR's
    width fields and int streams here; the fields of the parameter words, which a unit
    derives from the values, through Node.param_bits): the values stay the same (a wider
    two's-complement field holds them unchanged), so its golden model does too. An XNOR matrix's accumulator and thresholds are fixed by K (the range is
    +-K whatever the weights) and a max-pool passes its input's width, so they are left."""
    renamed = {}
    for i, n in enumerate(graph.nodes):
        xnor = getattr(n, "matrix", None) == "xnor"
        for f in _VALUE_WIDTHS:
            if getattr(n, f, None) is not None and not (xnor and f in ("acc_bits", "thr_bits")):
                setattr(n, f, getattr(n, f) + bits)
        srcs = [renamed.get(s) for s in graph.sources(i)]
        if getattr(n, "inp", None) is not None and srcs and srcs[0] is not None:
            n.inp = srcs[0]
        if getattr(n, "inp_b", None) is not None and len(srcs) > 1 and srcs[1] is not None:
            n.inp_b = srcs[1]
        if n.kind == "maxpool" and n.out.kind != "bit":
            n.out = dataclasses.replace(n.out, bits=n.inp.bits)
        elif n.out.kind != "bit":
            n.out = dataclasses.replace(n.out, bits=n.out.bits + bits)
        renamed[n.name] = n.out
    for n in graph.nodes:       # the parameter words' fields, derived from the values
        if n.kind not in PARAM_FLAG_BITS:
            continue            # a residual add's parameter fields are IR widths (above)
        mems = [(m, b) for m, _, b in units.contents(n) if m.role in PARAM_ROLES]
        if mems:
            n.param_bits = max(b for _, b in mems) + bits - PARAM_FLAG_BITS.get(n.kind, 0)


def memories(graph: Graph) -> list[LoadMem]:
    """Every memory the weight port writes, in stream order."""
    out, offset = [], 0
    for node in graph.nodes:
        for mem, fields, bits in units.contents(node):
            ch = to_chunks(fields, bits)
            out.append(LoadMem(len(out), node.name, mem.role, mem.depth, mem.width, offset, ch))
            offset += ch.size
    return out


def stream(graph: Graph, mems: list[LoadMem] | None = None) -> np.ndarray:
    """The whole weight stream, uint32 (of `mems`, the graph's `memories`, when given)."""
    mems = memories(graph) if mems is None else mems
    if not mems:
        return np.zeros(0, dtype=np.uint32)
    return np.concatenate([m.chunks.reshape(-1) for m in mems]).astype(np.uint32)


def fletcher(words) -> tuple[int, int]:
    """(s1, s2) of a word stream: what the hardware answers after a load. The driver owns the
    rule (host/cfgen_driver/weightfile.py, which runs on the board without the generator)."""
    from ..core.hostdriver import driver
    driver()
    from cfgen_driver.weightfile import fletcher as rule
    return rule(words)


#: the synthesizable sources of a build folder: what its bitstream is made from
HARDWARE_SOURCES = ("hls/src/**/*.cpp", "hls/src/**/*.h", "hls/include/*.h", "rtl/*.v")


def signature(folder) -> str:
    """SHA-256 of a build folder's synthesizable HLS and Verilog sources (not the memory
    files, test benches or vectors). With run-time weights the sources hold no weights, so
    two models share a bitstream exactly when the sources rendered for them are the same."""
    folder = Path(folder)
    h = hashlib.sha256()
    files = sorted({p for pat in HARDWARE_SOURCES for p in folder.glob(pat) if p.is_file()})
    for p in files:
        rel = p.relative_to(folder).as_posix()
        if rel.endswith("_trace.h"):            # C-simulation taps, compiled out of synthesis
            continue
        h.update(rel.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def manifest(graph: Graph, sig: str, mems: list[LoadMem] | None = None) -> dict:
    mems = memories(graph) if mems is None else mems
    words = stream(graph, mems)
    s1, s2 = fletcher(words)
    return {"format": FORMAT, "graph": graph.name, "signature": sig,
            "words": int(len(words)), "checksum": [s1, s2],
            "logit_scale": graph.logit_scale,
            "checkpoint": str(graph.meta.get("checkpoint", "")),
            "memories": [{"index": m.index, "node": m.node, "role": m.role, "depth": m.depth,
                          "width": m.width, "offset": m.offset, "words": m.words}
                         for m in mems]}


def write(graph: Graph, folder, sig: str) -> dict:
    """{weights.bin, weights.hex, weights.json} in `folder` (a staging folder: the caller
    makes it atomic); `sig`: the hardware's `signature`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    mems = memories(graph)
    words = stream(graph, mems)
    man = manifest(graph, sig, mems)
    (folder / BIN).write_bytes(words.astype("<u4").tobytes())
    (folder / HEX).write_text("".join(f"{int(w):08x}\n" for w in words))
    (folder / MANIFEST).write_text(json.dumps(man, indent=2) + "\n")
    return man
