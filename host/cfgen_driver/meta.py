"""Weights-independent metadata of one accelerator build: `cfgen_meta.json`.

Written at build/package time (generator/backends/host.py, generator/package.py) from
the hardware graph; read by the driver, which therefore needs neither torch nor
graph.npz. Holds shapes, stream number formats, AXI byte widths, logit scale, class
names, the accelerator's IP/port names and the board's DMA width.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

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
    s = graph["input"]
    shape = (s["h"], s["w"], s["c"])
    if graph["num_classes"] == 10 and (shape == (8, 8, 1) or graph.get("meta", {}).get("spec_name") == "digits"):
        return "digits"
    if graph["num_classes"] == 10 and shape == (32, 32, 3):
        return "cifar10"
    return None


def default_class_names(num_classes: int, dataset: str | None) -> list[str]:
    if dataset == "digits" and num_classes == 10:
        return list(DIGITS_CLASSES)
    if dataset == "cifar10" and num_classes == 10:
        return list(CIFAR10_CLASSES)
    return [str(i) for i in range(num_classes)]


def make_meta(graph: dict, board: dict | None = None, *, dataset: str | None = None,
              class_names=None, hls_manifest: dict | None = None, predicted: dict | None = None,
              graph_digest: str | None = None) -> dict:
    """Metadata dict from a graph dict (ir.Graph.to_dict() / graph.json) and a board dict."""
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
        "ip": {"top": hm.get("top") or f"cf_{graph['name']}", "control": ports.get("control", "s_axi_control"),
               "reps_register": ports.get("reps", "reps")},
        "dma": {"data_width_bits": int(board.get("dma_data_width") or 64)},
        "graph_digest": graph_digest,
    }
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


def validate(meta: dict, source: str = "metadata") -> dict:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise MetadataError(f"{source}: not a cfgen metadata file (format != {FORMAT!r})")
    if meta.get("version") != VERSION:
        raise MetadataError(f"{source}: metadata version {meta.get('version')} is not supported "
                            f"(this driver reads version {VERSION}); re-run `make package`")
    try:
        for key in ("input", "output"):
            s = meta[key]
            for f in ("h", "w", "c", "bits", "beat_bytes", "frame_beats", "frame_bytes"):
                if int(s[f]) < 1:
                    raise MetadataError(f"{source}: {key}.{f} must be positive")
            if s["kind"] not in ("uint", "int", "bit"):
                raise MetadataError(f"{source}: {key}.kind {s['kind']!r}")
            if s["beat_bytes"] * 8 < s["c"] * s["bits"]:
                raise MetadataError(f"{source}: {key}.beat_bytes cannot hold {s['c']}x{s['bits']} bits")
            if s["frame_bytes"] != s["frame_beats"] * s["beat_bytes"]:
                raise MetadataError(f"{source}: {key}.frame_bytes != frame_beats * beat_bytes")
        if meta["input"]["kind"] != "uint" or meta["input"]["bits"] != 8:
            raise MetadataError(f"{source}: the driver feeds uint8 pixels; input is "
                                f"{meta['input']['kind']}{meta['input']['bits']}")
        if meta["output"]["bits"] > 64:
            raise MetadataError(f"{source}: output values of {meta['output']['bits']} bits exceed int64")
        if len(meta["class_names"]) != meta["num_classes"]:
            raise MetadataError(f"{source}: class_names has {len(meta['class_names'])} entries, "
                                f"num_classes is {meta['num_classes']}")
        float(meta["logit_scale"])
    except (KeyError, TypeError) as e:
        raise MetadataError(f"{source}: missing or malformed field {e}") from None
    return meta


def load(path) -> dict:
    """Read cfgen_meta.json: a file, a package folder, or a build folder (OUT/host/)."""
    p = Path(path)
    if p.is_dir():
        for cand in (p / FILENAME, p / "host" / FILENAME):
            if cand.is_file():
                p = cand
                break
        else:
            raise MetadataError(f"no {FILENAME} in {path} (nor in {path}/host): run `make package` "
                                "in the build folder, or pass the package folder")
    if not p.is_file():
        raise MetadataError(f"metadata file {p} does not exist")
    try:
        meta = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise MetadataError(f"{p}: cannot read metadata: {e}") from None
    return validate(meta, str(p))


def save(meta: dict, path) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / FILENAME
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(validate(meta), indent=2) + "\n")
    return p
