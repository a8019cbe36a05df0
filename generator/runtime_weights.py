"""The `weights` command: a model's run-time weight file for an existing build.

The model is lowered as a build would lower it and given the build's folding (every
hardware choice the folding made, `FOLDING_FIELDS`) and, where its values fit, the build's
wider number formats (`WIDTH_FIELDS`, int stream widths: a wider accumulator, threshold or
stream holds the same values, so its golden model is unchanged). Then the HLS and Verilog
sources are rendered for it and must be the build's, byte for byte (weights.signature):
the bitstream computes this model's golden model once its weights are loaded. The folder
written holds weights.{bin,hex,json}, the model's graph.json / graph.npz (what the driver's
golden backend runs) and golden test vectors (vectors/)."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from .build import check_inputs_outside, check_vector_budget, test_images, write_vectors
from .core import signals
from .core.errors import BuildError, CfgenError
from .core.outdir import BuildFolder, check_output_path
from .hw import weights
from .hw.ir import STREAM_FIELDS, Graph
from .hw.lower import lower

#: the node fields the folding decides (fold.py, perf.size_skip_fifos): a model for an
#: existing build takes them from it
FOLDING_FIELDS = ("pe", "simd", "mult", "pipe", "dsp_group", "weight_mem", "skip_depth")
#: widths of two's-complement / unsigned quantities: a model whose values need fewer bits
#: than the build's takes the build's (shifts and fraction bits must agree exactly)
WIDTH_FIELDS = ("acc_bits", "thr_bits", "sum_bits", "group_bits", "bias_bits", "m_bits",
                "param_bits")


def build_signature(build: Path) -> str:
    """The hardware signature the build's weight file was written with, read by the driver's
    reader (which checks the file against its own checksum too)."""
    from .core.hostdriver import driver
    driver()
    from cfgen_driver.errors import WeightsError
    from cfgen_driver.weightfile import read
    try:
        return read(build / "weights").signature
    except WeightsError as exc:
        raise BuildError(f"{build}: {str(exc)[:300]}; rebuild it") from None


def adopt_folding(graph: Graph, built: Graph) -> None:
    """Give `graph` the folding of `built`, node by node; one line when they differ in nodes."""
    if [(n.name, n.kind) for n in graph.nodes] != [(n.name, n.kind) for n in built.nodes]:
        have = ", ".join(f"{n.name}:{n.kind}" for n in graph.nodes[:6])
        want = ", ".join(f"{n.name}:{n.kind}" for n in built.nodes[:6])
        raise BuildError(f"the model's hardware nodes ({have}{' ...' if len(graph.nodes) > 6 else ''}) "
                         f"are not the build's ({want}{' ...' if len(built.nodes) > 6 else ''}): "
                         "another architecture needs its own build")
    for n, b in zip(graph.nodes, built.nodes):
        for f in FOLDING_FIELDS:
            if hasattr(b, f):
                setattr(n, f, getattr(b, f))
    for n, b in zip(graph.nodes, built.nodes):
        for f in WIDTH_FIELDS:
            if hasattr(b, f) and getattr(n, f) is not None and getattr(b, f) is not None \
                    and getattr(n, f) <= getattr(b, f):
                setattr(n, f, getattr(b, f))
        for f in STREAM_FIELDS:
            a, w = getattr(n, f, None), getattr(b, f, None)
            if a is not None and w is not None and a.kind == w.kind != "bit" and a.bits <= w.bits \
                    and (a.h, a.w, a.c) == (w.h, w.w, w.c):
                setattr(n, f, dataclasses.replace(a, bits=w.bits))
    if graph.input.bits <= built.input.bits and graph.input.kind == built.input.kind:
        graph.input = built.input
    graph.runtime_weights = True
    for k in ("board", "clock_mhz"):
        if k in built.meta:
            graph.meta[k] = built.meta[k]


def rendered_signature(graph: Graph, build: Path) -> str:
    """The signature of the hardware sources the build's backends render for `graph`."""
    from .backends import hls, rtl
    from .backends.host import build_board
    board = build_board(build)
    with tempfile.TemporaryDirectory(prefix="cfgen-weights-") as tmp:
        hls.render(graph, tmp, board)
        rtl.render(graph, tmp, board)
        return weights.signature(tmp)


#: IR fields that describe the model, not the hardware (real scales, spec references)
INFO_FIELDS = ("out_scale", "ref_layer")


def first_difference(graph: Graph, built: Graph) -> str:
    """The first IR scalar, or else unit parameter, that makes two graphs' hardware differ,
    for the refusal."""
    from .hw import units
    a, b = graph.to_dict(), built.to_dict()
    for na, nb in zip(a["nodes"], b["nodes"]):
        for k in sorted(set(na) | set(nb)):
            if k not in INFO_FIELDS and na.get(k) != nb.get(k):
                return (f"{na.get('name')}.{k} is {str(na.get(k))[:40]} here, "
                        f"{str(nb.get(k))[:40]} in the build")
    for na, nb in zip(graph.nodes, built.nodes):
        ca, cb = units.plan(na).core, units.plan(nb).core
        for f in dataclasses.fields(ca):
            va, vb = getattr(ca, f.name), getattr(cb, f.name, None)
            if va != vb:
                return (f"{na.name}: its unit's {f.name} is {str(va)[:30]} here, {str(vb)[:30]} "
                        "in the build")
    ma = [(m.node, m.role, m.depth, m.width) for m in weights.memories(graph)]
    mb = [(m.node, m.role, m.depth, m.width) for m in weights.memories(built)]
    for x, y in zip(ma, mb):
        if x != y:
            return f"memory {x[0]}.{x[1]} is {x[2]}x{x[3]} here, {y[2]}x{y[3]} in the build"
    return "the rendered sources differ"


def write_model_weights(model: str, build_dir: str, out_dir: str, *, data: str = "random",
                        data_dir: str | None = None, frames: int = 16, seed: int = 0,
                        force: bool = False, log=print) -> dict:
    build, out = Path(build_dir), Path(out_dir)
    check_output_path(out, force)
    check_inputs_outside(out, {"model": model, "build": build_dir, "--data-dir": data_dir})
    built = Graph.load(build)
    if not built.runtime_weights:
        raise BuildError(f"{build}: built without --runtime-weights (its weights are in the "
                         "bitstream); rebuild with --runtime-weights to swap models")
    want = build_signature(build)
    if want != weights.signature(build):
        raise BuildError(f"{build}: its HLS / Verilog sources are not those its weights/"
                         f"{weights.MANIFEST} was signed with (edited after the build?); rebuild")
    from .model.qonnx_io import load_model_file
    ckpt = load_model_file(model)
    log(f"lowering {model} ({ckpt.spec['name']}) with the folding of {build}")
    graph = lower(ckpt)
    adopt_folding(graph, built)
    try:
        graph.validate()
    except CfgenError as exc:
        raise BuildError(f"{model}: does not fit the folding of {build}: {exc}") from None
    got = rendered_signature(graph, build)
    if got != want:
        raise BuildError(f"{model}: its hardware differs from {build}'s ({first_difference(graph, built)}): "
                         "same architecture, folding and number formats are needed; build it instead")
    check_vector_budget(graph, frames)
    signals.check()
    with BuildFolder(out, force) as folder:
        tmp = folder.tmp
        man = weights.write(graph, tmp, got)
        graph.save(tmp)
        images, labels = test_images(graph, data, frames, data_dir, seed)
        write_vectors(graph, tmp / "vectors", images, labels)
        signals.check()
        folder.commit()
    return man
