"""Architecture specs (generator/model/spec.py): zoo, shapes, validation messages, resolve."""

import copy
import json

import pytest
import torch

from generator.model import spec as S
from generator.core.errors import SpecError
from generator.model.network import CFNet

TINY = {"name": "tiny", "input": {"channels": 1, "height": 8, "width": 8}, "num_classes": 4,
        "layers": [{"type": "conv", "name": "c1", "out": 8, "kernel": 3, "padding": 1},
                   {"type": "batchnorm", "name": "bn1"},
                   {"type": "conv", "name": "c2", "out": 8, "kernel": 3, "precision": "xnor"},
                   {"type": "maxpool", "kernel": 2},
                   {"type": "flatten"},
                   {"type": "linear", "name": "fc", "out": 4, "precision": "bw"}]}


def test_zoo_lists_the_three_models():
    assert {"nin", "vgg7", "digits"} <= set(S.zoo_names())


@pytest.mark.parametrize("name", S.zoo_names())
def test_zoo_specs_validate_and_build(name):
    spec = S.load_spec(name)
    assert spec["name"] == name
    for cf in (1, 2, 4, 8, 16):
        resolved = S.resolve(spec, cf)
        assert resolved["resolved"] is True
    model = CFNet(S.resolve(spec, 2))
    c, h, w = S.shapes(spec)[0]
    with torch.no_grad():
        assert model.eval()(torch.zeros(2, c, h, w)).shape == (2, spec["num_classes"])


def test_nin_shapes():
    spec = S.load_spec("nin")
    shapes = dict(zip(["input"] + [l["name"] for l in spec["layers"]], S.shapes(spec)))
    assert shapes["input"] == (3, 32, 32)
    assert shapes["conv1"] == (192, 32, 32)
    assert shapes["conv3"] == (96, 32, 32)
    assert shapes["maxpool9"] == (96, 16, 16)
    assert shapes["conv6"] == (192, 16, 16)
    assert shapes["avgpool19"] == (192, 8, 8)
    assert shapes["conv8"] == (192, 8, 8)
    assert shapes["conv9"] == (10, 8, 8)
    assert S.shapes(spec)[-1] == (10,)
    binary = [l for l in spec["layers"] if l["type"] == "conv" and l["precision"] != "float"]
    assert [l["name"] for l in binary] == [f"conv{i}" for i in range(2, 9)]
    assert all(l["pad_value"] == -1 for l in binary)  # XNOR pads its bits with -1
    assert spec["layers"][0]["pad_value"] == 0  # the float first layer pads pixels with 0


def test_vgg7_and_digits_shapes():
    vgg = S.load_spec("vgg7")
    by_name = dict(zip(["input"] + [l["name"] for l in vgg["layers"]], S.shapes(vgg)))
    assert by_name["conv2"] == (128, 32, 32)
    assert by_name["conv6"] == (512, 8, 8)
    assert by_name["fc1"] == (1024,)
    assert S.shapes(vgg)[-1] == (10,)
    assert (8192,) in S.shapes(vgg)  # flatten of 512 x 4 x 4
    digits = S.load_spec("digits")
    assert S.shapes(digits)[0] == (1, 8, 8)
    assert S.shapes(digits)[-1] == (10,)


def test_load_spec_from_file(tmp_path):
    p = tmp_path / "tiny.json"
    p.write_text(json.dumps(TINY))
    spec = S.load_spec(str(p))
    assert S.shapes(spec)[-1] == (4,)
    assert spec["layers"][1]["eps"] == 1e-5  # defaults filled
    assert spec["layers"][3]["stride"] == 2  # pool stride defaults to its kernel
    assert spec["layers"][4]["name"] == "flatten4"  # default names: type + index


def _bad(mutate):
    spec = copy.deepcopy(TINY)
    mutate(spec)
    return spec


