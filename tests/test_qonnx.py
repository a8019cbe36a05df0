"""QONNX in and out (generator/model/qonnx_io.py, issue 16).

- A Brevitas model with FINN-style binary quantizers and CF-4 grouped per-channel scales,
  trained a few epochs on digits, exported to QONNX and imported: QONNX execution, the imported
  float model and the golden model agree; the layer-wise check stays within the documented
  rounding; the build's C simulation of the .onnx file is bit exact.
- cfgen's zoo digits and nin export to QONNX; execute_onnx equals the float model; import of
  the export gives back the same tensors.
- Malformed / unsupported files: one error line, exit 2, nothing written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from generator.hw import golden
from generator.cli import main
from generator.commands.init import init_model
from generator.hw.compare import agreement, layerwise
from generator.model.data import load_dataset
from generator.core.errors import CfgenError
from generator.hw.lower import lower
from generator.model.qonnx_io import QonnxError, export_model, export_onnx, import_onnx

REPO = Path(__file__).resolve().parent.parent
CF = 4
EPOCHS = 8


# --------------------------------------------------------------------------- helpers

def qonnx_run(path, images_uint8: np.ndarray) -> np.ndarray:
    """execute_onnx on a whole batch (the file's batch dimension changed to len(images))."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes

    m = ModelWrapper(str(path)).transform(ChangeBatchSize(len(images_uint8)))
    m = m.transform(InferShapes())
    x = images_uint8.astype(np.float32) / np.float32(255.0)
    return execute_onnx(m, {m.graph.input[0].name: x})[m.graph.output[0].name]


def float_logits(model, images_uint8) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(images_uint8).float() / 255).numpy()


def assert_same_checkpoint(a, b):
    assert a.spec == b.spec
    assert list(a.state_dict) == list(b.state_dict)
    for k, v in a.state_dict.items():
        w = b.state_dict[k]
        assert v.dtype == w.dtype and v.shape == w.shape and torch.equal(v, w), k


# --------------------------------------------------------------------------- Brevitas model

def brevitas_model(cf: int):
    import torch.nn as nn
    import brevitas.nn as qnn
    from brevitas.core.function_wrapper import TensorClamp
    from brevitas.core.scaling import ScalingImplType
    from brevitas.quant import (Int8WeightPerTensorFloat, SignedBinaryActPerTensorConst,
                                SignedBinaryWeightPerTensorConst, Uint8ActPerTensorFloat)

    class GroupMeanAbs(nn.Module):
        """CF-n scale: mean |W| over n consecutive filters, repeated per filter."""

        def __init__(self, cf_n):
            super().__init__()
            self.n = cf_n

        def forward(self, w):
            o = w.shape[0]
            a = w.abs().reshape(o // self.n, -1).mean(dim=1)
            return a.repeat_interleave(self.n).reshape(o, *([1] * (w.dim() - 1)))

    class CFBinaryWeight(SignedBinaryWeightPerTensorConst):
        scaling_impl = GroupMeanAbs
        tensor_clamp_impl = TensorClamp        # not in place: the scale stays deterministic
        cf_n = cf

    class PixelQuant(Uint8ActPerTensorFloat):  # uint8, scale 1/255: pixels / 255 exactly
        scaling_impl_type = ScalingImplType.CONST
        scaling_init = 1.0

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.q0 = qnn.QuantIdentity(act_quant=PixelQuant)
            # FINN CNV style first layer: 8-bit pixels, +-1 weights
            self.c1 = qnn.QuantConv2d(1, 32, 3, padding=1, bias=False,
                                      weight_quant=SignedBinaryWeightPerTensorConst)
            self.b1 = nn.BatchNorm2d(32)
            self.a1 = qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst)
            self.p1 = nn.ConstantPad2d(1, -1.0)  # binary activations pad with -1 (one bit)
            self.c2 = qnn.QuantConv2d(32, 64, 3, bias=False, weight_quant=CFBinaryWeight)
            self.b2 = nn.BatchNorm2d(64)
            self.a2 = qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst)
            self.mp = nn.MaxPool2d(2)
            self.p2 = nn.ConstantPad2d(1, -1.0)
            self.c3 = qnn.QuantConv2d(64, 64, 3, bias=False, weight_quant=CFBinaryWeight)
            self.b3 = nn.BatchNorm2d(64)
            self.r3 = nn.ReLU()
            self.c4 = qnn.QuantConv2d(64, 10, 1, bias=True, weight_quant=Int8WeightPerTensorFloat)
            self.gp = nn.AdaptiveAvgPool2d(1)
            self.fl = nn.Flatten()

        def forward(self, x):
            x = self.a1(self.b1(self.c1(self.q0(x))))
            x = self.mp(self.a2(self.b2(self.c2(self.p1(x)))))
            x = self.r3(self.b3(self.c3(self.p2(x))))
            return self.fl(self.gp(self.c4(x)))

    return Net()


