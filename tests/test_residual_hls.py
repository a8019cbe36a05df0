"""The HLS side of residual graphs (a DAG): cf::resadd and cf::fork_stream, the dataflow top
that wires each node to its sources' streams, forks a stream read twice and gives the
stream feeding a residual add's shortcut input the add's shortcut FIFO depth (its plan's).

- residual_chain (conv1 -> identity block b1 -> stride-2 block b2 with a scale-MAC
  shortcut -> global sum -> classifier) C-simulated bit exact against the golden model at
  every node (-Werror), in two foldings: the adds with SIMD = C and with SIMD < C; the
  input TLAST resynchronisation through the forks;
- the graph input forked (read by a conv and by an add);
- a mutation (one multiplier of the rendered add changed) is caught at that add, with every
  node before it still exact;
- cf::resadd alone on random parameters (uint and int inputs, with and without ReLU, shifts
  past the width of z, SIMD 1 .. C, several frames per call), rendered by the backend's
  planner, against golden.resadd, compiled with the C-sim shortcuts and -DCF_SYNTH_PATHS.
"""

from __future__ import annotations

import concurrent.futures
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from generator.backends import hls
from generator.flows import csim
from generator.hw import golden, perf, units
from generator.hw.ir import Stream
from rtl_unit_tb import graphs as G

pytestmark = pytest.mark.hls

REPO = Path(__file__).resolve().parents[1]
BOARD = {"name": "pynq-z2", "part": "xc7z020clg400-1", "family": "xc7", "clock_mhz": 100,
         "resources": {"LUT": 53200, "FF": 106400, "BRAM36": 140, "DSP": 220}}
FRAMES = 8          # the TLAST check takes 8 frames
FOLDINGS = {"simd_c": {"b1": (1, 8), "b2": (1, 16)},     # one pixel per cycle
            "simd_lt_c": {"b1": (1, 2), "b2": (1, 4)}}   # C/SIMD cycles per pixel


@pytest.fixture(scope="module", params=sorted(FOLDINGS))
def res_build(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"res_{request.param}") / "out"
    g = G.residual_chain(np.random.default_rng(3), fold=FOLDINGS[request.param])
    outs = G.write_vectors(g, out, frames=FRAMES, seed=4)
    hls.render(g, out, BOARD)
    return request.param, g, out, outs


def test_residual_top_wiring(res_build):
    """Each node reads its sources' streams, a stream read twice is forked, the stream
    feeding an add's shortcut input takes its skip_depth, and a DAG's manifest names the
    sources."""
    name, g, out, _ = res_build
    top = (out / "hls" / "src" / "cf_residual_chain.cpp").read_text()
    adds = {n.name: n for n in g.nodes if n.kind == "resadd"}
    assert {n: a.simd for n, a in adds.items()} == {k: v[1] for k, v in FOLDINGS[name].items()}
    # conv1 feeds b1_t and (shortcut) b1; b1 feeds b2_t and b2_sc
    assert "cf::fork_stream<160, 64>(s_conv1, s0_conv1, s1_conv1, reps);" in top
    assert "cf::fork_stream<" in top and top.count("cf::fork_stream<") == 2
    assert "node_b1_t(s0_conv1, s_b1_t, reps);" in top
    assert "node_b1(s_b1_c2, s1_conv1, s_b1, reps);" in top
    assert "node_b2_sc(s1_b1, s_b2_sc, reps);" in top
    assert "node_b2(s_b2_c2, s_b2_sc, s_b2, reps);" in top
    depth = dict(re.findall(r"#pragma HLS STREAM variable=(\w+) depth=(\d+)", top))
    skip = {n: units.plan(a).core.skip for n, a in adds.items()}     # the plan's FIFO depth
    assert all(skip[n] >= a.skip_depth > 2 for n, a in adds.items())
    assert int(depth["s1_conv1"]) == skip["b1"] and int(depth["s_b2_sc"]) == skip["b2"]
    assert all(int(d) == hls.DEFAULT_FIFO_DEPTH for s, d in depth.items()
               if s not in ("s1_conv1", "s_b2_sc", "s_frame_flags"))
    for n in g.nodes:   # every node keeps its trace tap
        assert f"CF_TAP({n.name}, s_{n.name}, {n.out.h * n.out.w});" in top
    man = json.loads((out / "hls" / "manifest.json").read_text())
    assert [nd.get("inputs") for nd in man["nodes"]] == [g.sources(i) for i in range(len(g.nodes))]
    assert {nd["name"]: nd["skip_fifo_depth"] for nd in man["nodes"] if nd["kind"] == "resadd"} == skip


