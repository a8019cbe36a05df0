"""Weights-independent metadata of one accelerator build: `cfgen_meta.json`.

Written at build/package time (generator/backends/host.py, generator/flows/package.py) from
the hardware graph; read by the driver, which therefore needs neither torch nor
graph.npz. Holds shapes, stream number formats, AXI byte widths, logit scale, class
names, the accelerator's IP/port names and the board's DMA width.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from pathlib import Path

from .checks import one_line
from .errors import MetadataError

FORMAT = "cfgen-host-meta"
VERSION = 1
FILENAME = "cfgen_meta.json"

DIGITS_CLASSES = tuple(str(d) for d in range(10))
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")


def beat_bytes(beat_bits: int) -> int:
    """External (AXI-stream) beat: TDATA padded to whole bytes (docs/CONTRACT.md)."""
    return (int(beat_bits) + 7) // 8


def _stream(d: dict) -> dict:
    h, w, c, bits = int(d["h"]), int(d["w"]), int(d["c"]), int(d["bits"])
    bb = beat_bytes(c * bits)
    return {"h": h, "w": w, "c": c, "kind": d["kind"], "bits": bits, "beat_bits": c * bits,
            "beat_bytes": bb, "frame_beats": h * w, "frame_bytes": h * w * bb}


def guess_dataset(graph: dict, data: str | None = None) -> str | None:
    """'digits' / 'cifar10' from the build's --data, else from the model's input shape."""
    if data in ("digits", "cifar10"):
        return data
    try:
        s = graph["input"]
        shape = (s["h"], s["w"], s["c"])
        spec = (graph.get("meta") or {}).get("spec_name")
        if graph["num_classes"] == 10 and (shape == (8, 8, 1) or spec == "digits"):
            return "digits"
        if graph["num_classes"] == 10 and shape == (32, 32, 3):
            return "cifar10"
    except (KeyError, TypeError, AttributeError):
        return None  # a malformed graph: make_meta says what is wrong
    return None


def default_class_names(num_classes: int, dataset: str | None) -> list[str]:
    if dataset == "digits" and num_classes == 10:
        return list(DIGITS_CLASSES)
    if dataset == "cifar10" and num_classes == 10:
        return list(CIFAR10_CLASSES)
    return [str(i) for i in range(num_classes)]


def make_meta(graph: dict, board: dict | None = None, *, dataset: str | None = None,
              class_names=None, hls_manifest: dict | None = None, predicted: dict | None = None,
              graph_digest: str | None = None, weights: dict | None = None) -> dict:
    """Metadata dict from a graph dict (ir.Graph.to_dict() / graph.json) and a board dict;
    `weights`: the build's weights/weights.json when it loads its weights at run time."""
    try:
        return _make_meta(graph, board, dataset, class_names, hls_manifest, predicted, graph_digest,
                          weights)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        if isinstance(e, MetadataError):
            raise
        raise MetadataError(f"graph.json: missing or malformed field ({type(e).__name__}: {one_line(e, 120)})") from None