@pytest.mark.parametrize("mutate,message", [
    (lambda s: s["layers"][0].update(kernal=3), r"layer 0 \(conv\): unknown field\(s\) kernal"),
    (lambda s: s.update(layer=[]), r"unknown field\(s\) layer"),
    (lambda s: s["input"].update(depth=3), r"input: unknown field\(s\) depth"),
    (lambda s: s["layers"][0].update(kernel="3"), r"layer 0: kernel must be an integer >= 1, got '3'"),
    (lambda s: s["layers"][0].update(out=2.5), r"layer 0: out must be an integer"),
    (lambda s: s["layers"][0].update(type="convolution"), r"layer 0: 'type' must be one of conv"),
    (lambda s: s["layers"][0].update(precision="int4"), r"precision must be one of float, bw, xnor"),
    (lambda s: s["layers"][0].update(dropout="half"), r"dropout must be a number"),
    (lambda s: s["layers"][0].update(bias="yes"), r"bias must be true or false"),
    (lambda s: s["layers"][0].update(pad_value=1), r"pad_value must be 0 or -1"),
    (lambda s: s["layers"][1].update(eps=0), r"eps must be in \(0"),
    (lambda s: s["layers"][1].update(affine="no"), r"affine must be true or false"),
    (lambda s: s["layers"][0].update(kernel=11), r"layer 0 \(c1\): kernel 11 does not fit the 8x8 input"),
    (lambda s: s["layers"][3].update(kernel=9), r"kernel 9 does not fit the 6x6 input"),
    (lambda s: s["layers"][2].update(cf=3), r"layer 2: cf 3 does not divide its 8 output channels"),
    (lambda s: s["layers"][1].update(name="c1"), r"duplicate layer name 'c1'"),
    (lambda s: s["layers"][1].update(name="bad-name"), r"layer name 'bad-name' is not a safe name"),
    (lambda s: s.update(num_classes=10), r"output shape \(4,\) does not match num_classes 10"),
    (lambda s: s["input"].update(channels=0), r"input.channels must be an integer >= 1"),
    (lambda s: s.pop("layers"), r"missing 'layers'"),
    (lambda s: s.update(layers=[]), r"'layers' must be a non-empty list"),
    (lambda s: s["layers"].insert(5, {"type": "conv", "out": 4, "kernel": 1}),
     r"needs a \(C, H, W\) input"),
    (lambda s: s["layers"].pop(4), r"linear needs a flat input; add a flatten layer"),
])
def test_malformed_specs_give_helpful_errors(mutate, message):
    with pytest.raises(SpecError, match=message) as info:
        S.validate(_bad(mutate), source="tiny.json")
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("tiny.json: ")


def test_unreadable_spec_file(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text("{not json")
    with pytest.raises(SpecError, match="broken.json: not a readable JSON spec"):
        S.load_spec(str(p))
    with pytest.raises(SpecError, match=r"unknown architecture 'resnet': not a zoo name \(digits"):
        S.load_spec("resnet")


def test_resolve_fills_cf_and_checks_divisibility():
    spec = S.resolve(S.load_spec("nin"), 4)
    for layer in spec["layers"]:
        if layer["type"] == "conv":
            assert layer["cf"] == (None if layer["precision"] == "float" else 4)
    with pytest.raises(SpecError, match=r"layer conv2: CF n=64 does not divide its 160 output"):
        S.resolve(S.load_spec("nin"), 64)
    with pytest.raises(SpecError, match=r"cf must be an integer >= 1"):
        S.resolve(S.load_spec("nin"), 0)
    # a layer's own n wins over the command-line n
    own = _bad(lambda s: s["layers"][2].update(cf=2))
    assert S.resolve(own, 4)["layers"][2]["cf"] == 2
    assert S.resolve(own, 4)["layers"][5]["cf"] == 4


def test_resolve_mode_bw_and_xnor():
    base = S.load_spec("nin")
    bw = S.resolve(base, 2, "bw")
    xnor = S.resolve(base, 2, "xnor")
    for b, x, orig in zip(bw["layers"], xnor["layers"], base["layers"]):
        if orig["type"] != "conv":
            assert b == x == orig
        elif orig["precision"] == "float":
            assert b["precision"] == x["precision"] == "float" and b["cf"] is None
            assert b["pad_value"] == x["pad_value"] == 0
        else:
            assert (b["precision"], b["pad_value"]) == ("bw", 0)
            assert (x["precision"], x["pad_value"]) == ("xnor", -1)
    assert S.resolve(base, 2) == xnor  # nin's binary layers are xnor already
    assert base["layers"][4]["cf"] is None  # resolve does not modify its argument
    with pytest.raises(SpecError, match=r"mode must be 'xnor' or 'bw'"):
        S.resolve(base, 2, "float")
    # the model follows the mode: BW layers see real-valued inputs
    model = CFNet(S.resolve(S.load_spec("digits"), 4, "bw"))
    assert {m.mode for m in model.modules() if hasattr(m, "cf")} == {"bw"}


def test_cfnet_needs_a_resolved_spec():
    with pytest.raises(ValueError, match="resolved"):
        CFNet(S.load_spec("digits"))