def test_residual_csim_bit_exact(res_build):
    name, g, out, outs = res_build
    # the data can tell a wrong add: its outputs vary, and ReLU clips some but not all
    for n, y in zip(g.nodes, outs):
        if n.kind == "resadd":
            assert 0 < (y == 0).mean() < 0.9 and len(np.unique(y)) > 20, (n.name, (y == 0).mean())
    res = csim.run_csim(out, werror=True, quiet=True)
    assert res["bit_exact"], csim.summary(res)
    assert res["mismatches"] == {n.name: 0 for n in g.nodes}
    assert res["compiler_warnings"] == 0
    tl = csim.run_tlast(out, werror=True, quiet=True)
    assert tl["passed"], tl


@pytest.mark.parametrize("res_build", ["simd_lt_c"], indirect=True)
def test_changed_multiplier_is_caught(res_build, tmp_path):
    """One multiplier of b1 changed in the rendered parameters (the golden vectors kept):
    C simulation mismatches at b1, and every node before it stays exact."""
    name, g, out, _ = res_build
    mut = tmp_path / "mut"
    shutil.copytree(out / "vectors", mut / "vectors")
    b1 = g.node("b1")
    c = int(np.flatnonzero(b1.mb != 0)[-1])       # a lane of the last chunk
    orig = b1.mb
    b1.mb = orig.copy()
    b1.mb[c] -= np.sign(orig[c])                  # towards 0: still fits m_bits
    try:
        hls.render(g, mut, BOARD)
    finally:
        b1.mb = orig
    res = csim.run_csim(mut, werror=True, quiet=True)
    assert not res["bit_exact"]
    order = [n.name for n in g.nodes]
    before = order[:order.index("b1")]
    assert all(res["mismatches"][n] == 0 for n in before), res["mismatches"]
    assert res["mismatches"]["b1"] > 0
    assert res["first_mismatch"]["node"] == "b1" and res["first_mismatch"]["channel"] == c


def test_forked_graph_input(tmp_path):
    """The graph input read twice (a conv and, as its shortcut, an add): forked after the AXI
    adapter, bit exact per node and through the TLAST check."""
    rng = np.random.default_rng(2)
    inp = Stream(6, 6, 3, "uint", 8)
    c1 = G.conv("conv1", inp, 3, 3, rng, pad=1, act="relu_offset", frac_bits=0, pe=1, simd=3)
    add = G.resadd("add", c1.out, inp, rng, simd=1, shift=10, body="conv1", short="")
    g = G.chain([c1, add, G.globalsum("gap", add.out)], "in_fork")
    perf.size_skip_fifos(g)
    g.validate()
    out = tmp_path / "out"
    G.write_vectors(g, out, frames=FRAMES, seed=1)
    hls.render(g, out, BOARD)
    top = (out / "hls" / "src" / "cf_in_fork.cpp").read_text()
    assert "cf::fork_stream<24, 36>(s_input, s0_input, s1_input, reps);" in top
    assert "node_conv1(s0_input, s_conv1, reps);" in top and "node_add(s_conv1, s1_input, s_add, reps);" in top
    assert f"variable=s1_input depth={units.plan(add).core.skip}" in top
    res = csim.run_csim(out, werror=True, quiet=True)
    assert res["bit_exact"] and res["mismatches"] == {"conv1": 0, "add": 0, "gap": 0}, csim.summary(res)
    assert csim.run_tlast(out, werror=True, quiet=True)["passed"]


# --------------------------------------------------------------------------- the unit alone

UNIT_FRAMES = 3

# (C, SIMD, a stream, b stream, relu, shift, m_max)
UNIT_CASES = [
    (8, 1, ("int", 8), ("int", 20), True, 12, 1 << 11),
    (8, 2, ("int", 8), ("int", 20), True, 12, 1 << 11),
    (8, 8, ("int", 8), ("int", 20), False, 12, 1 << 11),
    (6, 3, ("uint", 5), ("uint", 7), False, 3, 40),
    (4, 4, ("int", 4), ("uint", 8), False, 0, 7),
    (12, 4, ("uint", 9), ("int", 6), True, 5, 300),
    (4, 2, ("int", 6), ("int", 6), False, 30, 3),      # shift past z's width: y in {-1, 0}
]


def _unit_node(i, case, rng):
    c, simd, (ak, ab), (bk, bb), relu, shift, m_max = case
    a, b = Stream(3, 5, c, ak, ab), Stream(3, 5, c, bk, bb)
    n = G.resadd(f"ra{i}", a, b, rng, simd=simd, relu=relu, shift=shift, m_max=m_max, body="x", short="y")
    n.inputs = []
    n.skip_depth = 1
    return n


def _values(s: Stream, rng) -> np.ndarray:
    lo, hi = G._range(s)
    x = rng.integers(lo, hi + 1, (UNIT_FRAMES, s.h, s.w, s.c))
    x[0, 0, 0], x[0, 0, 1] = lo, hi           # the extremes
    return x


