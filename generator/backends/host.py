"""Host backend: what the board driver (host/cfgen_driver) needs from a build.

    render(graph, out_dir, board) writes
        out_dir/host/cfgen_meta.json    weights-independent metadata (shapes, formats, classes)
        out_dir/host/csim_shim.cpp      extern "C" shim for the C-simulation shared library
        out_dir/notebook/cfgen_demo.ipynb  the demo notebook, set up to run from the build folder
`python -m generator.package OUT` assembles the board package, `python -m generator.notebook OUT`
executes the notebook (docs/HOST.md).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST_DIR = REPO_ROOT / "host"
TEMPLATES = REPO_ROOT / "templates" / "host"


def driver():
    """The cfgen_driver package (host/), importable without installing it."""
    if str(HOST_DIR) not in sys.path:
        sys.path.insert(0, str(HOST_DIR))
    import cfgen_driver
    return cfgen_driver


def read_build_json(path, what: str = "object") -> dict:
    """A JSON object from the build folder (graph.json, report.json, hls/manifest.json, ...);
    BuildError (one line) when it is missing, not JSON, or not an object."""
    from ..errors import BuildError
    from ..escape import one_line

    path = Path(path)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as e:
        raise BuildError(f"{one_line(path)}: missing or damaged ({type(e).__name__}: {one_line(e, 160)}); "
                         "rebuild with `python -m generator build`") from None
    if not isinstance(d, dict):
        raise BuildError(f"{one_line(path)}: damaged (holds a {type(d).__name__}, not an {what})")
    return d


def top_name(graph_name: str, out_dir: Path) -> str:
    man = out_dir / "hls" / "manifest.json"
    if man.is_file():
        return read_build_json(man).get("top")
    try:
        from .hls import sanitize
        return sanitize(f"cf_{graph_name}", "cf")
    except ImportError:
        import re
        return "cf_" + re.sub(r"[^A-Za-z0-9_]", "_", str(graph_name))


def build_meta(graph_dict: dict, out_dir, board: dict | None, *, data: str | None = None,
               class_names=None, predicted: dict | None = None) -> dict:
    """cfgen_meta.json contents for the build in out_dir (graph.json already written there)."""
    out_dir = Path(out_dir)
    m = driver().meta
    man_path = out_dir / "hls" / "manifest.json"
    manifest = read_build_json(man_path) if man_path.is_file() else {
        "top": top_name(graph_dict.get("name"), out_dir)}
    files = [out_dir / n for n in ("graph.json", "graph.npz") if (out_dir / n).is_file()]
    dataset = m.guess_dataset(graph_dict, data)
    return m.make_meta(graph_dict, board, dataset=dataset, class_names=class_names, hls_manifest=manifest,
                       predicted=predicted, graph_digest=m.digest_files(*files) if files else None)


def render(graph, out_dir, board=None) -> Path:
    out_dir = Path(out_dir)
    host = out_dir / "host"
    host.mkdir(parents=True, exist_ok=True)
    meta = build_meta(graph.to_dict(), out_dir, board)
    driver().meta.save(meta, host)
    shutil.copy2(TEMPLATES / "csim_shim.cpp", host / "csim_shim.cpp")
    from ..notebook import render_notebook
    render_notebook(out_dir / "notebook" / "cfgen_demo.ipynb", meta, package=False)
    return host
