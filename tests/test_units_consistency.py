"""One owner per hardware fact: on random graphs at random legal foldings, every consumer
reports the unit plan's cycles and pipeline depth (generator/hw/units/): the folding summary,
the cost model, the RTL and HLS manifests and the build report's node table (the import
layering is tests/test_layers.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from generator.hw import fold, perf, units
from generator.flows import report
from generator.backends import hls, rtl

from rtl_unit_tb import graphs as G

REPO = Path(__file__).resolve().parent.parent
BOARD = {"name": "pynq-z2", "part": "xc7z020clg400-1", "family": "xc7", "clock_mhz": 100,
         "resources": {"LUT": 53200, "FF": 106400, "BRAM36": 140, "DSP": 220}}


def random_graph(seed: int):
    """A brief chain (every node kind) with random sizes and a random legal folding of
    every node, average-pool lanes included."""
    rng = np.random.default_rng(seed)
    c = tuple(int(rng.choice([4, 8, 12, 16])) for _ in range(5))
    hw = int(rng.choice([4, 6, 8]))
    g = G.brief_chain(rng, hw=hw, c=(c[0], c[1], c[2], c[3], 4 * int(rng.integers(1, 5))))
    for n in g.nodes:
        n.pe = int(rng.choice(units.legal_pe(n)))
        n.simd = int(rng.choice(units.legal_simd(n)))
        if n.kind == "conv" and n.matrix == "int8":
            n.mult = str(rng.choice(units.conv.MULT_STYLES))
    return g


@pytest.mark.parametrize("seed", range(10))
def test_every_consumer_reports_the_plans_figures(tmp_path, seed):
    g = random_graph(seed)
    folding = {n.name: {"pe": n.pe, "simd": n.simd,
                        **({"mult": n.mult} if n.kind == "conv" and n.matrix == "int8" else {})}
               for n in g.nodes}
    board = dict(BOARD, clock_mhz=(100, 150, 250)[seed % 3])     # pipelining follows the clock
    summary = fold.fold(g, board, folding=folding)
    assert {n.name: (n.pe, n.simd) for n in g.nodes} == {k: (v["pe"], v["simd"]) for k, v in folding.items()}
    plans = {n.name: units.plan(n) for n in g.nodes}
    want = {k: (p.cycles, p.pipe) for k, p in plans.items()}
    for n in g.nodes:
        assert (units.cycles(n), units.pipeline_depth(n)) == want[n.name]
        if n.kind in ("conv", "scalemac"):
            assert n.pipe == units.unit(n).choose_pipe(n, board["clock_mhz"]) == plans[n.name].core.pipe
        if n.kind == "conv" and n.matrix == "int8":     # the DSP chain follows the clock
            assert n.dsp_group == units.conv.choose_dsp_group(n, board["clock_mhz"])
    assert summary["cycles"] == {k: v[0] for k, v in want.items()}
    assert {n["name"]: (n["cycles"], n["pipeline_depth"]) for n in summary["nodes"]} == want
    pred = perf.predict(g, board)
    assert {n["name"]: (n["cycles"], n["pipeline_depth"]) for n in pred["nodes"]} == want
    assert pred["interval_cycles"] == summary["interval_cycles"] == max(v[0] for v in want.values())
    man = rtl.render(g, tmp_path, BOARD)
    assert {n["name"]: (n["cycles_per_frame"], n["pipeline_depth"]) for n in man["nodes"]} == want
    assert man["predicted_interval_cycles"] == pred["interval_cycles"]
    hls.render(g, tmp_path, BOARD)
    hman = json.loads((tmp_path / "hls" / "manifest.json").read_text())
    assert {n["name"]: (n["cycles_per_frame"], n["pipeline_depth"]) for n in hman["nodes"]} == want
    rows = report.node_table(g.to_dict(), summary, {})
    assert {r["name"]: (r["cycles"], r["pipeline_depth"]) for r in rows} == want
    # the folding's hardware choices reach both backends unchanged
    top = (tmp_path / "rtl" / "cfgen_top.v").read_text()
    mvu = {n["name"]: u["params"] for n in man["nodes"] for u in n["units"] if u["module"] == "cf_mvu"}
    for n in g.nodes:
        p = plans[n.name]
        if n.kind == "conv":
            assert mvu[n.name]["PIPE"] == p.core.pipe and mvu[n.name]["MULT"] == int(p.core.dsp2)
            assert mvu[n.name]["DG"] == p.core.dg == n.dsp_group
        if n.kind == "scalemac":
            assert f".PIPE({p.core.pipe})" in top
        if n.kind == "avgpool":
            assert f"cf::avgpool_thr<{n.inp.c}, {n.simd}," in \
                (tmp_path / "hls" / "src" / "nodes" / f"{n.name}.h").read_text()
        if p.window is not None:
            assert f".TAPS({p.window.row_taps})" in top


def test_a_changed_rule_would_be_seen(tmp_path, monkeypatch):
    """The check above can fail: a backend that recomputed cycles its own way is caught."""
    g = random_graph(1)
    real = units.plan

    def skewed(node):
        p = real(node)
        return p if node.kind != "maxpool" else type(p)(**{**p.__dict__, "cycles": p.cycles + 1})

    monkeypatch.setattr(units, "plan", skewed)
    man = rtl.render(g, tmp_path, BOARD)        # renders the skewed plan
    monkeypatch.setattr(units, "plan", real)
    got = {n["name"]: n["cycles_per_frame"] for n in man["nodes"]}
    assert got != {n.name: units.cycles(n) for n in g.nodes}
