"""The heads users write first (the residual-network issue's "heads"): a max-pool of the
integer R stream before the full-precision layer, a full-precision linear layer on a
flattened H x W map (the scale MAC over one k = H window), an unpadded k x k
full-precision conv. Checked against the golden model in C simulation and RTL simulation
(random stalls, reset, back-pressure, measured interval = predicted), and end to end on a
trained VGG-style digits net (golden vs float on the test split)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_cli
from generator.backends import hls, rtl
from generator.flows import csim, rtlsim
from generator.hw import golden, units
from generator.hw.ir import MaxPoolNode, Stream
from rtl_unit_tb import graphs as G

BOARD = {"name": "pynq-z2", "part": "xc7z020clg400-1", "family": "xc7", "clock_mhz": 100,
         "resources": {"LUT": 53200, "FF": 106400, "BRAM36": 140, "DSP": 220}}


def test_integer_maxpool_golden():
    """max per channel, min where inverted, on int and uint values; padding ignored."""
    rng = np.random.default_rng(0)
    for kind, bits in (("int", 7), ("uint", 5)):
        s = Stream(5, 5, 6, kind, bits)
        lo = -(1 << (bits - 1)) if kind == "int" else 0
        hi = (1 << (bits - 1)) - 1 if kind == "int" else (1 << bits) - 1
        x = rng.integers(lo, hi + 1, (3, 5, 5, 6))
        inv = rng.integers(0, 2, 6).astype(np.uint8)
        node = MaxPoolNode("p", s, Stream(3, 3, 6, kind, bits), k=2, stride=2, pad=1, invert=inv)
        y = golden.maxpool(node, x)
        xp = np.pad(x.astype(float), ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=np.nan)
        win = np.stack([xp[:, dy:dy + 6:2, dx:dx + 6:2] for dy in (0, 1) for dx in (0, 1)])
        want = np.where(inv > 0, np.nanmin(win, axis=0), np.nanmax(win, axis=0))
        assert np.array_equal(y, want.astype(np.int64)), kind


@pytest.fixture(scope="module", params=[("linear", 0), ("linear", 1), ("conv", 0)],
                ids=["maxpool-linear", "padded-maxpool-linear", "maxpool-conv2x2"])
def head_build(request, tmp_path_factory):
    head, pad = request.param
    out = tmp_path_factory.mktemp(f"vgg_{head}_{pad}") / "out"
    g = G.vgg_head_chain(np.random.default_rng(5 + pad), head=head, pool_pad=pad)
    G.write_vectors(g, out, frames=5, seed=2)
    hls.render(g, out, BOARD)
    rtl.render(g, out, BOARD)
    return g, out


def test_head_csim_bit_exact(head_build):
    g, out = head_build
    pool, fc = g.node("pool"), g.node("fc")
    assert pool.inp.kind == "int" and pool.invert.any() and not pool.invert.all()
    assert fc.k == (pool.out.h if g.name.endswith("linear") else 2)
    assert units.plan(fc).core.ci == fc.k * fc.k * fc.inp.c
    res = csim.run_csim(out, werror=True, quiet=True)
    assert res["bit_exact"], csim.summary(res)
    assert set(res["mismatches"]) == {n.name for n in g.nodes}


@pytest.mark.sim
def test_head_rtl_sim_bit_exact_full_rate(head_build):
    g, out = head_build
    res = rtlsim.run(out, frames=5, simulator="verilator", perf_frames=4, pattern_frames=2)
    bad = {k: v for k, v in res["per_node"].items() if v["mismatches"]}
    failed = {k: t.get("message", "") for k, t in res["tests"].items() if not t["passed"]}
    assert res["bit_exact"], f"mismatching streams {bad}; failed tests {failed}"
    assert {"stalls", "reset", "backpressure"} <= set(res["tests"])
    assert res["interval_cycles"] == res["predicted_interval_cycles"]


def test_trained_vgg_digits_golden_float_csim_and_rtl_sim(tmp_path):
    """conv -> bn -> relu -> maxpool -> flatten -> linear, trained on digits (seconds)."""
    from generator.hw.compare import agreement, layerwise
    from generator.hw.lower import lower
    from generator.model.checkpoint import load_checkpoint
    from generator.model.data import load_digits

    ckpt = tmp_path / "dv.pt"
    run_cli("train", "digits_vgg", "--cf", 4, "--mode", "xnor", "--data", "digits", "-o", ckpt)
    c = load_checkpoint(ckpt)
    graph = lower(c)
    kinds = [n.kind for n in graph.nodes]
    assert kinds[-2:] == ["maxpool", "scalemac"] and graph.nodes[-1].k == graph.nodes[-2].out.h > 1
    test = load_digits().test
    res = agreement(graph, c.model(), test.images, test.labels)
    assert res["agreement"] >= 0.995 and res["golden_acc"] >= 0.9, res
    for e in layerwise(graph, c.model(), test.images):
        assert e.get("unexplained", 0) == 0 and e.get("beyond_bound", 0) == 0, e
    out = tmp_path / "b"
    run_cli("build", ckpt, "--board", "pynq-z2", "-o", out, "--frames", 20, "--data", "digits")
    r = csim.run_csim(out, quiet=True)
    assert r["bit_exact"], csim.summary(r)
    s = rtlsim.run(out, frames=8, simulator="verilator", perf_frames=3, pattern_frames=1)
    assert s["bit_exact"] and s["interval_cycles"] == s["predicted_interval_cycles"], \
        {k: v for k, v in s["per_node"].items() if v["mismatches"]}
    rep = json.loads((out / "report.json").read_text())
    assert rep["predicted"]["interval_cycles"] == s["interval_cycles"]
