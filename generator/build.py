"""`build`: checkpoint -> IR -> folding -> vectors -> HLS + RTL projects, written atomically."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np

from .core import paths
from .core import escape, signals
from .hw import golden
from .backends import hls as hls_backend
from .backends import host as host_backend
from .backends import rtl as rtl_backend
from .hw.boards import load_board
from .core.errors import BuildError
from .hw.fold import budget_refusal, fold, fold_table, fold_warnings, load_folding, uram_nodes
from .hw.weights import BIN as WEIGHT_BIN
from .hw.weights import add_headroom
from .hw.weights import signature as hardware_signature
from .hw.weights import write as write_weights
from .flows.report import group_scale_record
from .flows.report import render as render_report
from .hw.ir import Graph
from .hw.lower import lower
from .core.outdir import BuildFolder, check_output_path
from .hw.streams import write_hex

TEMPLATES = paths.TEMPLATES


def test_images(graph: Graph, data: str, frames: int, data_dir: str | None, seed: int = 0):
    """uint8 (N, C, H, W) images and labels (None for random images)."""
    if data == "random":
        rng = np.random.default_rng(seed)
        s = graph.input
        return rng.integers(0, 256, (frames, s.c, s.h, s.w), dtype=np.uint8), None
    from .model.data import load_dataset
    ds = load_dataset(data, data_dir)
    images, labels = ds.test.images[:frames], ds.test.labels[:frames]
    s = graph.input
    if images.shape[1:] != (s.c, s.h, s.w):
        raise BuildError(f"{data} images are {images.shape[1:]}, the model takes "
                         f"{(s.c, s.h, s.w)}")
    return images, labels


def write_vectors(graph: Graph, folder: Path, images_nchw: np.ndarray, labels) -> dict:
    """Input images and every node's expected output, as .npy and beat-per-line .hex."""
    folder.mkdir(parents=True, exist_ok=True)
    pixels = np.ascontiguousarray(images_nchw.transpose(0, 2, 3, 1))
    np.save(folder / "input.npy", pixels)
    write_hex(folder / "input.hex", pixels, graph.input)
    outs = golden.run(graph, pixels)
    for node, out in zip(graph.nodes, outs):
        np.save(folder / f"{node.name}.npy", out)
        write_hex(folder / f"{node.name}.hex", out, node.out)
    if labels is not None:
        np.save(folder / "labels.npy", labels)
    pred = outs[-1].reshape(len(pixels), -1).argmax(axis=1)
    meta = {"frames": int(len(pixels)), "nodes": [n.name for n in graph.nodes],
            "output": graph.nodes[-1].name, "golden_predictions": pred.tolist(),
            "golden_acc": float((pred == labels).mean()) if labels is not None else None}
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))
    return meta


def cost_table(costs: list[dict]) -> str:
    """What CF-n saves: full-precision multiplies and stored scales per frame, per layer."""
    rows = ["      layer      prec  CF   binary MACs  fp mults (CF / filter-wise)  scales (CF / filter-wise)"]
    for c in costs:
        rows.append(f"      {c['layer']:<10} {c['precision']:<5} {str(c['cf'] or '-'):>3} "
                    f"{c['binary_macs']:>13,} {c['fp_multiplies']:>12,} / {c['fp_multiplies_filterwise']:<12,}"
                    f" {c['stored_scales']:>8} / {c['stored_scales_filterwise']}")
    return "\n".join(rows)


def render_project_files(out: Path, context: dict) -> None:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES / "project")),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters.update(escape.filters())
    for name in ("Makefile", "README.md"):
        (out / name).write_text(env.get_template(f"{name}.j2").render(**context))


#: every backend, in render order (a static list: a broken backend is an error, not absent)
BACKENDS = (("hls", hls_backend.render), ("rtl", rtl_backend.render), ("host", host_backend.render))


def backends():
    """The backends, as (name, render) pairs."""
    return list(BACKENDS)


MAX_FRAMES = 100_000
MAX_VECTOR_BYTES = 2 << 30       # the golden outputs of every node, in memory at once


