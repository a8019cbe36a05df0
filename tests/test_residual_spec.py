"""Residual blocks on the model side (issue 14): spec validation and resolve of nested layers,
the PyTorch block against a hand-written computation, checkpoints, training, the residual zoo
(digits_res, resnet20_bin, resnet18) and the refusals of the hardware lowering and QONNX export."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from generator.cli import main
from generator.commands.init import init_model
from generator.core.errors import CheckpointError, LoweringError, SpecError
from generator.model import spec as S
from generator.model.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from generator.model.network import CFNet, ResidualBlock, calibrate_batchnorm
from generator.model.quant import group_scales

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO)}

# A tiny residual net: float conv, an identity block, a downsampling block with a float
# 1x1 stride-2 shortcut (and a binary bw conv in the shortcut of a third block), head.
TINY = {"name": "tinyres", "input": {"channels": 1, "height": 8, "width": 8}, "num_classes": 4,
        "layers": [
            {"type": "conv", "name": "c1", "out": 8, "kernel": 3, "padding": 1},
            {"type": "batchnorm", "name": "bn1"},
            {"type": "residual", "name": "b1", "relu": True,
             "body": [{"type": "batchnorm"},
                      {"type": "conv", "out": 8, "kernel": 3, "padding": 1, "precision": "xnor"},
                      {"type": "batchnorm"}]},
            {"type": "residual", "name": "b2",
             "body": [{"type": "batchnorm"},
                      {"type": "conv", "out": 16, "kernel": 3, "stride": 2, "padding": 1,
                       "precision": "xnor"},
                      {"type": "relu"},
                      {"type": "conv", "out": 16, "kernel": 3, "padding": 1, "precision": "xnor",
                       "cf": 2}],
             "shortcut": [{"type": "conv", "out": 16, "kernel": 1, "stride": 2},
                          {"type": "batchnorm"}]},
            {"type": "residual", "name": "b3",
             "body": [{"type": "maxpool", "kernel": 2}],
             "shortcut": [{"type": "avgpool", "kernel": 2}, {"type": "dropout", "p": 0.1},
                          {"type": "conv", "name": "b3_bw", "out": 16, "kernel": 1,
                           "precision": "bw"}]},
            {"type": "avgpool", "kernel": 2},
            {"type": "flatten"},
            {"type": "linear", "name": "fc", "out": 4}]}


def _bad(mutate):
    spec = copy.deepcopy(TINY)
    mutate(spec)
    return spec


def _body(spec, i):
    return spec["layers"][i]["body"]


# ----------------------------------------------------------------------------- validation

def test_validate_fills_nested_defaults_and_names():
    spec = S.validate(TINY, source="tiny.json")
    b1, b2, b3 = spec["layers"][2:5]
    assert [l["name"] for l in b1["body"]] == ["b1_batchnorm0", "b1_conv1", "b1_batchnorm2"]
    assert [l["name"] for l in b2["shortcut"]] == ["b2_sc_conv0", "b2_sc_batchnorm1"]
    assert b1["shortcut"] == [] and b1["relu"] is True and b2["relu"] is False
    assert b1["body"][1]["pad_value"] == -1 and b2["shortcut"][0]["pad_value"] == 0
    assert b3["shortcut"][0]["stride"] == 2  # pool stride defaults to its kernel, nested too
    # a block without a name gets type + index like any layer
    anon = _bad(lambda s: s["layers"][2].pop("name"))
    names = [l["name"] for l in S.walk(S.validate(anon))]
    assert "residual2" in names and "residual2_conv1" in names


def test_shapes_walk_and_layer_shapes():
    spec = S.validate(TINY)
    assert S.shapes(spec) == [(1, 8, 8), (8, 8, 8), (8, 8, 8), (8, 8, 8), (16, 4, 4), (16, 2, 2),
                              (16, 1, 1), (16,), (4,)]
    names = [l["name"] for l in S.walk(spec)]
    assert names[:7] == ["c1", "bn1", "b1", "b1_batchnorm0", "b1_conv1", "b1_batchnorm2", "b2"]
    assert len(names) == len(set(names)) == 21  # 8 top-level, 13 nested
    keys = dict((l["name"], k) for k, l in S.walk_keys(spec))
    assert keys["b2_conv1"] == "layers.3.body.1" and keys["b2_sc_conv0"] == "layers.3.shortcut.0"
    io = S.layer_shapes(spec)
    assert io["b2_conv1"] == ((8, 8, 8), (16, 4, 4))
    assert io["b2_sc_conv0"] == ((8, 8, 8), (16, 4, 4))
    assert io["b3"] == ((16, 4, 4), (16, 2, 2))
    assert S.has_residual(spec)["name"] == "b1"
    assert S.has_residual(S.load_spec("digits")) is None


@pytest.mark.parametrize("mutate,message", [
    (lambda s: s["layers"][2].update(body=[]),
     r"layer 2 \(b1\): 'body' must be a non-empty list of layers"),
    (lambda s: s["layers"][2].pop("body"), r"layer 2 \(b1\): 'body' must be a non-empty list"),
    (lambda s: s["layers"][2].update(body={"type": "relu"}), r"'body' must be a non-empty list"),
    (lambda s: s["layers"][2].update(shortcut="identity"), r"'shortcut' must be a list of layers"),
    (lambda s: s["layers"][2].update(relu=1), r"layer 2 \(b1\): relu must be true or false"),
    (lambda s: s["layers"][2].update(skip=True), r"layer 2 \(residual\): unknown field\(s\) skip"),
    (lambda s: _body(s, 2)[1].update(kernal=3), r"layer 2\.body\.1 \(conv\): unknown field\(s\) kernal"),
    (lambda s: _body(s, 2)[1].update(out=7, cf=2), r"layer 2\.body\.1: cf 2 does not divide its 7"),
    (lambda s: _body(s, 2).insert(1, {"type": "flatten"}),
     r"layer 2\.body\.1: a residual block holds only conv, batchnorm, relu, dropout, maxpool, "
     r"avgpool layers, not flatten"),
    (lambda s: _body(s, 2).append({"type": "linear", "out": 8}), r"not linear"),
    (lambda s: _body(s, 2).append({"type": "residual", "body": [{"type": "relu"}]}),
     r"layer 2\.body\.3: a residual block holds only .* not residual"),
    (lambda s: s["layers"][3]["shortcut"].append({"type": "flatten"}),
     r"layer 3\.shortcut\.2: .* not flatten"),
    (lambda s: _body(s, 2).append({"type": 3}), r"layer 2\.body\.3: 'type' must be one of conv, "
                                               r"batchnorm, relu, dropout, maxpool, avgpool$"),
    (lambda s: _body(s, 2).append({"type": ["relu"]}), r"'type' must be one of"),
    (lambda s: _body(s, 2).append("relu"), r"layer 2\.body\.3: 'type' must be one of"),
    (lambda s: _body(s, 2)[0].update(name="c1"), r"layer 2\.body\.0: duplicate layer name 'c1'"),
    (lambda s: s["layers"][3]["shortcut"][0].update(name="b1_conv1"),
     r"layer 3\.shortcut\.0: duplicate layer name 'b1_conv1'"),
    (lambda s: s["layers"][1].update(name="b1_conv1"), r"duplicate layer name 'b1_conv1'"),
    (lambda s: _body(s, 2)[0].update(name="bad-name"), r"layer name 'bad-name' is not a safe"),
    (lambda s: _body(s, 2)[1].update(out=16),
     r"layer 2 \(b1\): body output 16x8x8 and identity shortcut output 8x8x8 differ"),
    (lambda s: s["layers"][3]["shortcut"][0].update(stride=1),
     r"layer 3 \(b2\): body output 16x4x4 and shortcut output 16x8x8 differ"),
    (lambda s: _body(s, 2)[1].update(kernel=11),
     r"layer 2\.body\.1 \(b1_conv1\): kernel 11 does not fit the 8x8 input"),
    (lambda s: s["layers"].insert(7, {"type": "residual", "body": [{"type": "relu"}]}),
     r"layer 7 \(residual7\): a residual block needs a \(C, H, W\) input, got \(16,\)"),
])
def test_malformed_residual_specs_are_one_line(mutate, message):
    with pytest.raises(SpecError, match=message) as info:
        S.validate(_bad(mutate), source="tiny.json")
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("tiny.json: ")


def test_budgets_count_nested_layers(monkeypatch):
    monkeypatch.setattr(S, "MAX_LAYERS", 17)
    S.validate(_bad(lambda s: s["layers"].pop(4)))  # 7 top-level + 9 nested: 16
    with pytest.raises(SpecError, match=r"layer 4 \(b3\): more than the 17 layers cfgen accepts "
                                        r"\(nested ones included\)"):
        S.validate(TINY, source="tiny.json")
    monkeypatch.undo()
    # the weights inside a block count in the size budget
    huge = {"input": {"channels": 65536, "height": 1, "width": 1},
            "layers": [{"type": "residual", "body": [{"type": "conv", "out": 65536, "kernel": 1}]}]}
    with pytest.raises(SpecError, match=r"the model has 4,294,967,296 weights, more than"):
        S.validate(huge, source="huge.json")
    # nesting depth: a residual body is two levels deeper than a layer, still within budget;
    # a deeper structure is refused in one line (no RecursionError)
    deep = _bad(lambda s: _body(s, 2)[0].update(eps=[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]))
    with pytest.raises(SpecError, match=r"tiny.json: nested deeper than 32 levels"):
        S.validate(deep, source="tiny.json")


def test_errors_through_load_spec_are_one_line(tmp_path):
    p = tmp_path / "r.json"
    p.write_text(json.dumps(_bad(lambda s: _body(s, 2).insert(0, {"type": "flatten"}))))
    with pytest.raises(SpecError, match=r"r.json: layer 2\.body\.0: a residual block holds only"):
        S.load_spec(str(p))


# ----------------------------------------------------------------------------- resolve

def test_resolve_nested_layers():
    spec = S.resolve(TINY, 4)
    by = {l["name"]: l for l in S.walk(spec)}
    assert by["b1_conv1"]["cf"] == 4 and by["b2_conv1"]["cf"] == 4
    assert by["b2_conv3"]["cf"] == 2  # a nested layer's own n wins
    assert by["b3_bw"] == {**by["b3_bw"], "precision": "bw", "cf": 4, "pad_value": 0}
    assert by["b2_sc_conv0"]["precision"] == "float" and by["b2_sc_conv0"]["cf"] is None
    assert by["c1"]["cf"] is None and by["fc"]["cf"] is None
    # mode overrides body layers; shortcut layers keep the precision written
    bw = {l["name"]: l for l in S.walk(S.resolve(TINY, 4, "bw"))}
    assert (bw["b1_conv1"]["precision"], bw["b1_conv1"]["pad_value"]) == ("bw", 0)
    assert bw["b2_conv3"]["precision"] == "bw"
    assert bw["b2_sc_conv0"]["precision"] == "float"
    xnor = {l["name"]: l for l in S.walk(S.resolve(TINY, 4, "xnor"))}
    assert (xnor["b3_bw"]["precision"], xnor["b3_bw"]["pad_value"]) == ("bw", 0)
    assert TINY["layers"][2]["body"][1].get("cf") is None  # the argument is not modified
    with pytest.raises(SpecError, match=r"layer b1_conv1: CF n=16 does not divide its 8 output"):
        S.resolve(TINY, 16)


# ----------------------------------------------------------------------------- PyTorch

def _sign(x):
    return torch.where(x >= 0, 1.0, -1.0)


def _bn(x, m):
    return F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)


def _randomize(model):
    torch.manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                if m.affine:
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.3, 0.3)


def test_cfnet_block_equals_a_hand_written_computation():
    model = CFNet(S.resolve(TINY, 4)).eval()
    _randomize(model)
    assert isinstance(model.layers[2], ResidualBlock) and isinstance(model.layers[3], ResidualBlock)
    keys = model.state_dict().keys()
    assert "layers.3.body.1.weight" in keys and "layers.3.shortcut.0.weight" in keys
    assert "layers.3.shortcut.1.running_var" in keys
    x = torch.randn(3, 8, 8, 8)
    b1, b2 = model.layers[2], model.layers[3]

    def xnor_conv(t, conv, stride, n):
        w = conv.weight
        alpha = group_scales(w, n).repeat_interleave(n).reshape(-1, 1, 1, 1)
        t = F.pad(_sign(t), (1, 1, 1, 1), value=-1.0)
        return F.conv2d(t, alpha * _sign(w), conv.bias, stride)

    with torch.no_grad():
        y = _bn(xnor_conv(_bn(x, b1.body[0]), b1.body[1], 1, 4), b1.body[2])
        want1 = torch.relu(y + x)  # identity shortcut, ReLU after the add
        y = xnor_conv(_bn(want1, b2.body[0]), b2.body[1], 2, 4)
        y = xnor_conv(torch.relu(y), b2.body[3], 1, 2)
        sc = b2.shortcut[0]
        s = _bn(F.conv2d(want1, sc.weight, sc.bias, 2), b2.shortcut[1])
        want2 = y + s  # no ReLU on b2
        assert torch.allclose(b1(x), want1, atol=1e-5)
        assert torch.allclose(b2(want1), want2, atol=1e-5)


def test_trace_and_trace_all():
    model = CFNet(S.resolve(TINY, 4)).eval()
    x = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        outs = model.trace(x)
        every = model.trace_all(x)
        logits = model(x)
    assert len(outs) == len(TINY["layers"])  # one output per top-level layer
    assert [tuple(o.shape[1:]) for o in outs] == S.shapes(model.spec)[1:]
    names = [l["name"] for l in S.walk(model.spec)]
    assert list(every) != names and set(every) == set(names)  # a block after its layers
    assert torch.equal(every["fc"], logits) and torch.equal(every["b2"], outs[3])
    assert every["b2_sc_batchnorm1"].shape == every["b2_conv3"].shape == (2, 16, 4, 4)
    io = S.layer_shapes(model.spec)
    assert all(tuple(every[n].shape[1:]) == io[n][1] for n in names)


def test_calibrate_batchnorm_reaches_nested_layers():
    model = CFNet(S.resolve(TINY, 4))
    calibrate_batchnorm(model, [torch.rand(8, 1, 8, 8)])
    nested = model.layers[3].shortcut[1]
    assert nested.num_batches_tracked.item() == 1
    assert not torch.allclose(nested.running_mean, torch.zeros(16))


def test_named_layers_pairs_every_layer_with_its_module():
    model = CFNet(S.resolve(TINY, 4))
    pairs = list(model.named_layers())
    assert len(pairs) == len(list(S.walk(model.spec)))
    for key, layer, module in pairs:
        if layer["type"] == "conv" and layer["precision"] != "float":
            assert module.cf == layer["cf"] and module.mode == layer["precision"]


# ----------------------------------------------------------------------------- checkpoints

def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = CFNet(S.resolve(TINY, 4, "xnor"))
    _randomize(model)
    model.eval()
    path = tmp_path / "r.pt"
    save_checkpoint(path, model, meta={"kind": "test"})
    ckpt = load_checkpoint(path)
    assert ckpt.spec == model.spec
    summary = [l["name"] for l in ckpt.layers()]
    assert summary == ["c1", "b1_conv1", "b2_conv1", "b2_conv3", "b2_sc_conv0", "b3_bw", "fc"]
    x = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(ckpt.model()(x), model(x))
    # tensors that do not match the nested spec are refused in one line
    raw = torch.load(path, weights_only=True)
    del raw["state_dict"]["layers.3.shortcut.0.weight"]
    torch.save(raw, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"missing tensor layers\.3\.shortcut\.0\.weight"):
        load_checkpoint(tmp_path / "bad.pt")
    raw = torch.load(path, weights_only=True)
    raw["spec"]["layers"][3]["body"][3]["cf"] = 3
    torch.save(raw, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"bad spec: .*cf 3 does not divide its 16"):
        load_checkpoint(tmp_path / "bad.pt")


def test_convert_regroups_nested_binary_layers(tmp_path):
    src, out = tmp_path / "src.pt", tmp_path / "out.pt"
    assert main(["init", "digits_res", "--cf", "1", "-o", str(src)]) == 0
    assert main(["convert", str(src), "--cf", "4", "-o", str(out)]) == 0
    a, b = load_checkpoint(src), load_checkpoint(out)
    binary = [l for l in b.layers() if l["precision"] != "float"]
    assert len(binary) == 6 and {l["cf"] for l in binary} == {4}
    key = "layers.4.body.1.weight"  # b2_conv1
    w_old, w_new = a.state_dict[key], b.state_dict[key]
    assert torch.equal(torch.sign(w_old), torch.sign(w_new))
    alpha4 = group_scales(w_new, 4)
    assert torch.allclose(alpha4, group_scales(w_old, 1).reshape(-1, 4).mean(1))
    assert torch.equal(a.state_dict["layers.4.shortcut.0.weight"],  # float: untouched
                       b.state_dict["layers.4.shortcut.0.weight"])


# ----------------------------------------------------------------------------- training

def _train(tmp_path, out, **kw):
    from generator.model.train import TrainConfig, train

    cfg = TrainConfig(arch="digits_res", cf=4, data="digits", output=str(tmp_path / out),
                      mode="xnor", progress=False, **kw)
    return train(cfg, log=lambda msg: None)


def test_digits_res_trains_quickly_and_fine_tunes(tmp_path):
    res = _train(tmp_path, "r.pt", epochs=4)
    assert res.complete and res.accuracy["digits"] >= 0.90, res.accuracy  # 0.953 measured
    # --from: a residual checkpoint fine-tunes at another n and mode (nested layers re-grouped)
    from generator.model.train import TrainConfig, train

    cfg = TrainConfig(arch="digits_res", cf=2, data="digits", output=str(tmp_path / "ft.pt"),
                      mode="bw", epochs=1, from_ckpt=str(tmp_path / "r.pt"), progress=False)
    ft = train(cfg, log=lambda msg: None)
    ckpt = load_checkpoint(ft.output)
    by = {l["name"]: l for l in ckpt.layers()}
    assert (by["b2_conv2"]["precision"], by["b2_conv2"]["cf"]) == ("bw", 2)
    assert by["b2_down"]["precision"] == "float"
    assert ckpt.meta["from_cf"] == [4]


def test_from_refuses_a_different_block(tmp_path):
    from generator.model.train import TrainConfig, build_model

    spec = json.loads((REPO / "generator/model/zoo/digits_res.json").read_text())
    src = tmp_path / "src.pt"
    assert main(["init", "digits_res", "--cf", "4", "-o", str(src)]) == 0
    spec["layers"][3]["body"].pop(3)  # b1 without its inner ReLU
    (tmp_path / "digits_res.json").write_text(json.dumps(spec))
    cfg = TrainConfig(arch=str(tmp_path / "digits_res.json"), cf=4, data="digits",
                      output=str(tmp_path / "o.pt"), from_ckpt=str(src))
    with pytest.raises(CheckpointError, match=r"block b1 has 7 body layers, the spec's b1 6"):
        build_model(cfg)
    spec = json.loads((REPO / "generator/model/zoo/digits_res.json").read_text())
    spec["layers"][4]["shortcut"][0]["kernel"] = 3
    spec["layers"][4]["shortcut"][0]["padding"] = 1
    (tmp_path / "digits_res.json").write_text(json.dumps(spec))
    with pytest.raises(CheckpointError, match=r"layer b2_down differs from the spec's b2_down "
                                              r"in kernel \(1 vs 3\)"):
        build_model(cfg)


@pytest.mark.slow
def test_digits_res_default_schedule_reaches_95_percent(tmp_path):
    res = _train(tmp_path, "full.pt")  # 15 epochs, one thread: 0.9889 in ~7 s measured
    assert res.accuracy["digits"] >= 0.95, res.accuracy


# ----------------------------------------------------------------------------- zoo

@pytest.mark.parametrize("arch,cf,classes,params,binary", [
    ("digits_res", 4, 10, 151_818, 6),
    ("resnet20_bin", 4, 10, 273_722, 18),
    ("resnet18", 16, 1000, 11_696_296, 16),
])
def test_residual_zoo_init(arch, cf, classes, params, binary):
    model = init_model(arch, cf, calib_batches=1, batch=2)
    assert sum(p.numel() for p in model.parameters()) == params
    layers = [l for l in S.walk(model.spec) if l["type"] in ("conv", "linear")]
    assert [l["name"] for l in layers if l["precision"] == "float"][0] == "conv1"
    assert layers[-1]["name"] == "fc" and layers[-1]["precision"] == "float"
    assert sum(l["precision"] == "xnor" for l in layers) == binary
    assert all(l["cf"] == cf for l in layers if l["precision"] != "float")
    for key, layer in S.walk_keys(model.spec):  # shortcuts: float 1x1 convs only
        if S.in_shortcut(key) and layer["type"] == "conv":
            assert (layer["precision"], layer["kernel"]) == ("float", 1)
    c, h, w = S.shapes(model.spec)[0]
    with torch.no_grad():
        assert model(torch.rand(1, c, h, w)).shape == (1, classes)


def test_resnet_stage_shapes():
    r18 = S.shapes(S.load_spec("resnet18"))
    assert r18[:5] == [(3, 224, 224), (64, 112, 112), (64, 112, 112), (64, 112, 112), (64, 56, 56)]
    assert r18[-4:] == [(512, 7, 7), (512, 1, 1), (512,), (1000,)]
    r20 = S.validate(S.load_spec("resnet20_bin"))
    by = dict(zip(["input"] + [l["name"] for l in r20["layers"]], S.shapes(r20)))
    assert by["s1b3"] == (16, 32, 32) and by["s2b1"] == (32, 16, 16) and by["s3b3"] == (64, 8, 8)


# ----------------------------------------------------------------------------- refusals

def test_lower_and_export_refuse_residual_blocks():
    """The lowering takes residual blocks (tests/test_residual_lower.py) but not a body
    without a binary conv; QONNX export refuses residual blocks."""
    from generator.hw.lower import lower
    from generator.model.qonnx_io import QonnxError, export_model

    ckpt = Checkpoint(S.resolve(TINY, 4), CFNet(S.resolve(TINY, 4)).state_dict())
    with pytest.raises(LoweringError) as info:
        lower(ckpt)
    assert str(info.value) == "layer b3: a residual body needs a binary conv"
    with pytest.raises(QonnxError, match=r"^layer b1: QONNX export of residual blocks is not "
                                         r"supported yet$"):
        export_model(ckpt)


def test_export_refuses_a_residual_checkpoint(tmp_path):
    """(`build` of residual checkpoints: tests/test_residual_build.py.)"""
    pt = tmp_path / "res.pt"
    assert main(["init", "digits_res", "--cf", "4", "-o", str(pt)]) == 0
    onnx = tmp_path / "res.onnx"
    assert main(["export", str(pt), "-o", str(onnx)]) == 2
    assert not onnx.exists()
