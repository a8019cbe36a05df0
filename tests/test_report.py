"""Build report (generator/flows/report.py): OUT/report.html and report.json from `build`, the
re-render with measured figures, the paper's speed-up, the group-scale histograms."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import run_cli
from generator.flows import report

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "bench" / "specs" / "tiny.json"


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    ck = root / "tiny.pt"
    run_cli("init", SPEC, "--cf", "4", "-o", ck)
    out = root / "out"
    run_cli("build", ck, "--board", "pynq-z2", "-o", out, "--frames", "2", "--fps", "20000")
    return out


def test_build_writes_report_and_folding(tiny_build):
    out = tiny_build
    rep = json.loads((out / "report.json").read_text())
    pred = rep["predicted"]
    assert pred["mode"] == "fps" and pred["interval_cycles"] <= 100e6 / 20000
    assert set(pred["resources"]) >= {"LUT", "FF", "BRAM36", "DSP"}
    assert [n["name"] for n in pred["nodes"]] == list(pred["cycles"])
    # the folding file round-trips through --folding
    folding = json.loads((out / "folding.json").read_text())
    assert folding == pred["folding"]
    # group scales recomputed from the checkpoint: conv2 and conv3, 16 filters, CF-4
    assert set(rep["scales"]) == {"conv2", "conv3"}
    assert all(v["n"] == 4 and len(v["alpha"]) == 4 for v in rep["scales"].values())
    assert all(a > 0 for v in rep["scales"].values() for a in v["alpha"])


def test_report_html_is_self_contained(tiny_build):
    page = (tiny_build / "report.html").read_text()
    for name in ("conv1", "conv2", "maxpool6", "conv3", "conv4", "avgpool13"):
        assert f">{name}<" in page
    assert page.count("<svg") >= 5                       # 3 charts + 2 histograms
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', page)    # no network
    for words in ("Cycle balance", "What CF-n saves", "Theoretical speed-up",
                  "Scaling factors alpha_g", "L = 64", "No RTL simulation yet"):
        assert words in page


def test_rerender_with_measured_figures(tiny_build, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(tiny_build, out)
    pred = json.loads((out / "report.json").read_text())["predicted"]
    (out / "sim").mkdir(exist_ok=True)
    (out / "sim" / "results.json").write_text(json.dumps({
        "interval_cycles": pred["interval_cycles"] * 1.02, "latency_cycles": 1000,
        "fps_at_clock": 1e8 / (pred["interval_cycles"] * 1.02), "bit_exact": True, "frames": 2,
        "mismatches": 0, "simulator": "icarus"}))
    (out / "synth").mkdir(exist_ok=True)
    (out / "synth" / "resources.json").write_text(json.dumps({
        "LUT": 5000, "FF": 3000, "BRAM36": 0.5, "DSP": 4, "LUT_logic": 4000, "LUTRAM": 1000,
        "tool": "yosys", "version": "Yosys 0.23", "command": "synth_xilinx -family xc7",
        "nodes": {"conv1": {"LUT": 400, "FF": 300, "BRAM36": 0, "DSP": 4}}}))
    assert report.main([str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["measured"]["sim"]["bit_exact"] is True
    cmp = {c["what"]: c for c in rep["comparison"]}
    assert cmp["interval (cycles/frame)"]["err"] == pytest.approx(100 * (1 / 1.02 - 1), abs=1e-6)
    assert cmp["LUT"]["meas"] == 5000
    page = (out / "report.html").read_text()
    assert "bit exact" in page and "LUT (Yosys)" in page and "Yosys 0.23" in page


def test_report_errors_on_a_non_build_folder(tmp_path):
    assert report.main([str(tmp_path)]) == 2


def test_paper_speedup():
    costs = [{"layer": "c2", "precision": "xnor", "cf": 16},
             {"layer": "c1", "precision": "float", "cf": None}]
    shapes = {"c2": {"c_in": 192, "k": 5, "outputs": 16 * 16 * 192},
              "c1": {"c_in": 3, "k": 5, "outputs": 10}}
    sp = report.speedup(costs, shapes)
    (row,) = sp["layers"]
    c, nw, n, L = 192, 25, 16, 64
    assert row["S"] == pytest.approx(L * c * nw * n / (c * nw * n + L))
    assert row["S_n1"] == pytest.approx(L * c * nw / (c * nw + L))
    assert row["S"] > row["S_n1"] and row["S"] < 64
    assert sp["model"] == pytest.approx(row["S"])


def test_cf_savings_and_histogram():
    s = report.cf_savings([{"fp_multiplies": 10, "fp_multiplies_filterwise": 40,
                            "stored_scales": 2, "stored_scales_filterwise": 8}])
    assert s["fp_ratio"] == 4 and s["scale_ratio"] == 4
    svg = report.svg_histogram([0.1, 0.2, 0.2, 0.3], "x")
    assert svg.startswith("<svg") and svg.count("<rect") >= 1
    assert report.svg_histogram([], "x") == ""