@pytest.fixture(scope="module")
def digits_data():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def brevitas_digits(tmp_path_factory, digits_data):
    """Train (one CPU thread, seeded), export with brevitas.export_qonnx, qonnx cleanup."""
    from brevitas.export import export_qonnx
    from qonnx.util.cleanup import cleanup

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        net = brevitas_model(CF)
        ds = digits_data
        x = torch.from_numpy(ds.train.images).float() / 255
        y = torch.from_numpy(ds.train.labels)
        steps = -(-len(x) // 64)
        opt = torch.optim.Adam(net.parameters(), lr=0.01)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, 0.01, total_steps=EPOCHS * steps)
        for _ in range(EPOCHS):
            net.train()
            perm = torch.randperm(len(x))
            for i in range(0, len(x), 64):
                idx = perm[i:i + 64]
                loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        net.eval()
        folder = tmp_path_factory.mktemp("brevitas")
        raw, clean = folder / "raw.onnx", folder / "bnn_digits.onnx"
        export_qonnx(net, x[:1], str(raw), dynamo=False)
        cleanup(str(raw), out_file=str(clean))
        test_logits = float_logits(net, ds.test.images)
    finally:
        torch.set_num_threads(threads)
    return {"net": net, "raw": raw, "onnx": clean, "logits": test_logits}


def test_brevitas_digits_import_agrees_with_qonnx_and_golden(brevitas_digits, digits_data):
    res = import_onnx(brevitas_digits["onnx"])
    ckpt, notes = res.checkpoint, res.notes
    layers = ckpt.layers()
    assert [l["precision"] for l in layers] == ["float", "xnor", "xnor", "float"]
    assert [l["cf"] for l in layers] == [None, CF, CF, None]
    assert sum("CF-4 inferred (runs of 4 equal per-channel scales" in n for n in notes) == 2
    assert any("binary-weight first layer" in n for n in notes)
    spec = ckpt.spec["layers"]
    assert [l["type"] for l in spec] == ["conv", "batchnorm", "conv", "batchnorm", "maxpool",
                                         "conv", "batchnorm", "relu", "conv", "avgpool",
                                         "flatten"]
    assert spec[2]["pad_value"] == -1 and spec[2]["padding"] == 1
    # first layer: +-1 weights (times the constant scale 0.1); binary layers keep the latent
    # weights, because their scales are cfgen's alpha_g = mean|W| of the group exactly
    w1 = ckpt.state_dict["layers.0.weight"]
    assert torch.unique(w1.abs()).numel() == 1
    net = brevitas_digits["net"]
    assert torch.equal(ckpt.state_dict["layers.2.weight"], net.c2.weight.detach())
    assert torch.equal(ckpt.state_dict["layers.5.weight"], net.c3.weight.detach())

    images, labels = digits_data.test.images, digits_data.test.labels
    model = ckpt.model()
    q = qonnx_run(brevitas_digits["onnx"], images)
    f = float_logits(model, images)
    graph = lower(ckpt)
    g = golden.predict(graph, images.transpose(0, 2, 3, 1).copy())
    b = brevitas_digits["logits"]
    acc = float((f.argmax(1) == labels).mean())
    figures = {"float_acc": acc,
               "qonnx_vs_float": float((q.argmax(1) == f.argmax(1)).mean()),
               "qonnx_vs_golden": float((q.argmax(1) == g).mean()),
               "float_vs_golden": float((f.argmax(1) == g).mean()),
               "brevitas_vs_qonnx": float((b.argmax(1) == q.argmax(1)).mean()),
               "max_abs_qonnx_float": float(np.abs(q - f).max())}
    print(json.dumps(figures))
    assert acc >= 0.85, figures             # a trained model, so agreement means something
    for key in ("qonnx_vs_float", "qonnx_vs_golden", "float_vs_golden", "brevitas_vs_qonnx"):
        assert figures[key] >= 0.995, figures
    assert figures["max_abs_qonnx_float"] < 1e-4, figures
    assert agreement(graph, model, images, labels)["agreement"] >= 0.995
    for entry in layerwise(graph, model, images):
        if "mismatches" in entry:
            assert entry["unexplained"] == 0, entry
        else:
            assert entry["beyond_bound"] == 0, entry


