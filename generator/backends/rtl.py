"""RTL backend: hardware graph -> Verilog top stitching the rtl/ library units.

`render(graph, out_dir, board)` writes

    out_dir/rtl/cfgen_top.v     generated top (AXI4-Stream in/out, units + FIFOs)
    out_dir/rtl/cf_*.v          copies of the library units it uses
    out_dir/rtl/mem/*.hex       weights / thresholds / scales ($readmemh, one word per line;
                                a build with run-time weights has none for the memories the
                                weight port writes, docs/WEIGHTS.md)
    out_dir/rtl/manifest.json   what the simulation and synthesis drivers need
    out_dir/sim/cfgen_tb.v      simulation wrapper: per-node golden checkers, cycle stamps
    out_dir/sim/cfgen_sim.py    the cocotb test module (copied from sim/)

Memory files are referenced as "../rtl/mem/<file>" (MEM_DIR): run simulators and Yosys
from a sibling folder of rtl/ (sim/, synth/), as generator.flows.rtlsim and generator.flows.synth do.

Every node maps to a few library units (docs/RTL.md):
    conv      cf_swg (window, replayed C_out/PE times) -> cf_mvu -> cf_fifo
              tap-parallel (SIMD = m*C_in): cf_swg (pixels) -> cf_widen (m taps, replay) -> cf_mvu
    maxpool   cf_swg (pads with the pool mask) -> cf_maxpool -> cf_fifo
    avgpool   cf_swg (pads with 0) -> cf_avgpool -> cf_fifo
    scalemac  cf_swg (k=1, replay) -> cf_scalemac -> cf_fifo
    globalsum cf_globalsum -> cf_fifo
    resadd    body (a) and shortcut (b, through a cf_fifo of the node's skip depth) ->
              cf_resadd -> cf_fifo
A stream two nodes read (a residual block's input) passes a cf_fork, one output per reader.
A window that is the identity on whole pixels (`Window.wire`: a k = 1 average pool of whole
pixels) has no cf_swg: the core reads the stream.

Memory contents come from `units.contents` alone (the one owner, also of the run-time weight
stream, generator/hw/weights.py). With `Graph.runtime_weights` every memory of that stream is
a RAM (the unit's WRT 1, cf_ram) written by cf_wload from the top's s_axis_wgt port, and the
frame input waits until the loader says `loaded` (docs/RTL.md, "Run-time weights").
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core import paths
from ..core import escape
from ..hw import units, weights
from ..core.errors import BuildError
from ..hw.ir import Graph, Stream, clog2, next_pow2
from ..core.names import node_idents
from ..hw.units import avgpool, conv, resadd, scalemac
from ..hw.pipeline import PCH
from ..hw.units.common import NODE_FIFO_DEPTH

REPO = paths.REPO_ROOT
LIB_DIR = paths.RTL_LIB
TEMPLATE_DIR = paths.TEMPLATES / "rtl"
SIM_SRC_DIR = paths.SIM_SRC

TOP = "cfgen_top"
TB = "cfgen_tb"
MEM_DIR = "../rtl/mem/"
VEC_DIR = "../vectors/"
SIM_MODULE = "cfgen_sim"
MAXF = 64                    # per-frame cycle stamps kept by the test bench

# library files, in dependency order (cf_ram and cf_wload: the weight port of a build with
# run-time weights; copied into every build, instantiated only there)
LIBRARY = ["cf_fifo.v", "cf_rom.v", "cf_ram.v", "cf_swg.v", "cf_widen.v", "cf_add.v", "cf_mvu.v", "cf_maxpool.v", "cf_avgpool.v", "cf_scalemac.v",
           "cf_globalsum.v", "cf_resadd.v", "cf_fork.v", "cf_axis_in.v", "cf_axis_out.v", "cf_wload.v"]
SIM_LIBRARY = ["cf_check.v"]


# memory file suffix per memory role (<node>_<suffix>.hex)
SUFFIX = {"weights": "w", "params": "p", "thresholds": "t", "scales": "s", "bias": "b"}
# the write-enable bits of each unit's write port, by memory role (bit 0 first)
WRITE_PORT = {"cf_mvu": ("weights", "params"), "cf_scalemac": ("weights", "scales", "bias"),
              "cf_avgpool": ("thresholds",), "cf_resadd": ("params",)}


# ----------------------------------------------------------------------------- helpers

def fifo_cw(depth: int) -> int:
    """Width of cf_fifo's count port."""
    return clog2(depth + 1)


