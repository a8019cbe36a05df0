"""Host backend: what the board driver (host/cfgen_driver) needs from a build.

    render(graph, out_dir, board) writes
        out_dir/host/cfgen_meta.json    weights-independent metadata (shapes, formats, classes)
        out_dir/host/csim_shim.cpp      extern "C" shim for the C-simulation shared library
        out_dir/notebook/cfgen_demo.ipynb  the demo notebook, set up to run from the build folder
`python -m generator.flows.package OUT` assembles the board package, `python -m generator.flows.notebook OUT`
executes the notebook (docs/HOST.md).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..core import paths

from ..core.hostdriver import HOST_DIR, driver  # noqa: F401  (re-exported for the flows)

REPO_ROOT = paths.REPO_ROOT
TEMPLATES = paths.TEMPLATES / "host"


def read_build_json(path, what: str = "object") -> dict:
    """A JSON object from the build folder (graph.json, report.json, hls/manifest.json, ...);
    BuildError (one line) when it is missing, not JSON, or not an object."""
    from ..core.errors import BuildError
    from ..core.escape import one_line

    path = Path(path)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as e:
        raise BuildError(f"{one_line(path)}: missing or damaged ({type(e).__name__}: {one_line(e, 160)}); "
                         "rebuild with `python -m generator build`") from None
    if not isinstance(d, dict):
        raise BuildError(f"{one_line(path)}: damaged (holds a {type(d).__name__}, not an {what})")
    return d


#: the HLS top's port names (templates/hls/top.cpp.j2; hls/manifest.json "ports").
HLS_PORTS = {"in": "in_stream", "out": "out_stream", "control": "s_axi_control", "reps": "reps"}


def hls_interface(graph_dict: dict) -> dict:
    """What the driver needs of the HLS top, from the graph alone, by the HLS backend's own
    rules (names.top_name for the top name, hls.axi_bits / hls.dma_bits for the port widths): the
    values hls/manifest.json records ('top', 'ports', 'input'/'output' 'axi_bits'), so the
    host backend does not depend on the order in which the backends render."""
    from ..core.names import top_name as _top
    from .hls import axi_bits, dma_bits
    out = {"top": _top(graph_dict["name"]), "ports": dict(HLS_PORTS)}
    for key, s in (("input", graph_dict["input"]), ("output", graph_dict["nodes"][-1]["out"])):
        axi = axi_bits(int(s["c"]) * int(s["bits"]))
        out[key] = {"bits": int(s["c"]) * int(s["bits"]), "axi_bits": axi, "dma_bits": dma_bits(axi)}
    return out


def top_name(graph_name: str, out_dir=None) -> str:
    """The HLS top of a graph named `graph_name` (names.top_name)."""
    from ..core.names import top_name as _top
    return _top(graph_name)


def build_board(out_dir):
    """The Board a build folder was made for: OUT/board.json (written by `build`, --clock
    included), else the board named in report.json (older folders), else None."""
    from ..hw.boards import Board, load_board
    out_dir = Path(out_dir)
    if (out_dir / "board.json").is_file():
        return Board.read(out_dir / "board.json")
    rep = out_dir / "report.json"
    if rep.is_file():
        name = read_build_json(rep).get("board")
        if name:
            return load_board(name)
    return None


def build_meta(graph_dict: dict, out_dir, board, *, data: str | None = None,
               class_names=None, predicted: dict | None = None) -> dict:
    """cfgen_meta.json contents for the build in out_dir (graph.json already written there).
    `board`: a boards.Board (or a board dict, resolved by boards.as_board) or None (unknown)."""
    from ..hw.boards import as_board
    out_dir = Path(out_dir)
    m = driver().meta
    try:
        interface = hls_interface(graph_dict)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        interface = None    # a malformed graph: make_meta says what is wrong
    board_json = None if board is None else as_board(board).to_json()
    files = [out_dir / n for n in ("graph.json", "graph.npz") if (out_dir / n).is_file()]
    dataset = m.guess_dataset(graph_dict, data)
    weights = None
    man = out_dir / "weights" / "weights.json"
    if graph_dict.get("runtime_weights") and man.is_file():
        weights = read_build_json(man)
    return m.make_meta(graph_dict, board_json, dataset=dataset, class_names=class_names,
                       hls_manifest=interface, predicted=predicted,
                       graph_digest=m.digest_files(*files) if files else None, weights=weights)


def render(graph, out_dir, board=None) -> Path:
    out_dir = Path(out_dir)
    host = out_dir / "host"
    host.mkdir(parents=True, exist_ok=True)
    meta = build_meta(graph.to_dict(), out_dir, board)
    driver().meta.save(meta, host)
    shutil.copy2(TEMPLATES / "csim_shim.cpp", host / "csim_shim.cpp")
    from .notebook import render_notebook
    render_notebook(out_dir / "notebook" / "cfgen_demo.ipynb", meta, package=False)
    return host