def check_options(frames: int, fps: float | None, seed: int) -> None:
    if isinstance(frames, bool) or not isinstance(frames, int) or not 1 <= frames <= MAX_FRAMES:
        raise BuildError(f"--frames must be an integer in [1, {MAX_FRAMES:,}], got {frames!r:.40}")
    if fps is not None and not (isinstance(fps, (int, float)) and math.isfinite(fps)
                                and 0 < fps <= 1e9):
        raise BuildError(f"--fps must be a number in (0, 1e9] frames/s, got {fps!r:.40}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise BuildError(f"--seed must be an integer in [0, 2**32), got {seed!r:.40}")


def check_vector_budget(graph: Graph, frames: int) -> None:
    """Refuse --frames whose golden outputs would not fit in memory, with the numbers."""
    per_frame = graph.input.h * graph.input.w * graph.input.c + sum(
        n.out.h * n.out.w * n.out.c for n in graph.nodes)
    need = per_frame * 8 * frames
    if need > MAX_VECTOR_BYTES:
        most = max(1, MAX_VECTOR_BYTES // (per_frame * 8))
        raise BuildError(f"--frames {frames:,} needs {need / 2**30:.1f} GiB of test vectors "
                         f"({per_frame:,} values per frame); at most {most:,} frames fit "
                         f"{MAX_VECTOR_BYTES >> 30} GiB")


#: a folding this many times slower than the board's logic allows, because the weights
#: crowd the memories, is refused unless --accept-slow (a design nobody wants by accident)
SLOW_FACTOR = 10
#: memory use (of the budget) above which the folding may be memory-bound and is compared
MEMORY_BOUND_SHARE = 0.5


def memory_bound_refusal(graph: Graph, perf: dict, board, *, mult: str = "auto",
                         util: dict | None = None) -> str | None:
    """One line when the folding found is SLOW_FACTOR x slower than the same graph folded
    with unlimited block RAM and UltraRAM (the board's compute bound): memory, not logic, set
    the frame rate. Only checked when the memories are over half used (otherwise they did
    not bind)."""
    res, budget = perf["resources"], perf["budget"]
    used = max((res.get(r, 0) / budget[r] for r in ("BRAM36", "URAM") if budget.get(r)), default=0)
    if used < MEMORY_BOUND_SHARE:
        return None
    roomy = dataclasses.replace(board, resources={**board.resources, "BRAM36": 1 << 30,
                                                  "URAM": 1 << 30})
    try:
        ref = fold(graph, roomy, mult=mult, util=util, uram=False)
    except BuildError:
        return None
    if ref["fps_at_clock"] < SLOW_FACTOR * perf["fps_at_clock"]:
        return None
    mem = ", ".join(f"{r} {res.get(r, 0):,.1f} of {board.resources.get(r, 0):,}" for r in ("BRAM36", "URAM")
                    if board.resources.get(r))
    return (f"{graph.name} fits {board.name} only at {perf['fps_at_clock']:,.1f} frames/s "
            f"({perf['interval_cycles']:,} cycles), memory-bound ({mem}): with room for its "
            f"weights the board's logic would reach {ref['fps_at_clock']:,.0f} frames/s "
            f"({ref['interval_cycles']:,} cycles). A board with more block RAM or UltraRAM, "
            f"fewer channels, or --accept-slow to build it anyway")


def check_inputs_outside(out: Path, inputs: dict) -> None:
    """An input inside the folder a build replaces would be deleted by it: refuse."""
    try:
        root = out.resolve()
        if not out.exists():
            return
        for what, path in inputs.items():
            if path and Path(path).exists() and Path(path).resolve().is_relative_to(root):
                raise BuildError(f"{what} {path} lies inside {out}, which this build would "
                                 "replace; move it out first")
    except OSError:
        return              # the path checks that follow give the reason


def build(checkpoint: str, board_name: str, out_dir: str, *, data: str = "random",
          data_dir: str | None = None, frames: int = 100, fps: float | None = None,
          folding_file: str | None = None, force: bool = False, seed: int = 0,
          mult: str = "auto", util: dict | None = None, clock_mhz: float | None = None,
          over_budget: bool = False, runtime_weights: bool = False, accept_slow: bool = False,
          log=print) -> dict:
    out = Path(out_dir)
    check_options(frames, fps, seed)
    check_output_path(out, force)
    check_inputs_outside(out, {"checkpoint": checkpoint, "--folding": folding_file,
                               "--board": board_name, "--data-dir": data_dir})
    try:
        with BuildFolder(out, force) as folder:     # locked from here: one build per folder
            report = _build_into(folder, checkpoint, board_name, data=data, data_dir=data_dir,
                                 frames=frames, fps=fps, folding_file=folding_file, seed=seed,
                                 mult=mult, util=util, clock_mhz=clock_mhz,
                                 over_budget=over_budget, runtime_weights=runtime_weights,
                                 accept_slow=accept_slow, log=log)
    except OSError as exc:          # disk full, permissions changed under us, ...
        where = f" ({exc.filename})" if exc.filename else ""
        raise BuildError(f"{out}: could not write the build folder: "
                         f"{exc.strerror or type(exc).__name__}{where}") from None
    log(f"wrote {out}/ ({', '.join(['vectors'] + [n for n, _ in backends()])})")
    return report


def _build_into(folder: BuildFolder, checkpoint, board_name, *, data, data_dir, frames, fps,
                folding_file, seed, mult, util, log, clock_mhz=None, over_budget=False,
                runtime_weights=False, accept_slow=False) -> dict:
    board = load_board(board_name)
    if clock_mhz:
        board = board.with_clock(clock_mhz)       # --clock overrides the board's clock
    from .model.qonnx_io import load_model_file  # .pt checkpoint or .onnx (QONNX) file
    ckpt = load_model_file(checkpoint)
    log(f"[1/5] lowering {checkpoint} ({ckpt.spec['name']}) to the hardware graph")
    graph = lower(ckpt)
    graph.meta["board"] = board.name
    graph.meta["clock_mhz"] = board.clock_mhz   # pipelining follows it (pipeline.py)
    log(cost_table(graph.meta["cf_costs"]))
    if runtime_weights:
        add_headroom(graph)     # room for a retrained model's ranges (hw/weights.py)
    folding = load_folding(folding_file) if folding_file else None
    unfolded = copy.deepcopy(graph) if not (folding or fps or accept_slow) else None
    # --over-budget builds the block-RAM folding as before; without it a design that only
    # fits with UltraRAM is found and built with run-time weights (UltraRAM starts empty)
    perf = fold(graph, board, fps=fps, folding=folding, mult=mult, util=util,
                uram=not over_budget)
    signals.check()          # a signal whose exception a library swallowed
    log(f"[2/5] folded for {board.name}: predicted interval {perf['interval_cycles']} cycles, "
        f"{perf['fps_at_clock']:.0f} frames/s at {perf['clock_mhz']} MHz")
    log(fold_table(perf, board))
    refusal = budget_refusal(graph, perf, board)
    if refusal and not over_budget:
        raise BuildError(refusal)
    if unfolded is not None and not refusal:
        refusal = memory_bound_refusal(unfolded, perf, board, mult=mult, util=util)
        if refusal:
            raise BuildError(refusal)
    # UltraRAM has no initial contents: weights there are written through the weight port
    held = uram_nodes(perf)
    if held and not runtime_weights:
        log(f"      note: the weights of {', '.join(held[:4])}{' ...' if len(held) > 4 else ''} "
            "live in UltraRAM, which starts empty: building with run-time weights")
        runtime_weights = True
    graph.runtime_weights = bool(runtime_weights)
    check_vector_budget(graph, frames)      # after the folding: a design that cannot fit says so first
    for warning in fold_warnings(perf):
        log(f"      warning: {warning}")
    tmp = folder.tmp
    graph.save(tmp)
    signals.check()
    log(f"[3/5] golden model: {frames} test vectors ({data})")
    images, labels = test_images(graph, data, frames, data_dir, seed)
    vec = write_vectors(graph, tmp / "vectors", images, labels)
    for i, (name, render) in enumerate(backends()):
        signals.check()
        if name == "host" and graph.runtime_weights:
            # the driver's metadata names the weight file, signed by the hardware sources
            man = write_weights(graph, tmp / "weights", hardware_signature(tmp))
            log(f"      run-time weights: {man['words']:,} words ({man['words'] * 4 / 1024:,.1f} KiB) "
                f"in {len(man['memories'])} memories, weights/{WEIGHT_BIN}")
        log(f"[4/5] rendering the {name.upper()} backend")
        render(graph, tmp, board)
    report = {"checkpoint": str(checkpoint), "board": board.name, "model": ckpt.spec["name"],
              "predicted": perf, "cf_costs": graph.meta["cf_costs"],
              "vectors": {"frames": vec["frames"], "data": data, "golden_acc": vec["golden_acc"]},
              "board_info": board.report_info(),
              "scales": group_scale_record(ckpt)}
    (tmp / "report.json").write_text(json.dumps(report, indent=2))
    (tmp / "board.json").write_text(json.dumps(board.to_json(), indent=2) + "\n")
    (tmp / "folding.json").write_text(json.dumps(perf["folding"], indent=2) + "\n")
    render_report(tmp, log=lambda *a: None)
    try:
        render_project_files(tmp, {"graph": graph, "board": board, "perf": perf,
                                   "python": sys.executable, "checkpoint": str(checkpoint),
                                   "frames": vec["frames"], "data": data,
                                   "backends": [n for n, _ in backends()]})
    except ValueError as exc:       # a path that no Makefile can hold
        raise BuildError(str(exc)) from None
    signals.check()
    log("[5/5] writing the build folder")
    folder.commit()
    return report