def tdata_width(bits: int) -> int:
    return (bits + 7) // 8 * 8


def vhex(width: int, value: int) -> str:
    """A sized Verilog hex literal."""
    value &= (1 << width) - 1
    return f"{width}'h{value:x}"


def vstr(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def pack_words(values: np.ndarray, bits: int) -> list[str]:
    """(words, fields) integers -> hex words (MSB first); field f at [f*bits, (f+1)*bits),
    two's complement for negative values. The bytes are `weights.word_bytes`' (the weight
    stream's), reversed: a memory file and the stream cannot disagree."""
    v = np.asarray(values, dtype=np.int64)
    if v.ndim == 1:
        v = v[:, None]
    digits = (v.shape[1] * bits + 3) // 4
    by = weights.word_bytes(v, bits)[:, ::-1]
    return [row.tobytes().hex()[-digits:] for row in by]


def addr_bits(depth: int) -> int:
    """Address width of a memory of `depth` words (cf_rom / cf_ram: at least 1)."""
    return clog2(depth) if depth > 1 else 1


def write_mem(path: Path, words: list[str]) -> None:
    path.write_text("".join(w + "\n" for w in words))


# ----------------------------------------------------------------------------- plan

@dataclass
class Unit:
    module: str
    inst: str
    params: list            # [(name, verilog literal)]
    inp: str                # input stream prefix
    out: str                # output stream prefix
    out_w: int
    depth: int = 0          # cf_fifo only
    inp_b: str = ""         # cf_resadd: the second input (b, the shortcut)
    out_b: str = ""         # cf_fork: the second output
    wr: str = ""            # the write port's connections (units with memories)

    def to_json(self) -> dict:
        d = {"module": self.module, "inst": self.inst, "params": dict(self.params),
             "in": self.inp, "out": self.out, "out_w": self.out_w}
        if self.inp_b:
            d["in_b"] = self.inp_b
        if self.out_b:
            d["out_b"] = self.out_b
        return d


@dataclass
class NodePlan:
    index: int
    name: str
    kind: str
    desc: str
    stream: str             # output stream prefix (after the node FIFO)
    out_w: int
    beats: int              # beats per frame
    cycles: int             # cycles per frame (the unit plan's)
    pipe: int = 0           # pipeline depth (the unit plan's)
    units: list = field(default_factory=list)
    mems: dict = field(default_factory=dict)   # file name -> words
    fork: Unit | None = None                   # cf_fork of the output when two nodes read it


def _swg(i: int, inp: str, win: units.Window) -> Unit:
    params = [("H", win.h), ("W", win.w), ("C", win.c), ("B", win.bits), ("K", win.k),
              ("S", win.stride), ("P", win.pad), ("SIMD", win.simd), ("NF", win.nf),
              ("PAD", vhex(win.pixel_width, win.pad_pixel)), ("DEPTH", win.depth),
              ("RSTYLE", int(win.block_ram)), ("TAPS", win.row_taps)]
    return Unit("cf_swg", f"u{i}_swg", params, inp, f"n{i}_win", win.out_width)


def _finish(i: int, units_: list, width: int, depth: int = NODE_FIFO_DEPTH) -> list:
    """Name the node's output stream n<i>, adding a FIFO when depth > 0."""
    if depth > 0:
        units_.append(Unit("cf_fifo", f"u{i}_fifo", [("W", width), ("DEPTH", depth)],
                           units_[-1].out, f"n{i}", width, depth=depth))
    else:
        units_[-1].out = f"n{i}"
    return units_


def _node_plan(i: int, p: units.Plan, desc: str, chain: list, mems: dict | None = None) -> NodePlan:
    return NodePlan(i, p.name, p.kind, desc, f"n{i}", p.out_width, p.out_beats, p.cycles,
                    p.pipe, _finish(i, chain, p.out_width), mems or {})


@dataclass(frozen=True)
class Loader:
    """The weight port of a build with run-time weights: cf_wload's layout and where each
    memory of the stream is ({(node name, role): stream index})."""
    mems: tuple             # weights.LoadMem, in stream order
    index: dict

    @classmethod
    def of(cls, graph: Graph) -> "Loader":
        mems = tuple(weights.memories(graph))
        if not mems:
            raise BuildError(f"graph {graph.name}: run-time weights, but no node has a memory "
                             "to load (build without --runtime-weights)")
        return cls(mems, {(m.node, m.role): m.index for m in mems})

    @property
    def width(self) -> int:
        return max(m.width for m in self.mems)

    @property
    def addr(self) -> int:
        return max(addr_bits(m.depth) for m in self.mems)

    def params(self) -> list:
        n = len(self.mems)
        depths = "".join(f"{m.depth:08x}" for m in reversed(self.mems))
        chunks = "".join(f"{m.chunks_per_word:08x}" for m in reversed(self.mems))
        return [("NMEM", n), ("WMAX", self.width), ("AW", self.addr),
                ("DEPTHS", f"{32 * n}'h{depths}"), ("CHUNKS", f"{32 * n}'h{chunks}")]

    def to_json(self) -> dict:
        return {"nmem": len(self.mems), "wmax": self.width, "aw": self.addr,
                "words": sum(m.words for m in self.mems),
                "memories": [{"index": m.index, "node": m.node, "role": m.role,
                              "depth": m.depth, "width": m.width, "offset": m.offset,
                              "chunks": m.chunks_per_word} for m in self.mems]}


def memory_files(node, tag: str, loader: Loader | None = None) -> dict:
    """{file name: hex words} of a node's ROMs, from `units.contents` (the one owner of
    memory contents); a memory the weight port writes (run-time weights) has none."""
    out = {}
    for mem, fields, bits in units.contents(node):
        if loader is not None and (node.name, mem.role) in loader.index:
            continue
        out[f"{tag}_{SUFFIX[mem.role]}.hex"] = pack_words(fields, bits)
    return out


def _file(tag: str, role: str, mems: dict) -> str:
    """The FILE parameter of a memory: its file, or "" when the weight port writes it."""
    name = f"{tag}_{SUFFIX[role]}.hex"
    return vstr(MEM_DIR + name) if name in mems else vstr("")


def _write_port(module: str, node, p: units.Plan, loader: Loader | None) -> tuple[list, str]:
    """(extra unit parameters, write-port connections) of a unit with memories: with the
    loader, WRT 1 and the memories it writes, each enable bit from the loader's one-hot
    wl_en; otherwise (ROM) the ports tied to 0 and no parameter (the unit's defaults)."""
    roles = WRITE_PORT[module]
    n = len(roles)
    idx = [loader.index.get((node.name, r)) for r in roles] if loader else [None] * n
    if all(k is None for k in idx):
        return [], f".wr_en({n}'d0), .wr_addr(1'b0), .wr_data(1'b0)"
    if any(k is None for k in idx):
        missing = [r for r, k in zip(roles, idx) if k is None]
        raise BuildError(f"{node.name}: run-time weights need its {', '.join(missing)} "
                         f"memor{'y' if len(missing) == 1 else 'ies'} in the weight stream")
    mems = {m.role: m for m in p.memories}
    la = max(addr_bits(mems[r].depth) for r in roles)
    ld = max(mems[r].width for r in roles)
    en = ", ".join(f"wl_en[{k}]" for k in reversed(idx))
    en = f"{{{en}}}" if n > 1 else en
    return ([("WRT", 1), ("LA", la), ("LD", ld)],
            f".wr_en({en}), .wr_addr(wl_addr[{la - 1}:0]), .wr_data(wl_data[{ld - 1}:0])")


def _weight_style(node, wmem, loader: Loader | None) -> int:
    """cf_rom / cf_ram STYLE of a weight memory: 3 (UltraRAM) when the folding put it there,
    which needs the weight port (UltraRAM has no initial contents)."""
    if getattr(node, "weight_mem", "auto") == "uram":
        if loader is None:
            raise BuildError(f"{node.name}: its weights are in UltraRAM (weight_mem 'uram'), "
                             "which starts empty: build with --runtime-weights")
        return 3
    return int(wmem.block)


def plan_conv(i: int, node, inp: str, tag: str, loader: Loader | None = None) -> NodePlan:
    p = units.plan(node)
    m: conv.Matrix = p.core
    swg = _swg(i, inp, p.window)
    chain = [swg]
    if p.widen is not None:
        # tap-parallel: whole pixels (or window rows) gathered into SIMD-wide beats, replayed
        w = p.widen
        chain.append(Unit("cf_widen", f"u{i}_widen", [("IW", w.iw), ("R", w.r), ("SF", w.sf),
                                                       ("NF", w.nf)],
                          swg.out, f"n{i}_wide", w.out_width))
    wmem = next(mm for mm in p.memories if mm.role == "weights")
    mems = memory_files(node, tag, loader)
    extra, wr = _write_port("cf_mvu", node, p, loader)
    chain.append(Unit("cf_mvu", f"u{i}_mvu", [
        ("MATRIX", 0 if m.xnor else 1), ("SIMD", m.simd), ("PE", m.pe), ("KD", m.kd),
        ("CO", m.co), ("ACT", 0 if m.act == "threshold" else 1), ("OB", m.ob), ("AW", m.aw),
        ("TW", m.tw), ("FRAC", m.frac), ("FD", m.fd),
        ("WFILE", _file(tag, "weights", mems)), ("WSTYLE", _weight_style(node, wmem, loader)),
        ("PFILE", _file(tag, "params", mems)), ("MULT", 1 if m.dsp2 else 0),
        ("PIPE", m.pipe), ("PCH", PCH), ("DG", m.dg)] + extra,
        chain[-1].out, f"n{i}_core", p.out_width, wr=wr))
    s, o = node.inp, node.out
    desc = (f"{m.matrix} k{node.k} s{node.stride} p{node.pad} {s.c}->{o.c} {m.act} "
            f"PE={m.pe} SIMD={m.simd}{' dsp2' if m.dsp2 else ''}")
    return _node_plan(i, p, desc, chain, mems)


def plan_maxpool(i: int, node, inp: str, tag: str, loader: Loader | None = None) -> NodePlan:
    p = units.plan(node)
    c = p.core
    swg = _swg(i, inp, p.window)
    core = Unit("cf_maxpool", f"u{i}_pool", [("C", c.c), ("B", c.b), ("KK", c.kk),
                                             ("INV", vhex(c.c * c.b, c.invert)), ("FD", c.fd)],
                swg.out, f"n{i}_core", p.out_width)
    return _node_plan(i, p, f"k{node.k} s{node.stride} p{node.pad} C={c.c} B={c.b}", [swg, core])


def plan_avgpool(i: int, node, inp: str, tag: str, loader: Loader | None = None) -> NodePlan:
    p = units.plan(node)
    c: avgpool.AvgPool = p.core
    # a k = 1 pool of whole pixels (Window.wire) reads the stream itself: no cf_swg
    swg = None if p.window.wire else _swg(i, inp, p.window)
    mems = memory_files(node, tag, loader)
    extra, wr = _write_port("cf_avgpool", node, p, loader)
    core = Unit("cf_avgpool", f"u{i}_pool", [
        ("C", c.c), ("SIMD", c.simd), ("IB", c.ib), ("ISIGNED", int(c.isigned)),
        ("KK", c.kk), ("SW", c.sw), ("TW", c.tw), ("FD", c.fd),
        ("TFILE", _file(tag, "thresholds", mems))] + extra,
        swg.out if swg else inp, f"n{i}_core", p.out_width, wr=wr)
    desc = f"k{node.k} s{node.stride} p{node.pad} C={c.c} SIMD={c.simd}"
    return _node_plan(i, p, desc, [swg, core] if swg else [core], mems)


def plan_scalemac(i: int, node, inp: str, tag: str, loader: Loader | None = None) -> NodePlan:
    p = units.plan(node)
    c: scalemac.ScaleMac = p.core
    swg = _swg(i, inp, p.window)
    wmem = next(mm for mm in p.memories if mm.role == "weights")
    mems = memory_files(node, tag, loader)
    extra, wr = _write_port("cf_scalemac", node, p, loader)
    core = Unit("cf_scalemac", f"u{i}_smac", [
        ("IB", c.ib), ("ISIGNED", int(c.isigned)), ("SIMD", c.simd), ("PE", c.pe),
        ("CI", c.ci), ("CO", c.co), ("N", c.n), ("SCW", c.scw), ("GW", c.gw),
        ("ZW", c.zw), ("BW", c.bw), ("OB", c.ob), ("RELU", int(c.relu)), ("FD", c.fd),
        ("PIPE", c.pipe),
        ("WFILE", _file(tag, "weights", mems)),
        ("WSTYLE", _weight_style(node, wmem, loader)),
        ("SFILE", _file(tag, "scales", mems)),
        ("BFILE", _file(tag, "bias", mems))] + extra,
        swg.out, f"n{i}_core", p.out_width, wr=wr)
    desc = f"{c.ci}->{c.co} n={c.n} PE={c.pe} SIMD={c.simd}"
    return _node_plan(i, p, desc, [swg, core], mems)


def plan_globalsum(i: int, node, inp: str, tag: str, loader: Loader | None = None) -> NodePlan:
    p = units.plan(node)
    c = p.core
    core = Unit("cf_globalsum", f"u{i}_gsum", [
        ("C", c.c), ("IB", c.ib), ("ISIGNED", int(c.isigned)), ("N", c.n),
        ("OB", c.ob), ("FD", c.fd)], inp, f"n{i}_core", p.out_width)
    s = node.inp
    return _node_plan(i, p, f"{s.h}x{s.w}x{s.c} -> {c.ob}-bit sums", [core])


def plan_resadd(i: int, node, inp: str, tag: str, inp_b: str = "",
                loader: Loader | None = None) -> NodePlan:
    """Body `inp` on port a; the shortcut `inp_b` through the skip FIFO on port b."""
    p = units.plan(node)
    c: resadd.ResAdd = p.core
    skip = next(mm for mm in p.memories if mm.role == "skip_fifo")    # depth c.skip
    fifo = Unit("cf_fifo", f"u{i}_skip", [("W", skip.width), ("DEPTH", skip.depth)],
                inp_b, f"n{i}_skip", skip.width, depth=skip.depth)
    mems = memory_files(node, tag, loader)
    extra, wr = _write_port("cf_resadd", node, p, loader)
    core = Unit("cf_resadd", f"u{i}_add", [
        ("C", c.c), ("SIMD", c.simd), ("AB", c.ab), ("ASIGNED", int(c.asigned)),
        ("BB", c.bb), ("BSIGNED", int(c.bsigned)), ("MW", c.mw), ("BW", c.bw), ("ZW", c.zw),
        ("SH", c.sh), ("OB", c.ob), ("RELU", int(c.relu)), ("FD", c.fd),
        ("PFILE", _file(tag, "params", mems))] + extra,
        inp, f"n{i}_core", p.out_width, inp_b=fifo.out, wr=wr)
    desc = (f"C={c.c} SIMD={c.simd} a {'int' if c.asigned else 'uint'}{c.ab} + "
            f"b {'int' if c.bsigned else 'uint'}{c.bb} "
            f">> {c.sh}{' relu' if c.relu else ''} skip={c.skip}")
    return _node_plan(i, p, desc, [fifo, core], mems)


PLANNERS = {"conv": plan_conv, "maxpool": plan_maxpool, "avgpool": plan_avgpool,
            "scalemac": plan_scalemac, "globalsum": plan_globalsum, "resadd": plan_resadd}


def _wire(graph: Graph) -> tuple[dict, dict]:
    """The streams of the graph (a DAG): ({(node index, port): stream prefix it reads},
    {source name ("" = the graph input): its cf_fork}). A node's output stream is n<i>
    (the graph input's `in`); a stream with two readers goes through a cf_fork whose
    output k (<stream>_f<k>) feeds its k-th reader in node order. On a chain every node
    reads its predecessor's stream and there is no fork."""
    index = {n.name: i for i, n in enumerate(graph.nodes)}
    ports, forks = {}, {}
    for src, readers in graph.consumers().items():
        base = f"n{index[src]}" if src else "in"
        if len(readers) <= 1:
            for r in readers:
                ports[r] = base
            continue
        for k, r in enumerate(readers):
            ports[r] = f"{base}_f{k}"
        w = graph.stream(src).beat_bits
        forks[src] = Unit("cf_fork", f"u{index[src]}_fork" if src else "u_in_fork", [("W", w)],
                          base, f"{base}_f0", w, out_b=f"{base}_f1")
    return ports, forks


def plan_graph(graph: Graph, loader: Loader | None = None) -> list[NodePlan]:
    """The units of every node; `loader` (run-time weights): the weight port's layout."""
    graph.validate()
    ports, forks = _wire(graph)
    plans = []
    for i, (node, tag) in enumerate(zip(graph.nodes, node_idents(graph))):
        if node.kind not in PLANNERS:
            raise BuildError(f"RTL backend: node kind '{node.kind}' is not supported")
        ins = [ports[(i, port)] for port in range(len(graph.sources(i)))]
        p = PLANNERS[node.kind](i, node, ins[0], tag, *ins[1:], loader=loader)
        p.fork = forks.get(node.name)
        plans.append(p)
    return plans


# ----------------------------------------------------------------------------- render

def _jinja():
    import jinja2
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=False, lstrip_blocks=False)
    env.globals["fifo_cw"] = fifo_cw
    env.filters.update(escape.filters())
    return env


