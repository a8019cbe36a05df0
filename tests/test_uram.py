"""UltraRAM (URAM288) in the boards, the memory model, the folding, the report and the build
refusal (docs/FOLDING.md, "Memory kinds").

Fast: fold-level tests on hand-made graphs (tests/rtl_unit_tb/graphs.py) and small boards,
and two builds of a small checkpoint with 0.7 Mbit of binary weights on a board with little
block RAM and some UltraRAM.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, run_cli
from generator.core.errors import BuildError
from generator.flows import report
from generator.hw import boards, fold, perf, units
from generator.hw.boards import as_board, load_board
from generator.hw.ir import Graph, Stream
from generator.hw.tech import xc7

from rtl_unit_tb import graphs as G

#: an UltraScale+ board with little block RAM and 8 URAM blocks, and the same without URAM
UP = {"name": "upsmall", "part": "xczu3eg-sbva484-1-i", "family": "xcup", "clock_mhz": 100,
      "resources": {"LUT": 8000, "FF": 16000, "BRAM36": 10, "DSP": 100, "URAM": 8}}
NOURAM = dict(UP, name="nouram", resources={k: v for k, v in UP["resources"].items() if k != "URAM"})
ROOMY = dict(UP, name="roomy", resources=dict(UP["resources"], BRAM36=200))


def wide_graph() -> Graph:
    """A 4x4x256 bit map through a k3 xnor conv (590 kbit of weights) and a k1 one."""
    rng = np.random.default_rng(0)
    a = G.conv("conva", Stream(4, 4, 256, "bit", 1), 256, 3, rng, pad=1, pad_value=0)
    b = G.conv("convb", a.out, 64, 1, rng)
    g = G.chain([a, b], "wide_weights")
    G.calibrate(g, rng)
    return g


def strip(summary: dict) -> dict:
    """A folding summary without what only exists since UltraRAM was modelled."""
    def go(x):
        if isinstance(x, dict):
            return {k: go(v) for k, v in x.items() if k not in ("URAM", "budget", "utilization")}
        if isinstance(x, list):
            return [go(v) for v in x]
        return x
    return go(summary)


# --------------------------------------------------------------------------- boards

def test_boards_carry_uram_where_the_part_has_it():
    assert load_board("zcu104").resources["URAM"] == 96
    assert load_board("kv260").resources["URAM"] == 64
    assert load_board("ultra96-v2").resources.get("URAM", 0) == 0
    for name in ("pynq-z1", "pynq-z2"):
        assert "URAM" not in load_board(name).resources


@pytest.mark.parametrize("uram, ok", [(0, True), (64, True), (-1, False), (True, False),
                                      (1.5, False), ("8", False), (10**9, False)])
def test_uram_is_validated_like_the_other_resources(uram, ok):
    d = dict(UP, resources=dict(UP["resources"], URAM=uram))
    if ok:
        assert as_board(d).resources["URAM"] == uram
    else:
        with pytest.raises(BuildError, match=r"resources\.URAM must be an integer in \[0, 1e8\]"):
            as_board(d)


def test_uram_only_on_ultrascale_plus_parts():
    d = {"name": "z7", "part": "xc7z020clg400-1", "family": "xc7", "clock_mhz": 100,
         "resources": {"LUT": 1, "FF": 1, "BRAM36": 1, "DSP": 1, "URAM": 4}}
    with pytest.raises(BuildError, match="UltraRAM exists on UltraScale"):
        as_board(d)
    d["resources"]["URAM"] = 0
    assert as_board(d).resources["URAM"] == 0
    with pytest.raises(BuildError, match=r"resources\.LUT must be an integer in \[1, 1e8\]"):
        as_board(dict(d, resources=dict(d["resources"], LUT=0)))


# --------------------------------------------------------------------------- memory model

@pytest.mark.parametrize("depth, width, blocks, cascade", [
    (1, 1, 1, 1), (4096, 72, 1, 1), (4097, 72, 2, 2), (4096, 73, 2, 1),
    (32768, 72, 8, 8), (2304, 256, 4, 1), (131072, 64, 32, 32)])
def test_map_uram_counts_blocks(depth, width, blocks, cascade):
    m = xc7.map_uram(depth, width)
    assert (m["URAM"], m["cascade"], m["BRAM36"], m["LUT"]) == (blocks, cascade, 0.0, 0.0)
    assert m["style"] == "URAM288" and xc7.URAM_BITS == 294912


def test_price_moves_the_weights_to_uram():
    g = wide_graph()
    a = g.node("conva")
    a.pe, a.simd = 4, 64                    # 256-bit words, 2,304 deep
    auto, info = perf.node_resources(a)
    a.weight_mem = "uram"
    ur, uinfo = perf.node_resources(a)
    assert info["weights_mem"].startswith("RAMB") and uinfo["weights_mem"] == "URAM288"
    assert auto.URAM == 0 and ur.URAM == 4
    assert ur.BRAM36 == auto.BRAM36 - auto.detail["mvu.weights"]["BRAM36"]
    assert ur.as_dict()["URAM"] == 4 and ur.as_dict(detail=True)["parts"]["mvu.weights"]["URAM"] == 4
    with pytest.raises(ValueError, match="weight memory kind"):
        perf.price(units.plan(a), weight_mem="flash")


def test_weight_mem_is_saved_in_the_ir(tmp_path):
    g = wide_graph()
    g.node("conva").weight_mem = "uram"
    g.save(tmp_path)
    back = Graph.load(tmp_path)
    assert [n.weight_mem for n in back.nodes] == ["uram", "auto"]
    assert json.loads((tmp_path / "graph.json").read_text())["nodes"][1]["weight_mem"] == "auto"


# --------------------------------------------------------------------------- folding

def test_block_ram_designs_fold_exactly_as_without_uram():
    s = fold.fold(wide_graph(), ROOMY)
    assert s["fits_budget"] and not fold.uram_nodes(s) and s["resources"]["URAM"] == 0
    assert "block_ram_only" not in s and "with_uram" not in s
    assert s["budget"]["URAM"] == pytest.approx(7.2)
    same = fold.fold(wide_graph(), dict(ROOMY, resources={k: v for k, v in ROOMY["resources"].items()
                                                           if k != "URAM"}))
    assert strip(same) == strip(s)
    assert strip(fold.fold(wide_graph(), ROOMY, uram=False)) == strip(s)
    assert "URAM" not in fold.fold_table(s, ROOMY)           # the table as before


def test_block_ram_bound_design_fits_with_uram():
    g = wide_graph()
    s = fold.fold(g, UP)
    assert s["fits_budget"] and fold.uram_nodes(s) == ["conva"]
    assert s["folding"]["conva"]["weight_mem"] == "uram" and "weight_mem" not in s["folding"]["convb"]
    assert [n.weight_mem for n in g.nodes] == ["uram", "auto"]           # recorded in the IR
    assert 0 < s["resources"]["URAM"] <= s["budget"]["URAM"]
    assert s["resources"]["BRAM36"] <= s["budget"]["BRAM36"]
    assert s["nodes"][0]["weights_mem"] == "URAM288"
    # what block RAM alone needed: the old over-budget folding
    old = fold.fold(wide_graph(), NOURAM)
    assert not old["fits_budget"]
    assert s["block_ram_only"] == {k: old[k] for k in ("interval_cycles", "fps_at_clock",
                                                       "resources", "fits_budget")}
    assert s["fps_at_clock"] > old["fps_at_clock"]
    # uram=False (build --over-budget) folds as on a board without UltraRAM
    assert strip(fold.fold(wide_graph(), UP, uram=False)) == strip(old)
    table = fold.fold_table(s, UP)
    assert table.splitlines()[0].endswith("URAM") and "URAM 50%" in table
    assert fold.budget_refusal(g, s, UP) is None
    assert any("UltraRAM" in w and "the driver loads them through the run-time weight port" in w
               for w in fold.fold_warnings(s))


def test_residual_graphs_report_what_block_ram_alone_builds():
    # folded twice (shortcut FIFOs): block_ram_only is the uram=False fold itself
    board = dict(UP, resources=dict(UP["resources"], LUT=60000, FF=120000))
    res = lambda: G.residual_chain(np.random.default_rng(0), hw=4, c=(8, 256))
    s = fold.fold(res(), board)
    old = fold.fold(res(), board, uram=False)
    assert s["fits_budget"] and fold.uram_nodes(s) and not old["fits_budget"]
    assert s["block_ram_only"] == {k: old[k] for k in ("interval_cycles", "fps_at_clock",
                                                       "resources", "fits_budget")}


def test_fps_mode_and_too_little_uram():
    # --fps: the least resources meeting the target, in UltraRAM when block RAM is short
    s = fold.fold(wide_graph(), UP, fps=1000)
    assert s["mode"] == "fps" and s["interval_cycles"] <= 100_000 and fold.uram_nodes(s)
    # one usable block cannot hold 590 kbit: refused as before, with the UltraRAM attempt
    tight = dict(UP, name="tight", resources=dict(UP["resources"], URAM=2))
    g = wide_graph()
    s = fold.fold(g, tight)
    assert not s["fits_budget"] and not fold.uram_nodes(s) and "with_uram" in s
    msg = fold.budget_refusal(g, s, tight)
    assert msg.startswith("wide_weights does not fit tight: the cheapest folding found needs BRAM36")
    assert "; with UltraRAM still over budget: URAM 3 (budget 1.8); --over-budget builds it" in msg
    with pytest.raises(BuildError, match=r"--fps 1000 does not fit tight \(BRAM36"):
        fold.fold(wide_graph(), tight, fps=1000)


def test_refusal_names_a_board_with_uram_when_no_block_ram_has_room(monkeypatch):
    known = {"nouram": NOURAM, "upsmall": UP}
    monkeypatch.setattr(boards, "board_names", lambda: sorted(known))
    monkeypatch.setattr(boards, "load_board", lambda name: as_board(known[name]))
    g = wide_graph()
    s = fold.fold(g, NOURAM)
    before = copy.deepcopy([(n.pe, n.simd, n.weight_mem) for n in g.nodes])
    msg = fold.budget_refusal(g, s, NOURAM)
    assert [(n.pe, n.simd, n.weight_mem) for n in g.nodes] == before   # folded a copy
    assert "It would fit on upsmall with UltraRAM (URAM 4, BRAM36 " in msg
    assert "frames/s, weights loaded at run time)" in msg
    known.pop("upsmall")
    assert "none in boards/ has room, UltraRAM included" in fold.budget_refusal(g, s, NOURAM)


def test_folding_files_name_the_weight_memory(tmp_path):
    s = fold.fold(wide_graph(), UP)
    f = tmp_path / "folding.json"
    f.write_text(json.dumps(s["folding"]))
    g2 = wide_graph()
    s2 = fold.fold(g2, UP, folding=fold.load_folding(f))
    assert s2["mode"] == "file" and s2["folding"] == s["folding"]
    assert g2.node("conva").weight_mem == "uram"
    # a file's 'uram' holds with uram=False, on a roomy board too
    s3 = fold.fold(wide_graph(), ROOMY, folding={"convb": {"pe": 1, "simd": 8, "weight_mem": "uram"}},
                   uram=False)
    assert fold.uram_nodes(s3) == ["convb"]


@pytest.mark.parametrize("entry, words", [
    ({"conva": {"pe": 4, "simd": 64, "weight_mem": "flash"}}, ["node conva", "weight_mem must be one of auto, uram"]),
    ({"conva": {"pe": 4, "simd": 64, "weight_mem": "uram"}}, ["UltraRAM", "nouram has none"]),
    ({"conva": {"pe": 4, "simd": 64, "memory": "uram"}}, ["unknown folding key", "weight_mem"]),
])
def test_illegal_weight_memories_explain_themselves(entry, words):
    with pytest.raises(BuildError) as exc:
        fold.fold(wide_graph(), NOURAM, folding=entry)
    assert all(w in str(exc.value) for w in words), str(exc.value)


def test_weight_mem_only_on_nodes_with_weights():
    rng = np.random.default_rng(1)
    a = G.conv("conva", Stream(4, 4, 16, "bit", 1), 16, 3, rng, pad=1, pad_value=0)
    p = G.maxpool("pool", a.out, 2, rng)
    g = G.chain([a, p], "pooled")
    with pytest.raises(BuildError, match="node pool: 'weight_mem' applies only to nodes with a weight"):
        fold.fold(g, UP, folding={"pool": {"pe": 1, "simd": 1, "weight_mem": "auto"}})
    assert fold.node_options(p, weight_mems=("uram",)) == []


def test_util_takes_uram():
    assert fold.parse_util("URAM=0.5,BRAM=0.8") == {"URAM": 0.5, "BRAM36": 0.8}
    s = fold.fold(wide_graph(), UP, util={"URAM": 0.4})
    assert s["budget"]["URAM"] == pytest.approx(3.2) and s["resources"]["URAM"] <= 3


# --------------------------------------------------------------------------- report

def test_report_shows_uram():
    g = wide_graph()
    s = fold.fold(g, UP)
    graph = json.loads(json.dumps(g.to_dict(), default=str))
    rows = report.node_table(graph, s, {})
    assert rows[0]["mem"].startswith("UltraRAM, 4 URAM288 blocks") and "start-up" in rows[0]["mem"]
    assert rows[1]["mem"] is None or not rows[1]["mem"].startswith("UltraRAM")
    cap = dict(as_board(UP).resources)
    svg = report.svg_resources(s["resources"], s["budget"], cap)
    assert ">URAM<" in svg and "predicted 4 of 8" in svg
    assert ">URAM<" in report.svg_node_resources(s["nodes"], cap)
    # a report.json from before UltraRAM was modelled has no URAM figures
    old = {r: v for r, v in s["resources"].items() if r != "URAM"}
    assert "predicted 0 of 8" in report.svg_resources(old, s["budget"], cap)
    assert ">URAM<" not in report.svg_resources(s["resources"], {}, {k: v for k, v in cap.items()
                                                                       if k != "URAM"})


# --------------------------------------------------------------------------- build

SPEC = {
    "name": "wideweights",
    "description": "test: two 256-channel binary convolutions on a 4x4 map (0.7 Mbit of weights)",
    "input": {"channels": 1, "height": 4, "width": 4}, "num_classes": 10,
    "layers": [
        {"type": "conv", "name": "conv1", "out": 64, "kernel": 3, "padding": 1, "precision": "float"},
        {"type": "batchnorm", "name": "bn1", "affine": False, "eps": 0.0001},
        {"type": "relu"},
        {"type": "batchnorm", "name": "bn2", "eps": 0.0001, "min_gamma": 0.01},
        {"type": "conv", "name": "conv2", "out": 256, "kernel": 3, "padding": 1, "precision": "xnor"},
        {"type": "relu"},
        {"type": "batchnorm", "name": "bn3", "eps": 0.0001, "min_gamma": 0.01},
        {"type": "conv", "name": "conv3", "out": 256, "kernel": 3, "padding": 1, "precision": "xnor"},
        {"type": "relu"},
        {"type": "batchnorm", "name": "bn4", "affine": False, "eps": 0.0001},
        {"type": "conv", "name": "conv4", "out": 10, "kernel": 1, "precision": "float"},
        {"type": "relu"},
        {"type": "avgpool", "kernel": 4},
        {"type": "flatten"}]}


@pytest.fixture(scope="module")
def wide_ckpt(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("uram")
    spec = root / "wideweights.json"
    spec.write_text(json.dumps(SPEC))
    ck = root / "wide.pt"
    run_cli("init", spec, "--cf", "4", "-o", ck)
    return ck


def _board_file(tmp_path: Path) -> Path:
    p = tmp_path / "upsmall.json"
    p.write_text(json.dumps(dict(UP, ps="zynq_ultra", resources=dict(UP["resources"], LUT=20000,
                                                                      FF=40000))))
    return p


def test_a_design_that_fits_only_with_uram_builds_with_runtime_weights(tmp_path, wide_ckpt):
    board = _board_file(tmp_path)
    r = run_cli("build", wide_ckpt, "--board", board, "-o", tmp_path / "out", "--frames", 1,
                check=False)
    assert r.returncode == 0, r.stderr
    assert "live in UltraRAM, which starts empty: building with run-time weights" in r.stdout
    assert "BRAM36  DSP  URAM" in r.stdout              # the fold table's URAM column
    graph = json.loads((tmp_path / "out" / "graph.json").read_text())
    assert graph["runtime_weights"] is True
    assert "uram" in {n.get("weight_mem") for n in graph["nodes"] if n["kind"] == "conv"}
    man = json.loads((tmp_path / "out" / "weights" / "weights.json").read_text())
    assert man["words"] > 0 and len(man["memories"]) > 0
    # --over-budget: the block-RAM folding, built as before (over budget, with a warning)
    r = run_cli("build", wide_ckpt, "--board", board, "-o", tmp_path / "out2", "--frames", 1,
                "--over-budget", check=False)
    assert r.returncode == 0, r.stderr
    assert "exceed the folding budget" in r.stdout
    pred = json.loads((tmp_path / "out2" / "report.json").read_text())["predicted"]
    assert not pred["fits_budget"] and pred["resources"]["URAM"] == 0
    assert not any("weight_mem" in f for f in pred["folding"].values())
    graph = json.loads((tmp_path / "out2" / "graph.json").read_text())
    assert {n.get("weight_mem") for n in graph["nodes"] if n["kind"] == "conv"} == {"auto"}
    assert graph["runtime_weights"] is False and not (tmp_path / "out2" / "weights").exists()


def test_a_folding_file_with_uram_builds_with_runtime_weights(tmp_path, wide_ckpt):
    f = tmp_path / "fold.json"
    f.write_text(json.dumps({"conv3": {"pe": 1, "simd": 256, "weight_mem": "uram"}}))
    r = run_cli("build", wide_ckpt, "--board", "zcu104", "--folding", f, "-o", tmp_path / "out",
                "--frames", 1, check=False)
    assert r.returncode == 0, r.stderr
    assert "weights of conv3 live in UltraRAM" in r.stdout
    assert json.loads((tmp_path / "out" / "graph.json").read_text())["runtime_weights"] is True


def test_a_memory_bound_folding_is_refused_unless_accepted(tmp_path, wide_ckpt):
    """Block RAM for the weights only at a folding 16x slower than the logic allows: one line
    with both frame rates; --accept-slow builds it."""
    board = json.loads((REPO / "boards" / "pynq-z2.json").read_text())
    board.update(name="smallbram", resources=dict(board["resources"], BRAM36=24))
    bf = tmp_path / "smallbram.json"
    bf.write_text(json.dumps(board))
    r = run_cli("build", wide_ckpt, "--board", bf, "-o", tmp_path / "out", "--frames", 1,
                check=False)
    err = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(err) == 1, r.stderr
    assert err[0].startswith("error: wideweights fits smallbram only at 5,425.3 frames/s")
    assert "memory-bound (BRAM36 21.5 of 24)" in err[0] and "--accept-slow" in err[0]
    assert not (tmp_path / "out").exists()
    r = run_cli("build", wide_ckpt, "--board", bf, "-o", tmp_path / "out", "--frames", 1,
                "--accept-slow", check=False)
    assert r.returncode == 0, r.stderr