def test_brevitas_raw_export_asks_for_cleanup(brevitas_digits, tmp_path, capsys):
    out = tmp_path / "x.pt"
    assert main(["import", str(brevitas_digits["raw"]), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "qonnx-cleanup" in err and "(Pad)" in err
    assert not out.exists()


def test_brevitas_digits_onnx_builds_and_csim_is_bit_exact(brevitas_digits, tmp_path):
    """`import` writes a checkpoint; `build MODEL.onnx` works directly; csim bit exact."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def cli(*args, module="generator"):
        r = subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=REPO,
                           capture_output=True, text=True, timeout=900, env=env)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        return r

    pt = tmp_path / "imported.pt"
    r = cli("import", brevitas_digits["onnx"], "-o", pt)
    assert "CF-4 inferred" in r.stdout and r.stdout.rstrip().splitlines()[-1].startswith("wrote")
    out = tmp_path / "build"
    cli("build", brevitas_digits["onnx"], "--board", "pynq-z2", "-o", out, "--data", "digits",
        "--frames", 32)
    r = cli(out, "--frames", 32, "--werror", module="generator.flows.csim")
    assert "BIT EXACT" in r.stdout
    res = json.loads((out / "csim" / "results.json").read_text())
    assert res["bit_exact"] and res["frames"] == 32 and not any(res["mismatches"].values())
    meta = json.loads((out / "vectors" / "meta.json").read_text())
    assert meta["golden_acc"] >= 0.8


# --------------------------------------------------------------------------- cfgen's zoo

@pytest.mark.parametrize("arch,cf,frames", [("digits", 4, 16), ("nin", 16, 2)])
def test_zoo_export_runs_in_qonnx_and_imports_to_the_same_tensors(arch, cf, frames, tmp_path,
                                                                  capsys):
    model = init_model(arch, cf, seed=1, calib_batches=1)
    from generator.model.checkpoint import load_checkpoint, save_checkpoint

    pt, onnx_path, back = tmp_path / "m.pt", tmp_path / "m.onnx", tmp_path / "back.pt"
    save_checkpoint(pt, model, meta={"kind": "init"})
    assert main(["export", str(pt), "-o", str(onnx_path)]) == 0
    assert "as QONNX" in capsys.readouterr().out
    import onnx
    proto = onnx.load(str(onnx_path))
    meta = {p.key: p.value for p in proto.metadata_props}
    cfs = json.loads(meta["cfgen.cf"])
    binary = [l["name"] for l in model.spec["layers"] if l["type"] == "conv"
              and l["precision"] == "xnor"]
    assert cfs == {name: cf for name in binary}
    assert sum(n.op_type == "BipolarQuant" for n in proto.graph.node) == 2 * len(binary)

    rng = np.random.default_rng(7)
    c, h, w = (model.spec["input"][k] for k in ("channels", "height", "width"))
    images = rng.integers(0, 256, (frames, c, h, w), dtype=np.uint8)
    q = qonnx_run(onnx_path, images)
    f = float_logits(model.eval(), images)
    assert np.abs(q - f).max() <= 1e-5, np.abs(q - f).max()

    assert main(["import", str(onnx_path), "-o", str(back)]) == 0
    out = capsys.readouterr().out
    assert f"CF-{cf} from the metadata" in out
    assert_same_checkpoint(load_checkpoint(pt), load_checkpoint(back))


def test_metadata_that_does_not_fit_the_graph_is_ignored(tmp_path):
    model = init_model("digits", 4, seed=2, calib_batches=1)
    from generator.model.checkpoint import Checkpoint

    ckpt = Checkpoint(model.spec, model.state_dict())
    proto = export_model(ckpt)
    for p in proto.metadata_props:
        if p.key == "cfgen.spec":
            spec = json.loads(p.value)
            spec["layers"][4]["out"] = 32           # conv2 claims 32 filters
            p.value = json.dumps(spec)
        if p.key == "cfgen.cf":
            p.value = json.dumps({"conv2": 3, "conv3": 8})
    path = tmp_path / "edited.onnx"
    path.write_bytes(proto.SerializeToString())
    res = import_onnx(path)
    assert any("metadata cfgen.spec ignored" in n for n in res.notes)
    assert any("conv2: metadata CF n 3 does not fit" in n for n in res.notes)
    cfs = [l["cf"] for l in res.checkpoint.layers() if l["precision"] != "float"]
    assert cfs == [4, 4]                              # inferred from the scales
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(res.checkpoint.model()(x), model.eval()(x), atol=1e-6)


# --------------------------------------------------------------------------- refusals

@pytest.fixture(scope="module")
def digits_proto():
    model = init_model("digits", 4, seed=3, calib_batches=1)
    from generator.model.checkpoint import Checkpoint

    return export_model(Checkpoint(model.spec, model.state_dict()))


def _node(proto, name):
    return next(n for n in proto.graph.node if n.name == name)


def _init(proto, name):
    return next(t for t in proto.graph.initializer if t.name == name)


def _set_init(proto, name, array):
    from onnx import numpy_helper

    _init(proto, name).CopyFrom(numpy_helper.from_array(np.asarray(array), name))


def _make_bad(kind: str, proto, path: Path) -> None:
    import onnx
    from onnx import helper, numpy_helper

    p = onnx.ModelProto()
    p.CopyFrom(proto)
    good = p.SerializeToString()
    if kind == "truncated":
        path.write_bytes(good[: len(good) // 2])
        return
    if kind == "random-bytes":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, np.uint8).tobytes())
        return
    if kind == "text-file":
        path.write_text("conv1 = Conv(3, 32)\n")
        return
    if kind == "empty":
        path.write_bytes(b"")
        return
    if kind == "torch-checkpoint":
        torch.save({"state_dict": {}}, path)
        return
    if kind == "unknown-op":
        _node(p, "relu2").op_type = "FancyOp"
    elif kind == "custom-domain":
        _node(p, "relu2").domain = "com.example"
    elif kind == "dynamic-shape":
        d = p.graph.input[0].type.tensor_type.shape.dim[2]
        d.ClearField("dim_value")
        d.dim_param = "H"
    elif kind == "3-bit-activation":
        act = _node(p, "conv2_act")
        act.op_type = "Quant"
        del act.input[1:]
        for name, v in (("q3_scale", 0.25), ("q3_zp", 0.0), ("q3_bits", 3.0)):
            p.graph.initializer.append(numpy_helper.from_array(np.array(v, np.float32), name))
            act.input.append(name)
        act.attribute.extend([helper.make_attribute("signed", 1),
                              helper.make_attribute("narrow", 0)])
    elif kind == "1-bit-quant-weight":
        wq = _node(p, "conv2_weight_quant")
        wq.op_type = "Quant"
        for name, v in (("w1_zp", 0.0), ("w1_bits", 1.0)):
            p.graph.initializer.append(numpy_helper.from_array(np.array(v, np.float32), name))
            wq.input.append(name)
    elif kind == "zero-scale":
        _set_init(p, "conv2_scale", np.zeros((64, 1, 1, 1), np.float32))
    elif kind == "infinite-scale":
        s = numpy_helper.to_array(_init(p, "conv3_scale")).copy()
        s[5] = np.inf
        _set_init(p, "conv3_scale", s)
    elif kind == "nan-weight":
        w = numpy_helper.to_array(_init(p, "conv1_weight")).copy()
        w[0, 0, 0, 0] = np.nan
        _set_init(p, "conv1_weight", w)
    elif kind == "scale-inside-filter":
        _set_init(p, "conv2_scale", np.random.default_rng(1).uniform(0.1, 1, (64, 32, 1, 1))
                  .astype(np.float32))
    elif kind == "residual-add":
        relu = _node(p, "relu2")
        add = helper.make_node("Add", [relu.output[0], relu.output[0]], ["res_out"], name="res")
        for n in p.graph.node:
            n.input[:] = ["res_out" if i == relu.output[0] else i for i in n.input]
        p.graph.node.insert(list(p.graph.node).index(relu) + 1, add)
    elif kind == "branch":
        relu = _node(p, "relu2")
        p.graph.node.append(helper.make_node("Relu", [relu.output[0]], ["dangling"], name="side"))
    elif kind == "grouped-conv":
        for a in _node(p, "conv3").attribute:
            if a.name == "group":
                a.i = 2
    elif kind == "external-data":
        t = _init(p, "conv4_weight")
        t.ClearField("raw_data")
        t.ClearField("float_data")
        t.data_location = onnx.TensorProto.EXTERNAL
        t.external_data.add(key="location", value="../../../etc/passwd")
    elif kind == "negative-variance":
        _set_init(p, "bn2_var", -np.ones(32, np.float32))
    elif kind == "pad-value":
        _set_init(p, "conv2_pad_value", np.array(0.5, np.float32))
    elif kind == "declared-shape":
        vi = next(v for v in p.graph.value_info if v.name == "relu2_out")
        vi.type.tensor_type.shape.dim[1].dim_value = 31
    elif kind == "two-inputs":
        p.graph.input.append(helper.make_tensor_value_info("extra", onnx.TensorProto.FLOAT,
                                                           [1, 2]))
    else:
        raise AssertionError(kind)
    path.write_bytes(p.SerializeToString())


BAD = {
    "truncated": "not an ONNX model",
    "random-bytes": "not an ONNX model",
    "text-file": "not an ONNX model",
    "empty": "empty file",
    "torch-checkpoint": "not an ONNX model",
    "unknown-op": "node relu2 (FancyOp): operator not in the supported subset",
    "custom-domain": "node relu2 (Relu): operator domain 'com.example'",
    "dynamic-shape": "dynamic shape (dimension H is 'H')",
    "3-bit-activation": "node conv2_act (Quant): a 3-bit activation quantizer",
    "1-bit-quant-weight": "node conv2_weight_quant (Quant): a 1-bit Quant of weights",
    "zero-scale": "node conv2_weight_quant (BipolarQuant): scale is zero",
    "infinite-scale": "node conv3_weight_quant (BipolarQuant): scale holds non-finite",
    "nan-weight": "holds non-finite values",
    "scale-inside-filter": "node conv2 (Conv): the weight scale varies inside a filter",
    "residual-add": "node res (Add): an Add of two activations (a residual connection)",
    "branch": "feeds 2 nodes",
    "grouped-conv": "node conv3 (Conv): grouped / depthwise convolution",
    "external-data": "stored as external data",
    "negative-variance": "node bn2 (BatchNormalization): negative variance",
    "pad-value": "node conv2_pad (Pad): pads binarized values with 0.5",
    "declared-shape": "node relu2 (Relu): its output is declared 1x31x8x8",
    "two-inputs": "the graph has 2 data inputs",
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_onnx_files_give_one_line_and_write_nothing(kind, digits_proto, tmp_path, capsys):
    bad = tmp_path / f"{kind}.onnx"
    _make_bad(kind, digits_proto, bad)
    before = sorted(p.name for p in tmp_path.iterdir())
    out = tmp_path / "out.pt"
    with pytest.raises(QonnxError) as info:
        import_onnx(bad)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(str(bad)) and BAD[kind] in msg, msg
    capsys.readouterr()
    assert main(["import", str(bad), "-o", str(out)]) == 2
    res = capsys.readouterr()
    assert res.out == "" and res.err.count("\n") == 1, res.err
    assert res.err.startswith(f"error: {bad}") and "Traceback" not in res.err
    assert sorted(p.name for p in tmp_path.iterdir()) == before        # nothing written
    # build reads .onnx directly and refuses the same way, leaving no build folder
    assert main(["build", str(bad), "--board", "pynq-z2", "-o", str(tmp_path / "b")]) == 2
    assert BAD[kind] in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("kind", ["truncated", "3-bit-activation"])
def test_refusal_in_a_fresh_process(kind, digits_proto, tmp_path):
    bad = tmp_path / f"{kind}.onnx"
    _make_bad(kind, digits_proto, bad)
    r = subprocess.run([sys.executable, "-m", "generator", "import", str(bad), "-o",
                        str(tmp_path / "o.pt")], cwd=REPO, capture_output=True, text=True,
                       timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {bad}") and BAD[kind] in lines[0]
    assert not (tmp_path / "o.pt").exists()


def test_missing_file_folder_and_bad_outputs(digits_proto, tmp_path, capsys):
    assert main(["import", str(tmp_path / "nope.onnx"), "-o", str(tmp_path / "o.pt")]) == 2
    assert "no such ONNX file" in capsys.readouterr().err
    (tmp_path / "dir.onnx").mkdir()
    assert main(["import", str(tmp_path / "dir.onnx"), "-o", str(tmp_path / "o.pt")]) == 2
    assert "is a folder" in capsys.readouterr().err
    good = tmp_path / "good.onnx"
    good.write_bytes(digits_proto.SerializeToString())
    notes = tmp_path / "notes.pt"
    notes.write_text("my notes")
    assert main(["import", str(good), "-o", str(notes)]) == 2      # never overwrite a non-checkpoint
    assert "refusing to overwrite" in capsys.readouterr().err and notes.read_text() == "my notes"
    pt = tmp_path / "m.pt"
    assert main(["import", str(good), "-o", str(pt)]) == 0
    capsys.readouterr()
    assert main(["export", str(pt), "-o", str(notes)]) == 2         # .onnx only
    assert "must end in .onnx" in capsys.readouterr().err
    text = tmp_path / "notes.onnx"
    text.write_text("not onnx")
    assert main(["export", str(pt), "-o", str(text)]) == 2
    assert "is not an ONNX file; refusing" in capsys.readouterr().err
    assert text.read_text() == "not onnx"


def test_layer_names_from_onnx_are_mapped_to_identifiers(digits_proto, tmp_path):
    import onnx

    p = onnx.ModelProto()
    p.CopyFrom(digits_proto)
    del p.metadata_props[:]                   # no cfgen spec: names come from the nodes
    names = {"conv1": "/features/0/Conv", "conv2": "0bad name;rm -rf", "bn2": "$(x)`y`",
             "relu2": "relu2", "conv3": "/features/0/Conv"}
    for n in p.graph.node:
        if n.name in names:
            n.name = names[n.name]
    path = tmp_path / "names.onnx"
    path.write_bytes(p.SerializeToString())
    ckpt = import_onnx(path).checkpoint
    got = [l["name"] for l in ckpt.spec["layers"]]
    assert got[0] == "features_0_Conv" and "features_0_Conv_2" in got
    assert "n0bad_name_rm_rf" in got and "x_y" in got
    from generator.core.names import IDENT_RE
    assert all(IDENT_RE.fullmatch(n) for n in got) and len(set(got)) == len(got)


def test_cli_start_does_not_import_onnx_and_missing_packages_are_one_line(monkeypatch):
    code = ("import sys; from generator.cli import make_parser; make_parser(); "
            "bad = [m for m in ('onnx', 'qonnx', 'brevitas') if m in sys.modules]; "
            "sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stderr
    import generator.model.qonnx_io as q

    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(CfgenError, match=r"needs the Python packages onnx==1\.23\.2"):
        q._onnx()


# --------------------------------------------------------------------------- Brevitas facts

def test_brevitas_quantizer_facts():
    """The facts docs/BREVITAS.md states, measured with brevitas 0.13.4."""
    import brevitas.nn as qnn
    from brevitas.quant import SignedBinaryWeightPerTensorConst

    torch.manual_seed(0)
    x = torch.randn(2, 4, 5, 5)
    # QuantHardTanh(bit_width=1) computes {-1, 0} (times its scale) in PyTorch
    act = qnn.QuantHardTanh(bit_width=1, max_val=1.0, min_val=-1.0).eval()
    with torch.no_grad():
        values = torch.unique(act(x) / act.act_quant.scale())
    assert sorted(values.tolist()) == [-1.0, 0.0]
    # QuantConv2d(weight_bit_width=1) with the default quantizer: an infinite scale
    conv = qnn.QuantConv2d(4, 8, 3, weight_bit_width=1)
    assert not torch.isfinite(conv.quant_weight().scale).all()
    # the tie rule at exactly 0: +1 in Brevitas, QONNX and cfgen
    from brevitas.quant import SignedBinaryActPerTensorConst
    from qonnx.custom_op.general.bipolar_quant import binary_quant

    from generator.model.quant import sign_ste

    z = torch.tensor([-0.5, 0.0, 0.5])
    sign = qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst).eval()
    with torch.no_grad():
        assert sign(z).tolist() == [-1.0, 1.0, 1.0]
    assert binary_quant(z.numpy(), np.float32(1.0)).tolist() == [-1.0, 1.0, 1.0]
    assert sign_ste(z).tolist() == [-1.0, 1.0, 1.0]
    # SignedBinaryWeightPerTensorConst clamps the latent weights in place to +-0.1
    conv = qnn.QuantConv2d(4, 8, 3, bias=False, weight_quant=SignedBinaryWeightPerTensorConst)
    with torch.no_grad():
        conv.weight.mul_(10)
    conv.quant_weight()
    assert float(conv.weight.abs().max()) <= 0.1 + 1e-7