def flag_fifo_depth(plans) -> int:
    """Depth of cf_axis_out's per-frame flag FIFO (input TLAST resynchronisation): room for
    the frames between the AXI adapters, estimated generously as two per unit plus four
    (frames overlap by a few rows per window generator). Too small a depth would only make
    cf_axis_in hold a frame's last beat (throughput), never lose a flag; 1-bit entries."""
    return next_pow2(max(4, 2 * sum(len(p.units) for p in plans) + 4))


def _stream_desc(s: Stream) -> str:
    return f"{s.h}x{s.w}x{s.c} {s.kind}{s.bits}"


def render(graph: Graph, out_dir, board=None) -> dict:
    """Write out_dir/rtl/ and out_dir/sim/; returns the manifest. `board`: a boards.Board (or a
    board dict / None, resolved by boards.as_board)."""
    from ..hw.boards import as_board
    board = as_board(board)
    out = Path(out_dir)
    rtl, mem, sim = out / "rtl", out / "rtl" / "mem", out / "sim"
    loader = Loader.of(graph) if graph.runtime_weights else None
    plans = plan_graph(graph, loader)
    in_fork = _wire(graph)[1].get("")
    if mem.exists():
        shutil.rmtree(mem)
    mem.mkdir(parents=True, exist_ok=True)
    sim.mkdir(parents=True, exist_ok=True)
    for p in plans:
        for fname, words in p.mems.items():
            write_mem(mem / fname, words)

    in_w, out_w = graph.input.beat_bits, graph.output.beat_bits
    ctx = {
        "top": TOP, "graph_name": graph.name, "mem_dir": MEM_DIR,
        "in_w": in_w, "in_tw": tdata_width(in_w), "in_beats": graph.input.h * graph.input.w,
        "in_desc": _stream_desc(graph.input),
        "out_w": out_w, "out_tw": tdata_width(out_w), "out_beats": graph.output.h * graph.output.w,
        "out_desc": _stream_desc(graph.output),
        "nodes": plans, "last": plans[-1].stream, "in_fork": in_fork,
        "flag_depth": flag_fifo_depth(plans),
        "loader": loader and {"params": loader.params(), "nmem": len(loader.mems),
                              "aw": loader.addr, "wmax": loader.width,
                              "words": sum(m.words for m in loader.mems)},
    }
    (rtl / f"{TOP}.v").write_text(_jinja().get_template("top.v.j2").render(**ctx))
    for f in LIBRARY + SIM_LIBRARY:
        shutil.copy2(LIB_DIR / f, rtl / f)
    shutil.copy2(SIM_SRC_DIR / f"{SIM_MODULE}.py", sim / f"{SIM_MODULE}.py")

    manifest = {
        "top": TOP, "tb": TB, "graph": graph.name,
        "sources": LIBRARY + [f"{TOP}.v"], "sim_sources": SIM_LIBRARY,
        "mem_dir": MEM_DIR,
        "input": {"width": in_w, "tdata": ctx["in_tw"], "beats": ctx["in_beats"],
                  "stream": graph.input.__dict__},
        "output": {"width": out_w, "tdata": ctx["out_tw"], "beats": ctx["out_beats"],
                   "stream": graph.output.__dict__, "node": plans[-1].name},
        "nodes": [{"index": p.index, "name": p.name, "kind": p.kind, "desc": p.desc,
                   "stream": p.stream, "width": p.out_w, "beats": p.beats,
                   "ideal_cycles": p.cycles, "cycles_per_frame": p.cycles,
                   "pipeline_depth": p.pipe, "units": [u.to_json() for u in p.units],
                   **({"fork": p.fork.to_json()} if p.fork else {})}
                  for p in plans],
        **({"input_fork": in_fork.to_json()} if in_fork else {}),
        "predicted_interval_cycles": max(p.cycles for p in plans),
        "flag_fifo_depth": ctx["flag_depth"],
        "runtime_weights": bool(loader),
        **({"weights": {**loader.to_json(),
                        "files": {"hex": f"weights/{weights.HEX}",
                                  "manifest": f"weights/{weights.MANIFEST}"}}}
           if loader else {}),
        "board": {"name": board.name, "part": board.part, "family": board.family,
                  "clock_mhz": board.clock_mhz, "resources": dict(board.resources)},
    }
    (rtl / "manifest.json").write_text(json.dumps(manifest, indent=2))
    vec = out / "vectors"
    if (vec / "input.hex").is_file():
        write_tb(out)
    return manifest


