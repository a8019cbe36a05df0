"""Lowering, streamlining and the golden model against the float PyTorch model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from generator.hw import golden
from generator.model import spec as specmod
from generator.model.checkpoint import Checkpoint
from generator.commands.init import init_model
from generator.hw.compare import layerwise
from generator.core.errors import LoweringError, SpecError
from generator.hw.ir import Graph
from generator.hw.lower import fold_threshold, lower
from generator.model.network import CFNet, calibrate_batchnorm, pixels_to_input


def as_ckpt(model: CFNet) -> Checkpoint:
    return Checkpoint(model.spec, model.state_dict())


def random_pixels(shape, n, seed=0):
    c, h, w = shape
    return np.random.default_rng(seed).integers(0, 256, (n, c, h, w), dtype=np.uint8)


def assert_layerwise(graph, model, pixels, max_flip_rate=0.01):
    report = layerwise(graph, model, pixels)
    for entry in report:
        if "unexplained" in entry:
            assert entry["unexplained"] == 0, entry
            assert entry["mismatches"] <= max_flip_rate * entry["values"], entry
        else:
            assert entry["beyond_bound"] == 0, entry
    return report


# --- exact threshold folding -------------------------------------------------

@pytest.mark.parametrize("seed", range(5))
def test_fold_threshold_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    c = 64
    lo, hi = np.full(c, -40), np.full(c, 40)
    g1, b1 = rng.normal(size=c), rng.normal(size=c) * 5
    g2, b2 = rng.normal(size=c), rng.normal(size=c)
    g2[:4] = 0.0  # constant channels
    T = lambda a: (np.maximum(g1 * a + b1, 0) * g2 + b2) >= 0
    tau, direction = fold_threshold(T, lo, hi)
    for a in range(-40, 41):
        acc = np.full(c, a)
        want = T(acc)
        got = np.where(direction > 0, acc >= tau, acc <= tau)
        assert np.array_equal(got, want), a


# --- the golden model's arithmetic ---------------------------------------------

def test_xnor_popcount_equals_signed_dot():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (7, 5, 77), dtype=np.uint8)
    w = rng.integers(0, 2, (13, 77), dtype=np.uint8)
    want = (2 * x.astype(np.int64) - 1) @ (2 * w.astype(np.int64) - 1).T
    assert np.array_equal(golden.xnor_dot(x, w), want)


def test_graph_save_load_round_trip(tmp_path):
    model = init_model("digits", 4)
    graph = lower(as_ckpt(model))
    graph.save(tmp_path)
    again = Graph.load(tmp_path)
    px = random_pixels((1, 8, 8), 6).transpose(0, 2, 3, 1).copy()
    for a, b in zip(golden.run(graph, px), golden.run(again, px)):
        assert np.array_equal(a, b)


# --- NIN: every CF n ---------------------------------------------------------------

@pytest.mark.parametrize("cf", [1, 2, 4, 8, 16])
def test_nin_layerwise_agreement(cf):
    model = init_model("nin", cf, calib_batches=2, batch=16)
    graph = lower(as_ckpt(model))
    kinds = [n.kind for n in graph.nodes]
    assert kinds == ["conv", "conv", "conv", "maxpool", "conv", "conv", "conv", "avgpool",
                     "conv", "conv", "scalemac", "globalsum"]
    mac = graph.nodes[-2]
    assert mac.n == cf and len(mac.scales) == 192 // cf
    cost = graph.meta["cf_costs"][-1]
    assert cost["stored_scales"] == 192 // cf
    assert cost["fp_multiplies"] == (192 // cf) * 10 * 8 * 8
    assert_layerwise(graph, model, random_pixels((3, 32, 32), 4, seed=cf))


# --- refusals -------------------------------------------------------------------

def test_bw_mode_refused():
    model = init_model("digits", 4, mode="bw")
    with pytest.raises(LoweringError, match="BW-CF"):
        lower(as_ckpt(model))


def test_zero_padding_of_binary_activations_refused():
    spec = specmod.load_spec("digits")
    spec["layers"][4]["pad_value"] = 0
    model = CFNet(specmod.resolve(spec, 4))
    with pytest.raises(LoweringError, match="pad_value -1"):
        lower(as_ckpt(model.eval()))


def test_float_layer_in_the_middle_refused():
    spec = specmod.load_spec("digits")
    spec["layers"][4]["precision"] = "float"
    model = CFNet(specmod.resolve(spec, 4))
    with pytest.raises(LoweringError):
        lower(as_ckpt(model.eval()))


# --- property-based: random small specs -----------------------------------------------

@st.composite
def small_specs(draw):
    c_in = draw(st.integers(1, 3))
    size = draw(st.integers(5, 11))           # odd sizes included
    k1 = draw(st.sampled_from([1, 3, 5]))
    c1 = draw(st.sampled_from([8, 12, 16]))
    c2 = draw(st.sampled_from([8, 16, 24]))
    c3 = draw(st.sampled_from([8, 16]))
    k2 = draw(st.sampled_from([1, 3, 5]))
    s2 = draw(st.sampled_from([1, 2]))
    pool = draw(st.sampled_from(["none", "max", "avg"]))
    layers = [
        {"type": "conv", "name": "c1", "out": c1, "kernel": k1, "padding": k1 // 2,
         "precision": "float"},
        {"type": "batchnorm", "name": "b1", "affine": True},
        {"type": "relu"},
        {"type": "batchnorm", "name": "b2", "affine": True},
        {"type": "conv", "name": "c2", "out": c2, "kernel": k2, "stride": s2,
         "padding": draw(st.integers(0, k2 // 2)), "precision": "xnor"},
        {"type": "relu"},
    ]
    if pool == "max":
        layers.append({"type": "maxpool", "kernel": 2, "stride": 2})
    elif pool == "avg":
        layers.append({"type": "avgpool", "kernel": 3, "stride": 2, "padding": 1})
    # heads: 1x1 conv + global average pool (NIN), an unpadded k x k full-precision conv,
    # a linear layer on the flattened map, and a max-pool before it (VGG); b4 with a
    # negative gamma after the ReLU makes the max-pool of those channels a min-pool
    head = draw(st.sampled_from(["gap", "conv", "linear", "maxpool_linear"]))
    layers += [
        {"type": "batchnorm", "name": "b3", "affine": True},
        {"type": "conv", "name": "c3", "out": c3, "kernel": 3, "padding": 1, "precision": "xnor"},
        {"type": "relu"},
        {"type": "batchnorm", "name": "b4", "affine": head != "gap"},
    ]
    if head in ("gap", "conv"):
        k4 = 1 if head == "gap" else draw(st.sampled_from([2, 3]))
        layers += [{"type": "conv", "name": "c4", "out": 5, "kernel": k4, "precision": "float"},
                   {"type": "relu"}]
    else:
        if head == "maxpool_linear":
            layers.append({"type": "maxpool", "kernel": 2, "stride": 2,
                           "padding": draw(st.integers(0, 1))})
        layers += [{"type": "flatten"}, {"type": "linear", "name": "fc", "out": 5,
                                          "precision": "float"}]
    spec = {"name": "rand", "input": {"channels": c_in, "height": size, "width": size},
            "layers": layers}
    try:
        shapes = specmod.shapes(specmod.validate(spec))
    except SpecError:
        assume(False)
    if head in ("gap", "conv"):
        _, h, _ = shapes[-1]
        layers += [{"type": "avgpool", "kernel": h}, {"type": "flatten"}]
    cf = draw(st.sampled_from([n for n in (1, 2, 4, 8) if c2 % n == 0 and c3 % n == 0]))
    return spec, cf, draw(st.integers(0, 2**16))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_specs())
def test_random_specs_golden_equals_float(case):
    spec, cf, seed = case
    torch.manual_seed(seed)
    model = CFNet(specmod.resolve(spec, cf))
    with torch.no_grad():  # random BN affine parameters, including negative gammas
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.affine:
                m.weight.copy_(torch.randn_like(m.weight))
                m.bias.copy_(torch.randn_like(m.bias) * 0.5)
    inp = spec["input"]
    shape = (inp["channels"], inp["height"], inp["width"])
    calibrate_batchnorm(model, [pixels_to_input(random_pixels(shape, 16, seed + i)) for i in range(2)])
    graph = lower(as_ckpt(model))
    assert_layerwise(graph, model, random_pixels(shape, 6, seed + 7), max_flip_rate=0.05)


# --- a trained model on real data ------------------------------------------------

def test_digits_trained_agreement(trained_digits):
    from generator.model.checkpoint import load_checkpoint
    from generator.hw.compare import agreement
    from generator.model.data import load_digits

    ckpt = load_checkpoint(trained_digits)
    graph = lower(ckpt)
    test = load_digits().test
    result = agreement(graph, ckpt.model(), test.images, test.labels)
    assert result["frames"] == len(test.labels)
    assert result["agreement"] >= 0.995, result
    assert result["golden_acc"] >= 0.90, result
    report = assert_layerwise(graph, ckpt.model(), test.images)
    assert sum(e.get("unexplained", 0) for e in report) == 0


def test_eval_golden_json(trained_digits):
    import json

    from conftest import run_cli

    proc = run_cli("eval", trained_digits, "--data", "digits", "--golden", "--json")
    result = json.loads(proc.stdout)
    for key in ("float_acc", "golden_acc", "agreement"):
        assert 0.0 <= result[key] <= 1.0
    assert result["agreement"] >= 0.995
    assert result["frames"] == 449


@pytest.mark.parametrize("edit, words", [
    ({13: {"kernel": 2, "stride": 2}, "num_classes": 40},
     ["only a global average pool", "got k2 p0 on a 4x4x10 map"]),
    ({11: {"kernel": 3, "padding": 1}}, ["must be unpadded", "got k3 s1 p1 on a 4x4x64 map"]),
])
def test_head_refusals_name_the_shapes(edit, words):
    spec = specmod.load_spec("digits")
    for i, change in edit.items():
        if isinstance(i, int):
            spec["layers"][i].update(change)
        else:
            spec[i] = change
    model = CFNet(specmod.resolve(spec, 4))
    with pytest.raises(LoweringError) as exc:
        lower(as_ckpt(model.eval()))
    for w in words:
        assert w in str(exc.value), str(exc.value)