def _make_meta(graph, board, dataset, class_names, hls_manifest, predicted, graph_digest,
               weights=None) -> dict:
    board = board or {}
    if not graph.get("nodes"):
        raise MetadataError("the graph has no nodes")
    out_node = graph["nodes"][-1]
    n = int(graph["num_classes"])
    out = _stream(out_node["out"])
    if out["h"] * out["w"] * out["c"] != n:
        raise MetadataError(f"output stream {out['h']}x{out['w']}x{out['c']} does not hold {n} class scores")
    names = list(class_names) if class_names is not None else default_class_names(n, dataset)
    if len(names) != n:
        raise MetadataError(f"{len(names)} class names for {n} classes")
    hm = hls_manifest or {}
    ports = hm.get("ports", {})
    meta = {
        "format": FORMAT, "version": VERSION,
        "name": graph["name"],
        "board": board.get("name"), "part": board.get("part"), "clock_mhz": board.get("clock_mhz"),
        "input": _stream(graph["input"]),
        "output": dict(out, node=out_node["name"], tlast="frame"),
        "num_classes": n,
        "logit_scale": float(graph["logit_scale"]),
        "dataset": dataset,
        "class_names": [str(x) for x in names],
        # The HLS top: AXI-lite control (ap_ctrl_hs) with a `reps` register. The driver finds
        # the IP in the overlay by this name; without one it runs the stream free (RTL top).
        "ip": {"top": hm.get("top") or "cf_" + (re.sub(r"[^A-Za-z0-9_]", "_", str(graph["name"])) or "model"), "control": ports.get("control", "s_axi_control"),
               "reps_register": ports.get("reps", "reps")},
        # the board's DMA width (generator/hw/boards.py resolves it: 128 on zynq_ultra, 64 on
        # zynq7); 64 only when no board is given at all
        "dma": {"data_width_bits": int(board["dma_data_width"]) if board else 64},
        "graph_digest": graph_digest,
    }
    if graph.get("runtime_weights"):
        if not weights:
            raise MetadataError("the graph loads its weights at run time but the build has no "
                                "weights/weights.json")
        # the weight port (docs/WEIGHTS.md): a second DMA streams the file in with the HLS
        # top's `mode` register at 1, and takes the two checksum words back
        meta["weights"] = {"signature": str(weights["signature"]), "words": int(weights["words"]),
                           "checksum": [int(c) for c in weights["checksum"]],
                           "mode_register": ports.get("mode", "mode"), "dma": "wdma"}
    if predicted:
        meta["predicted"] = {k: predicted[k] for k in ("interval_cycles", "fps_at_clock", "clock_mhz")
                             if k in predicted}
    validate(meta)
    return meta


def digest_files(*paths) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(Path(p).read_bytes())
    return h.hexdigest()[:16]


#: largest stream frame the driver accepts (a 1024x1024x16 uint32 frame is 64 MiB).
MAX_FRAME_BYTES = 64 << 20
MAX_FILE_BYTES = 16 << 20
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STREAM_INTS = ("h", "w", "c", "bits", "beat_bytes", "frame_beats", "frame_bytes")


class _Fields:
    """Typed access to one metadata object: each getter refuses a missing key or a wrong type."""

    def __init__(self, d, where: str, source: str):
        self.source, self.where = source, where
        if not isinstance(d, dict):
            self.fail(f"{where or 'metadata'} must be an object, got {type(d).__name__}")
        self.d = d

    def fail(self, msg: str):
        raise MetadataError(f"{self.source}: {msg}")

    def get(self, key: str, types, what: str, optional: bool = False):
        if key not in self.d:
            if optional:
                return None
            self.fail(f"missing field {self.where}{key}")
        v = self.d[key]
        if v is None and optional:
            return None
        if isinstance(v, bool) and bool not in types or not isinstance(v, types):
            self.fail(f"{self.where}{key} must be {what}, got {type(v).__name__} {one_line(repr(v), 60)}")
        return v

    def integer(self, key: str, lo: int = 1, hi: int = MAX_FRAME_BYTES) -> int:
        v = self.get(key, (int,), "an integer")
        if not lo <= v <= hi:
            self.fail(f"{self.where}{key} must lie in {lo}..{hi}, got {v}")
        return v

    def text(self, key: str, optional: bool = False):
        return self.get(key, (str,), "a string", optional)

    def number(self, key: str, optional: bool = False):
        v = self.get(key, (int, float), "a number", optional)
        if v is not None and not math.isfinite(v):
            self.fail(f"{self.where}{key} must be finite, got {v}")
        return v

    def sub(self, key: str, optional: bool = False):
        v = self.get(key, (dict,), "an object", optional)
        return None if v is None else _Fields(v, f"{self.where}{key}.", self.source)


def _check_stream(f: _Fields, out: bool) -> None:
    v = {k: f.integer(k) for k in _STREAM_INTS}
    kind = f.text("kind")
    if kind not in ("uint", "int", "bit"):
        f.fail(f"{f.where}kind must be uint, int or bit, got {one_line(repr(kind), 40)}")
    if kind == "bit" and v["bits"] != 1:
        f.fail(f"{f.where}bits must be 1 for a bit stream, got {v['bits']}")
    if v["beat_bytes"] != beat_bytes(v["c"] * v["bits"]):
        f.fail(f"{f.where}beat_bytes is {v['beat_bytes']}, {v['c']} x {v['bits']} bits need "
               f"{beat_bytes(v['c'] * v['bits'])}")
    if v["frame_beats"] != v["h"] * v["w"]:
        f.fail(f"{f.where}frame_beats != h * w")
    if v["frame_bytes"] != v["frame_beats"] * v["beat_bytes"]:
        f.fail(f"{f.where}frame_bytes != frame_beats * beat_bytes")
    if out and v["bits"] > 64:
        f.fail(f"output values of {v['bits']} bits exceed int64")
    if not out and (kind, v["bits"]) != ("uint", 8):
        f.fail(f"the driver feeds uint8 pixels; input is {kind}{v['bits']}")