def vector_frames(out_dir) -> int:
    """Frames available in out_dir/vectors (from meta.json, else from input.hex)."""
    out = Path(out_dir)
    meta = out / "vectors" / "meta.json"
    if meta.is_file():
        return int(json.loads(meta.read_text())["frames"])
    man = json.loads((out / "rtl" / "manifest.json").read_text())
    lines = sum(1 for ln in (out / "vectors" / "input.hex").read_text().split() if ln)
    return lines // man["input"]["beats"]


def write_tb(out_dir) -> Path:
    """(Re)write out_dir/sim/cfgen_tb.v for the vectors present in out_dir/vectors."""
    out = Path(out_dir)
    man = json.loads((out / "rtl" / "manifest.json").read_text())
    frames = vector_frames(out)
    if frames < 1:
        raise BuildError(f"{out}/vectors holds no frames")
    nodes = [{"index": n["index"], "name": n["name"], "stream": n["stream"], "out_w": n["width"],
              "beats": n["beats"]} for n in man["nodes"]]
    ctx = {"tb": TB, "top": man["top"], "vec_dir": VEC_DIR, "frames": frames,
           "maxf": MAXF, "maxf_bits": clog2(MAXF),
           "in_w": man["input"]["width"], "in_tw": man["input"]["tdata"],
           "in_beats": man["input"]["beats"],
           "out_w": man["output"]["width"], "out_tw": man["output"]["tdata"],
           "out_beats": man["output"]["beats"], "nodes": nodes,
           "weights": bool(man.get("runtime_weights"))}
    path = out / "sim" / f"{TB}.v"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = _jinja().get_template("tb.v.j2").render(**ctx)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path
