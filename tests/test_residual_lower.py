"""Residual networks on the hardware side (issue 14): the DAG IR, the lowering of residual
blocks, the golden model on DAGs against the float model (end to end and segment by
segment within the documented bounds), the folding and the shortcut FIFOs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import run_cli
from generator.core.errors import BuildError, LoweringError
from generator.hw import fold, golden, perf, units
from generator.hw.boards import load_board
from generator.hw.compare import agreement, layerwise
from generator.hw.ir import Graph
from generator.hw.lower import lower
from generator.model import spec as specmod
from generator.model.checkpoint import Checkpoint
from generator.model.network import CFNet, calibrate_batchnorm, pixels_to_input
from rtl_unit_tb import graphs as G
from test_lower_golden import assert_layerwise


@pytest.fixture(scope="module")
def digits_res(tmp_path_factory):
    pt = tmp_path_factory.mktemp("dres") / "dres.pt"
    run_cli("train", "digits_res", "--cf", 4, "--mode", "xnor", "--data", "digits", "-o", pt)
    return pt


def test_trained_digits_res_golden_equals_float(digits_res):
    from generator.model.checkpoint import load_checkpoint
    from generator.model.data import load_digits

    ckpt = load_checkpoint(digits_res)
    g = lower(ckpt)
    kinds = [n.kind for n in g.nodes]
    assert kinds.count("resadd") == 3 and kinds[-2:] == ["globalsum", "scalemac"]
    assert g.node("b1").inputs == ["b1_conv2", "conv1"]           # identity shortcut
    assert g.node("b2").inputs == ["b2_conv2", "b2_down"]         # 1x1 stride-2 conv
    assert g.node("b2_down").inputs == ["b1"] and g.node("b2_sign").inputs == ["b1"]
    test = load_digits().test
    res = agreement(g, ckpt.model(), test.images, test.labels)
    assert res["agreement"] >= 0.995 and res["golden_acc"] >= 0.95, res
    report = assert_layerwise(g, ckpt.model(), test.images)
    assert {e["layer"] for e in report} >= {"conv1", "b1_sign", "b1_conv1", "b2_conv2", "gap"}
    # the adds are checked as values, against a bound of a few output LSBs at most
    adds = [e for e in report if e["nodes"][-1] in ("b1", "b2", "b3")]
    assert len(adds) == 3 and all(e["max_abs_error"] > 0 for e in adds)


def test_eval_golden_on_a_residual_checkpoint(digits_res):
    import json
    proc = run_cli("eval", digits_res, "--data", "digits", "--golden", "--json")
    r = json.loads(proc.stdout)
    assert r["agreement"] >= 0.995 and r["frames"] == 449


def test_digits_res_folds_with_sized_shortcut_fifos(digits_res, tmp_path):
    from generator.model.checkpoint import load_checkpoint
    g = lower(load_checkpoint(digits_res))
    s = fold.fold(g, load_board("pynq-z2"))
    assert s["fits_budget"]
    adds = [n for n in g.nodes if n.kind == "resadd"]
    assert all(n.skip_depth >= 1 + perf.SKIP_SLACK for n in adds)
    # deeper than the shortcut pixels the body takes in before its first output
    # (two 3x3 convs: at least two rows and two pixels)
    b1 = g.node("b1")
    assert b1.skip_depth > 2 * b1.inp.w + 2
    assert s["interval_cycles"] == max(units.plan(n).cycles for n in g.nodes)
    # the graph round-trips through graph.json / graph.npz with its DAG fields
    g.save(tmp_path)
    h = Graph.load(tmp_path).validate()
    assert [n.inputs for n in h.nodes] == [n.inputs for n in g.nodes]
    assert h.node("b2").inp_b == g.node("b2").inp_b and h.node("b2").skip_depth == g.node("b2").skip_depth


def test_skip_fifo_depth_follows_the_body_latency():
    """A slower body (narrower folding) keeps more shortcut pixels waiting."""
    fast = G.residual_chain(np.random.default_rng(1))
    slow = G.residual_chain(np.random.default_rng(1), fold={"b1_c1": (1, 8), "b1_c2": (1, 8)})
    assert slow.node("b1").skip_depth > fast.node("b1").skip_depth


# ----------------------------------------------------------------------------- the IR

def test_dag_validate_refuses_broken_graphs():
    g = G.residual_chain(np.random.default_rng(2))
    add = g.node("b1")
    add.inputs = ["b1_c2", "b2"]                      # a later node
    with pytest.raises(BuildError, match="is not an earlier node"):
        g.validate()
    add.inputs = ["b1_c2"]
    with pytest.raises(BuildError, match="reads 2 stream"):
        g.validate()
    add.inputs = ["b1_c2", "b1_c1"]                   # a bit stream on an int port
    with pytest.raises(BuildError, match="does not match"):
        g.validate()
    add.inputs = ["b1_c2", "conv1"]
    g.node("b2_sc").inputs = ["conv1"]                # conv1 read three times
    g.node("b2_sc").inp = g.node("conv1").out
    with pytest.raises(BuildError, match="read by 3 nodes"):
        g.validate()


def test_golden_resadd_arithmetic():
    """floor shift, ReLU, negative multipliers: against Python integers."""
    g = G.residual_chain(np.random.default_rng(3))
    n = g.node("b2")
    rng = np.random.default_rng(0)
    a = rng.integers(0, 1 << (n.inp.bits - 1), (2, n.inp.h, n.inp.w, n.inp.c))
    b = rng.integers(-(1 << (n.inp_b.bits - 2)), 1 << (n.inp_b.bits - 2), (2, n.inp.h, n.inp.w, n.inp.c))
    y = golden.resadd(n, a, b)
    for idx in [(0, 0, 0, 0), (1, 2, 3, 5), (0, 3, 1, 15)]:
        c = idx[-1]
        z = int(n.ma[c]) * int(a[idx]) + int(n.mb[c]) * int(b[idx]) + int(n.bias[c])
        assert y[idx] == max(0, z // (1 << n.shift))


# ----------------------------------------------------------------------------- refusals

def _tiny(body, shortcut=None, stem_relu=True, tail=None):
    layers = [{"type": "conv", "name": "c1", "out": 8, "kernel": 3, "padding": 1},
              {"type": "batchnorm", "name": "bn1"}] + \
        ([{"type": "relu", "name": "r1"}] if stem_relu else []) + \
        [{"type": "residual", "name": "b1", "relu": True, "body": body,
          "shortcut": shortcut or []}] + \
        (tail if tail is not None else [{"type": "avgpool", "name": "gap", "kernel": 8},
                                        {"type": "flatten"},
                                        {"type": "linear", "name": "fc", "out": 4}])
    spec = specmod.resolve({"name": "t", "input": {"channels": 1, "height": 8, "width": 8},
                            "num_classes": 4, "layers": layers}, 4)
    return Checkpoint(spec, CFNet(spec).state_dict())


XCONV = {"type": "conv", "name": "x1", "out": 8, "kernel": 3, "padding": 1, "precision": "xnor"}


@pytest.mark.parametrize("body, shortcut, tail, msg", [
    ([{"type": "batchnorm"}], None, None, "layer b1: a residual body needs a binary conv"),
    ([dict(XCONV, precision="float")], None, None, "layer x1: residual bodies are XNOR-CF"),
    ([XCONV], [{"type": "conv", "name": "sc", "out": 8, "kernel": 3, "padding": 1}], None,
     "layer sc: a shortcut conv must be unpadded (k3 s1 p1 on a 8x8x8 map)"),
    ([XCONV], None, [{"type": "avgpool", "name": "p", "kernel": 2}, {"type": "flatten"},
                     {"type": "linear", "name": "fc", "out": 4}],
     "layer p: only a global average pool may follow the last block (one unpadded pool of "
     "kernel = the whole square map); got k2 p0 on a 8x8x8 map"),
])
def test_residual_refusals_are_one_line(body, shortcut, tail, msg):
    with pytest.raises(LoweringError) as info:
        lower(_tiny(body, shortcut, tail=tail))
    assert str(info.value).startswith(msg), str(info.value)
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------- random DAGs

def random_residual_spec(seed: int) -> tuple[dict, int]:
    """A small random residual spec and its CF n, from one seed (the hypothesis test draws
    seeds; tests/test_residual_build.py simulates a few of the same specs): a float stem
    with or without ReLU and max-pool, one or two blocks (stride 1 or 2, one or two binary
    convs, a ReLU before the add or not, an identity or 1x1 conv shortcut, a ReLU after the
    add or not), global average pool and a float classifier."""
    rng = np.random.default_rng(seed)
    pick = lambda xs: xs[int(rng.integers(len(xs)))]
    coin = lambda: bool(rng.integers(2))
    c_in = int(rng.integers(1, 4))
    side = size = pick([6, 8])
    c0 = pick([8, 16])
    layers = [{"type": "conv", "name": "c1", "out": c0, "kernel": 3, "padding": 1},
              {"type": "batchnorm", "name": "bn1", "affine": coin()}]
    if coin():
        layers.append({"type": "relu", "name": "r1"})
    if coin():
        layers.append({"type": "maxpool", "name": "mp", "kernel": 2})
        size //= 2
    c = c0
    for b in range(int(rng.integers(1, 3))):
        stride = pick([1, 2]) if size >= 4 else 1
        c_out = pick([c, 2 * c]) if stride == 2 else c
        body = [{"type": "batchnorm", "name": f"b{b}_bn1", "affine": True},
                {"type": "conv", "name": f"b{b}_x1", "out": c_out, "kernel": 3, "stride": stride,
                 "padding": 1, "precision": "xnor"},
                {"type": "batchnorm", "name": f"b{b}_bn2", "affine": True}]
        if coin():                                     # a second binary conv
            body += [{"type": "relu", "name": f"b{b}_r"},
                     {"type": "batchnorm", "name": f"b{b}_bn3", "affine": True},
                     {"type": "conv", "name": f"b{b}_x2", "out": c_out, "kernel": 3,
                      "padding": 1, "precision": "xnor"},
                     {"type": "batchnorm", "name": f"b{b}_bn4", "affine": True}]
        if coin():                                     # a ReLU before the add: R form
            body.append({"type": "relu", "name": f"b{b}_r2"})
        shortcut = []
        if stride == 2 or c_out != c or coin():
            shortcut = [{"type": "conv", "name": f"b{b}_sc", "out": c_out, "kernel": 1,
                         "stride": stride},
                        {"type": "batchnorm", "name": f"b{b}_scbn", "affine": True}]
        layers.append({"type": "residual", "name": f"b{b}", "relu": coin(),
                       "body": body, "shortcut": shortcut})
        c, size = c_out, (size + 2 - 3) // stride + 1
    layers += [{"type": "avgpool", "name": "gap", "kernel": size}, {"type": "flatten"},
               {"type": "linear", "name": "fc", "out": 5}]
    spec = {"name": f"randres{seed}", "input": {"channels": c_in, "height": side, "width": side},
            "num_classes": 5, "layers": layers}
    specmod.validate(spec)
    return spec, pick([n for n in (1, 2, 4) if c0 % n == 0])


def random_model(spec, cf, seed):
    """CFNet of the spec with random BN affine parameters (negative gammas included) and
    batch norm calibrated on random pixels; returns (model, pixel source)."""
    torch.manual_seed(seed)
    model = CFNet(specmod.resolve(spec, cf))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.affine:
                m.weight.copy_(torch.randn_like(m.weight))
                m.bias.copy_(torch.randn_like(m.bias) * 0.5)
    inp = spec["input"]
    rng = np.random.default_rng(seed)
    px = lambda n: rng.integers(0, 256, (n, inp["channels"], inp["height"], inp["width"]),
                                dtype=np.uint8)
    calibrate_batchnorm(model, [pixels_to_input(px(16)) for _ in range(2)])
    return model, px


# derandomized: the same 40 seeds every run (seed 2150 found the range-clipping case that
# compare.quantize now explains); widen max_examples locally to search further
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**16))
def test_random_residual_specs_golden_equals_float(seed):
    spec, cf = random_residual_spec(seed)
    model, px = random_model(spec, cf, seed)
    graph = lower(Checkpoint(model.spec, model.state_dict())).validate()
    assert_layerwise(graph, model, px(6), max_flip_rate=0.05)
    perf.size_skip_fifos(graph)
    graph.validate()