def _unit_program(nodes, data, d: Path) -> Path:
    (d / "nodes").mkdir()
    src = ["// Generated by tests/test_residual_hls.py", "#include <cstdio>"]
    body = []
    for n, (a, b) in zip(nodes, data):
        p = hls.plan_node(n, n.name)
        (d / "nodes" / f"{n.name}.h").write_text(hls.node_header(p))
        src.append(f'#include "nodes/{n.name}.h"')
        ia, ib, o = n.inp, n.inp_b, n.out
        fmt = lambda v: ", ".join(f"{int(x)}ll" for x in v.reshape(-1))  # noqa: E731
        body.append(f"""
static const long long {n.name}_a[] = {{{fmt(a)}}};
static const long long {n.name}_b[] = {{{fmt(b)}}};
static void case_{n.name}() {{
  hls::stream<{n.name}_in_t> a("a");
  hls::stream<{n.name}_in_b_t> b("b");
  hls::stream<{n.name}_out_t> out("out");
  for (unsigned i = 0; i < {UNIT_FRAMES * ia.h * ia.w}; i++) {{
    {n.name}_in_t x = 0;
    {n.name}_in_b_t y = 0;
    for (unsigned c = 0; c < {ia.c}; c++) {{
      x.range(c * {ia.bits} + {ia.bits - 1}, c * {ia.bits}) = ap_int<{ia.bits + 1}>({n.name}_a[i * {ia.c} + c]);
      y.range(c * {ib.bits} + {ib.bits - 1}, c * {ib.bits}) = ap_int<{ib.bits + 1}>({n.name}_b[i * {ib.c} + c]);
    }}
    a.write(x);
    b.write(y);
  }}
  node_{n.name}(a, b, out, {UNIT_FRAMES});
  std::printf("case {n.name} beats %zu left %zu %zu\\n", out.size(), a.size(), b.size());
  while (!out.empty()) {{
    const {n.name}_out_t v = out.read();
    for (unsigned c = 0; c < {o.c}; c++)
      std::printf("%lld ", (long long)ap_int<{o.bits}>(v.range(c * {o.bits} + {o.bits - 1}, c * {o.bits})).to_int64());
    std::printf("\\n");
  }}
}}""")
    main = "int main() {\n" + "".join(f"  case_{n.name}();\n" for n in nodes) + "  return 0;\n}\n"
    path = d / "resadd_unit.cpp"
    path.write_text("\n".join(src) + "\n" + "\n".join(body) + "\n" + main)
    return path


def _parse(stdout: str) -> dict:
    res, cur = {}, None
    for line in stdout.splitlines():
        m = re.match(r"case (\S+) beats (\d+) left (\d+) (\d+)$", line)
        if m:
            cur = res[m.group(1)] = {"beats": int(m.group(2)), "left": int(m.group(3)) + int(m.group(4)),
                                     "rows": []}
        else:
            cur["rows"].append([int(v) for v in line.split()])
    return res


def test_resadd_unit_against_golden(tmp_path):
    rng = np.random.default_rng(11)
    nodes = [_unit_node(i, case, rng) for i, case in enumerate(UNIT_CASES)]
    data = [(_values(n.inp, rng), _values(n.inp_b, rng)) for n in nodes]
    src = _unit_program(nodes, data, tmp_path)
    cxx, ap = csim.find_cxx(), csim.find_ap_types()
    flags = ["-std=c++14", "-O1", "-Wall", "-Wextra", "-Wno-unknown-pragmas", "-Werror",
             f"-I{REPO / 'hls' / 'sim'}", f"-I{REPO / 'hls'}", f"-I{tmp_path}", "-isystem", str(ap)]
    variants = {"sim": (), "synth": ("-DCF_SYNTH_PATHS",)}

    def run(v):
        exe = tmp_path / f"unit_{v}"
        r = subprocess.run([cxx, *flags, *variants[v], str(src), "-o", str(exe)],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"compile ({v}) failed:\n{r.stderr[-6000:]}"
        assert "warning" not in r.stderr, r.stderr[-3000:]
        p = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, f"{v}: exit {p.returncode}\n{p.stderr[-2000:]}"
        return _parse(p.stdout)

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
        runs = dict(zip(variants, ex.map(run, variants)))
    for n, (a, b) in zip(nodes, data):
        want = golden.resadd(n, a, b)
        assert want.min() >= -(1 << (n.out.bits - 1)) and want.max() < (1 << (n.out.bits - 1))
        assert len(np.unique(want)) > 1, n.name
        for v, res in runs.items():
            r = res[n.name]
            assert r["beats"] == UNIT_FRAMES * n.out.h * n.out.w and r["left"] == 0, (n.name, v)
            got = np.array(r["rows"], np.int64).reshape(want.shape)
            bad = np.argwhere(got != want)
            assert bad.size == 0, (f"{n.name} {UNIT_CASES[int(n.name[2:])]} ({v}): {len(bad)} of {want.size} "
                                   f"differ, first at {tuple(bad[0])}: got {got[tuple(bad[0])]}, "
                                   f"expected {want[tuple(bad[0])]}")
