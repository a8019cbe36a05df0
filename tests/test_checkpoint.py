"""Checkpoint format (generator/model/checkpoint.py): round trip, weights_only loading, refusals."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from generator.model import checkpoint as C
from generator.cli import main
from generator.commands.init import init_model
from generator.core.errors import CheckpointError

REPO = Path(__file__).resolve().parent.parent


class Gadget:  # a custom class: must never be unpickled from a checkpoint
    def __init__(self):
        self.x = 1


def _payload(model, **over):
    p = {"format": C.FORMAT, "version": C.VERSION, "spec": model.spec,
         "layers": [], "state_dict": model.state_dict(), "meta": {}, "accuracy": {}}
    p.update(over)
    return p


@pytest.fixture(scope="module")
def digits_model():
    return init_model("digits", 2, seed=3)


@pytest.fixture(scope="module")
def good_file(tmp_path_factory, digits_model):
    path = tmp_path_factory.mktemp("ckpt") / "good.pt"
    C.save_checkpoint(path, digits_model, meta={"epochs": 3, "note": "x"},
                      accuracy={"digits": 0.5})
    return path


def test_round_trip(good_file, digits_model):
    ck = C.load_checkpoint(good_file)
    assert ck.spec == digits_model.spec
    assert ck.accuracy == {"digits": 0.5}
    assert ck.meta["epochs"] == 3 and ck.meta["note"] == "x" and "saved" in ck.meta
    assert ck.path == str(good_file)
    model = ck.model()
    assert not model.training
    for (k, a), (k2, b) in zip(digits_model.state_dict().items(), model.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    assert [l["cf"] for l in ck.layers()] == [None, 2, 2, None]
    raw = torch.load(good_file, weights_only=True)
    assert raw["format"] == "cfgen-checkpoint" and raw["version"] == 1
    assert raw["layers"] == ck.layers()


def test_init_nin_cf16_loads_weights_only_and_forward_is_exact(tmp_path, monkeypatch):
    import generator.commands.init as init_cmd

    made = []
    real = init_cmd.init_model
    monkeypatch.setattr(init_cmd, "init_model", lambda *a, **k: made.append(real(*a, **k)) or made[-1])
    out = tmp_path / "nin16.pt"
    assert main(["init", "nin", "--cf", "16", "--calib-batches", "1", "-o", str(out)]) == 0
    raw = torch.load(out, map_location="cpu", weights_only=True)  # no custom classes inside
    assert raw["spec"]["name"] == "nin"
    assert {l["cf"] for l in raw["layers"] if l["precision"] != "float"} == {16}
    original = made[0].eval()  # the module the command saved
    loaded = C.load_checkpoint(out).model()
    x = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (4, 3, 32, 32),
                                                             dtype=np.uint8)).float() / 255
    with torch.no_grad():
        a, b = original(x), loaded(x)
    assert torch.equal(a, b)
    assert a.std() > 0  # a calibrated, non-degenerate network


def _write_bad(kind, path: Path, model, good_file: Path):
    if kind == "corrupt":
        data = bytearray(good_file.read_bytes())
        mid = len(data) // 2
        data[mid:mid + 4096] = os.urandom(4096)
        path.write_bytes(bytes(data))
    elif kind == "random-bytes":
        path.write_bytes(os.urandom(5000))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(good_file.read_bytes()[: good_file.stat().st_size // 2])
    elif kind == "foreign-tensor":
        torch.save(torch.zeros(3), path)
    elif kind == "foreign-dict":
        torch.save({"state_dict": model.state_dict(), "epoch": 3}, path)
    elif kind == "pickled-class":
        torch.save(_payload(model, meta={"gadget": Gadget()}), path)
    elif kind == "pickled-function":
        torch.save(_payload(model, meta={"hook": os.system}), path)
    elif kind == "wrong-version":
        torch.save(_payload(model, version=99), path)
    elif kind == "missing-tensor":
        sd = dict(model.state_dict())
        sd.pop("layers.4.weight")
        torch.save(_payload(model, state_dict=sd), path)
    elif kind == "wrong-shape":
        sd = dict(model.state_dict())
        sd["layers.4.weight"] = torch.zeros(64, 32, 5, 5)
        torch.save(_payload(model, state_dict=sd), path)
    elif kind == "bad-spec":
        spec = dict(model.spec)
        spec["layers"] = [dict(l) for l in spec["layers"]]
        spec["layers"][4]["cf"] = 3
        torch.save(_payload(model, spec=spec), path)
    elif kind == "unresolved-spec":
        spec = {k: v for k, v in model.spec.items() if k != "resolved"}
        torch.save(_payload(model, spec=spec), path)
    else:
        raise AssertionError(kind)


BAD = {
    "corrupt": r"corrupt checkpoint \(CRC mismatch in",
    "random-bytes": r"not a torch checkpoint",
    "empty": r"not a torch checkpoint",
    "truncated": r"not a torch checkpoint \(corrupt, truncated or foreign file\)",
    "foreign-tensor": r"not a cfgen checkpoint",
    "foreign-dict": r"not a cfgen checkpoint",
    "pickled-class": r"refused to unpickle: it references .*Gadget",
    "pickled-function": r"refused to unpickle: it references .*system",
    "wrong-version": r"format version 99 is not supported",
    "missing-tensor": r"state_dict: missing tensor layers\.4\.weight",
    "wrong-shape": r"state_dict: layers\.4\.weight has shape \(64, 32, 5, 5\), the spec needs",
    "bad-spec": r"bad spec: .*does not divide",
    "unresolved-spec": r"bad spec: spec is not resolved",
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_files_are_refused_with_one_line(kind, tmp_path, digits_model, good_file, capsys):
    path = tmp_path / f"{kind}.pt"
    _write_bad(kind, path, digits_model, good_file)
    with pytest.raises(CheckpointError, match=BAD[kind]) as info:
        C.load_checkpoint(path)
    msg = str(info.value)
    assert msg.startswith(str(path)) and "\n" not in msg
    # the CLI: exit 2, exactly one line on stderr
    capsys.readouterr()
    assert main(["eval", str(path), "--data", "digits"]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.count("\n") == 1 and out.err.startswith(f"error: {path}")


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        C.load_checkpoint(tmp_path / "nope.pt")


@pytest.mark.parametrize("kind,command", [("truncated", "eval"), ("pickled-class", "convert"),
                                          ("wrong-version", "eval")])
def test_cli_refusal_in_a_fresh_process(kind, command, tmp_path, digits_model, good_file):
    """`python -m generator`: exit 2, one stderr line, no traceback, nothing unpickled."""
    path = tmp_path / f"{kind}.pt"
    _write_bad(kind, path, digits_model, good_file)
    argv = {"eval": ["eval", str(path), "--data", "digits"],
            "convert": ["convert", str(path), "--cf", "4", "-o", str(tmp_path / "o.pt")]}[command]
    res = subprocess.run([sys.executable, "-m", "generator", *argv], cwd=REPO,
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert res.returncode == 2, res.stderr
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}"), res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "o.pt").exists()


def test_save_is_atomic_and_overwrites(tmp_path, digits_model):
    path = tmp_path / "sub" / "m.pt"
    C.save_checkpoint(path, digits_model, accuracy={"digits": 0.1})
    C.save_checkpoint(path, digits_model, accuracy={"digits": 0.2})
    assert C.load_checkpoint(path).accuracy == {"digits": 0.2}
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.pt"]  # no temp files left
