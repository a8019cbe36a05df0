"""Residual networks end to end (issue 14): `build` of a trained digits_res, and lowered
random residual models, bit exact in HLS C simulation and RTL simulation (random valid /
ready stalls, mid-frame reset, back-pressure; measured interval = predicted)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import run_cli
from generator.backends import hls, rtl
from generator.flows import csim, rtlsim
from generator.hw import fold
from generator.hw.boards import load_board
from generator.hw.lower import lower
from generator.model import spec as specmod
from generator.model.checkpoint import Checkpoint
from generator.model.network import CFNet, calibrate_batchnorm, pixels_to_input
from rtl_unit_tb import graphs as G


@pytest.fixture(scope="module")
def digits_res_build(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dres_build")
    pt = tmp / "dres.pt"
    run_cli("train", "digits_res", "--cf", 4, "--mode", "xnor", "--data", "digits", "-o", pt)
    out = tmp / "b"
    run_cli("build", pt, "--board", "pynq-z2", "-o", out, "--frames", 12, "--data", "digits")
    return out


def test_digits_res_build_csim_bit_exact(digits_res_build):
    out = digits_res_build
    rep = json.loads((out / "report.json").read_text())
    graph = json.loads((out / "graph.json").read_text())
    adds = [n for n in graph["nodes"] if n["kind"] == "resadd"]
    assert len(adds) == 3 and all(n["skip_depth"] > 4 for n in adds)
    assert rep["predicted"]["fits_budget"]
    r = csim.run_csim(out, quiet=True)
    assert r["bit_exact"], csim.summary(r)
    assert set(r["mismatches"]) == {n["name"] for n in graph["nodes"]}   # every node checked


@pytest.mark.sim
def test_digits_res_build_rtl_sim_bit_exact_full_rate(digits_res_build):
    out = digits_res_build
    s = rtlsim.run(out, frames=6, simulator="verilator", perf_frames=4, pattern_frames=1)
    failed = {k: t.get("message", "") for k, t in s["tests"].items() if not t["passed"]}
    assert s["bit_exact"], ({k: v for k, v in s["per_node"].items() if v["mismatches"]}, failed)
    assert {"stalls", "reset", "backpressure"} <= set(s["tests"]) and not failed
    assert s["interval_cycles"] == s["predicted_interval_cycles"]


# two residual models drawn by hand from the random-spec space of test_residual_lower.py:
# a max-pooled stem without ReLU, a ReLU before the add and no ReLU after it; a stride-2
# block with a 1x1 conv shortcut and a single-conv body
RANDOM_SPECS = [
    {"name": "rres_a", "input": {"channels": 2, "height": 8, "width": 8}, "num_classes": 5,
     "layers": [
         {"type": "conv", "name": "c1", "out": 8, "kernel": 3, "padding": 1},
         {"type": "batchnorm", "name": "bn1"},
         {"type": "maxpool", "name": "mp", "kernel": 2},
         {"type": "residual", "name": "b0", "relu": False, "body": [
             {"type": "batchnorm", "name": "b0_bn1"},
             {"type": "conv", "name": "b0_x1", "out": 8, "kernel": 3, "padding": 1, "precision": "xnor"},
             {"type": "batchnorm", "name": "b0_bn2"},
             {"type": "relu", "name": "b0_r"}]},
         {"type": "avgpool", "name": "gap", "kernel": 4}, {"type": "flatten"},
         {"type": "linear", "name": "fc", "out": 5}]},
    {"name": "rres_b", "input": {"channels": 1, "height": 8, "width": 8}, "num_classes": 5,
     "layers": [
         {"type": "conv", "name": "c1", "out": 8, "kernel": 3, "padding": 1},
         {"type": "batchnorm", "name": "bn1"}, {"type": "relu", "name": "r1"},
         {"type": "residual", "name": "b0", "relu": True, "body": [
             {"type": "batchnorm", "name": "b0_bn1"},
             {"type": "conv", "name": "b0_x1", "out": 16, "kernel": 3, "stride": 2, "padding": 1,
              "precision": "xnor"},
             {"type": "batchnorm", "name": "b0_bn2"}, {"type": "relu", "name": "b0_r"},
             {"type": "batchnorm", "name": "b0_bn3"},
             {"type": "conv", "name": "b0_x2", "out": 16, "kernel": 3, "padding": 1, "precision": "xnor"},
             {"type": "batchnorm", "name": "b0_bn4"}],
          "shortcut": [{"type": "conv", "name": "b0_sc", "out": 16, "kernel": 1, "stride": 2},
                       {"type": "batchnorm", "name": "b0_scbn"}]},
         {"type": "avgpool", "name": "gap", "kernel": 4}, {"type": "flatten"},
         {"type": "linear", "name": "fc", "out": 5}]},
]


@pytest.fixture(scope="module", params=range(len(RANDOM_SPECS)), ids=[s["name"] for s in RANDOM_SPECS])
def random_build(request, tmp_path_factory):
    spec = RANDOM_SPECS[request.param]
    torch.manual_seed(request.param)
    model = CFNet(specmod.resolve(specmod.validate(spec), 4))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.affine:
                m.weight.copy_(torch.randn_like(m.weight))
                m.bias.copy_(torch.randn_like(m.bias) * 0.5)
    rng = np.random.default_rng(request.param)
    inp = spec["input"]
    px = lambda n: rng.integers(0, 256, (n, inp["channels"], inp["height"], inp["width"]),
                                dtype=np.uint8)
    calibrate_batchnorm(model, [pixels_to_input(px(16)) for _ in range(2)])
    g = lower(Checkpoint(model.spec, model.state_dict()))
    board = load_board("pynq-z2")
    fold.fold(g, board)
    out = tmp_path_factory.mktemp(spec["name"]) / "out"
    G.write_vectors(g, out, frames=5, x=px(5).transpose(0, 2, 3, 1).copy())
    hls.render(g, out, board)
    rtl.render(g, out, board)
    return g, out


def test_random_residual_csim_bit_exact(random_build):
    g, out = random_build
    r = csim.run_csim(out, werror=True, quiet=True)
    assert r["bit_exact"], csim.summary(r)


@pytest.mark.sim
def test_random_residual_rtl_sim_bit_exact(random_build):
    g, out = random_build
    s = rtlsim.run(out, frames=5, simulator="verilator", perf_frames=4, pattern_frames=1)
    failed = {k: t.get("message", "") for k, t in s["tests"].items() if not t["passed"]}
    assert s["bit_exact"] and not failed, \
        ({k: v for k, v in s["per_node"].items() if v["mismatches"]}, failed)
    assert s["interval_cycles"] == s["predicted_interval_cycles"]