def validate(meta: dict, source: str = "metadata") -> dict:
    """`meta` if every field the driver and the templates use has the right type and agrees
    with the others; else MetadataError (one line naming the field)."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise MetadataError(f"{source}: not a cfgen metadata file (format != {FORMAT!r})")
    if meta.get("version") != VERSION or isinstance(meta.get("version"), bool):
        raise MetadataError(f"{source}: metadata version {one_line(repr(meta.get('version')), 40)} is not "
                            f"supported (this driver reads version {VERSION}); re-run `make package`")
    f = _Fields(meta, "", source)
    f.text("name")
    for key in ("board", "part", "dataset", "graph_digest", "build_dir"):
        f.text(key, optional=True)
    f.number("clock_mhz", optional=True)
    _check_stream(f.sub("input"), out=False)
    _check_stream(f.sub("output"), out=True)
    n = f.integer("num_classes", 1, 1 << 20)
    o = meta["output"]
    if o["h"] * o["w"] * o["c"] != n:
        f.fail(f"the output stream {o['h']}x{o['w']}x{o['c']} does not hold num_classes = {n} scores")
    names = f.get("class_names", (list,), "a list of strings")
    if len(names) != n:
        f.fail(f"class_names has {len(names)} entries, num_classes is {n}")
    bad = next((x for x in names if not isinstance(x, str)), None)
    if bad is not None:
        f.fail(f"class_names must be strings, got {type(bad).__name__} {one_line(repr(bad), 40)}")
    scale = f.number("logit_scale")
    if scale <= 0:
        f.fail(f"logit_scale must be positive (classes are the argmax of the output ints), got {scale}")
    ip = f.sub("ip")
    for key in ("top", "control", "reps_register"):
        if not _IDENT.fullmatch(ip.text(key)):
            f.fail(f"ip.{key} must be an identifier, got {one_line(repr(ip.d[key]), 60)}")
    width = f.sub("dma").integer("data_width_bits", 8, 1024)
    if width % 8 or width & (width - 1):
        f.fail(f"dma.data_width_bits must be a power of two >= 8, got {width}")
    wts = f.sub("weights", optional=True)
    if wts is not None:
        wts.text("signature")
        wts.integer("words", 0, 1 << 28)
        for key in ("mode_register", "dma"):
            if not _IDENT.fullmatch(wts.text(key)):
                f.fail(f"weights.{key} must be an identifier, got {one_line(repr(wts.d[key]), 60)}")
        cs = wts.get("checksum", (list,), "a list of two 32-bit integers")
        if len(cs) != 2 or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c < 1 << 32
                                   for c in cs):
            f.fail("weights.checksum must be two 32-bit integers")
    pred = f.sub("predicted", optional=True)
    if pred is not None:
        for key in list(pred.d):
            pred.number(key)
    return meta


def load(path) -> dict:
    """Read cfgen_meta.json: a file, a package folder, or a build folder (OUT/host/)."""
    if not isinstance(path, (str, os.PathLike)):
        raise MetadataError(f"path must be a folder or a file name, got {type(path).__name__}")
    p = Path(path)
    if p.is_dir():
        for cand in (p / FILENAME, p / "host" / FILENAME):
            if cand.is_file():
                p = cand
                break
        else:
            raise MetadataError(f"no {FILENAME} in {one_line(path)} (nor in its host/): run `make package` "
                                "in the build folder, or pass the package folder")
    if not p.is_file():
        raise MetadataError(f"metadata file {one_line(p)} does not exist")
    try:
        if p.stat().st_size > MAX_FILE_BYTES:
            raise MetadataError(f"{one_line(p)}: {p.stat().st_size} bytes is too large for a metadata file")
        meta = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as e:
        raise MetadataError(f"{one_line(p)}: cannot read metadata: {one_line(e, 200)}") from None
    return validate(meta, one_line(p))


def save(meta: dict, path) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / FILENAME
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(validate(meta), indent=2) + "\n")
    return p
