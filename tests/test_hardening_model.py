"""Issue 11, model side: bad input to init / train / eval / convert and to the checkpoint and
training-state loaders is one `error: ...` line on stderr and a non-zero exit, never a
traceback, a hang, a silent success or a half-written output.

Every case runs the CLI (in process through generator.cli.main, a few in a subprocess) and
checks: exit code != 0, exactly one stderr line starting with 'error: ', no traceback, and the
files under the test folder exactly as before (nothing added, nothing changed).
"""

from __future__ import annotations

import copy
import errno
import hashlib
import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.model import checkpoint as C
from generator.cli import main, make_parser
from generator.commands.init import init_model
from generator.core.errors import CheckpointError
from generator.model.train import TrainConfig, state_path, train

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


# ----------------------------------------------------------------------------- harness

def snapshot(root: Path) -> dict:
    """Every file and folder under root with a content hash (folders: None)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.join(dirpath, d)] = None
        for f in filenames:
            p = os.path.join(dirpath, f)
            if os.path.islink(p) or not os.path.isfile(p):
                out[p] = "special"
            else:
                out[p] = hashlib.sha1(Path(p).read_bytes()).hexdigest()
    return out


def run(argv, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def refused(argv, capsys, root: Path, match: str | None = None) -> str:
    """Run argv; assert the one-line refusal and an unchanged `root`. Returns the line."""
    before = snapshot(root)
    code, out, err = run(argv, capsys)
    assert isinstance(code, int) and code != 0, (argv, code, out, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), (argv, err)
    assert "Traceback" not in err and "usage:" not in err, err
    if match is not None:
        assert re.search(match, lines[0]), (argv, lines[0], match)
    assert snapshot(root) == before, argv
    return lines[0]


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def model():
    return init_model("digits", 2, seed=1, calib_batches=1)


@pytest.fixture(scope="module")
def good_ckpt(tmp_path_factory, model):
    path = tmp_path_factory.mktemp("good") / "good.pt"
    C.save_checkpoint(path, model, meta={"kind": "init"}, accuracy={"digits": 0.5})
    return path


def payload(model, **over) -> dict:
    p = {"format": C.FORMAT, "version": C.VERSION, "spec": copy.deepcopy(model.spec),
         "layers": [], "state_dict": {k: v.clone() for k, v in model.state_dict().items()},
         "meta": {}, "accuracy": {}}
    p.update(over)
    return p


def with_tensor(model, key, value) -> dict:
    p = payload(model)
    if value is _DROP:
        p["state_dict"].pop(key)
    else:
        p["state_dict"][key] = value
    return p


_DROP = object()


@pytest.fixture(scope="module")
def run_state(tmp_path_factory):
    """A digits run stopped after epoch 1 of 2: OUT and OUT.state (resumable)."""
    folder = tmp_path_factory.mktemp("run")
    out = folder / "run.pt"
    train(TrainConfig(arch="digits", cf=4, data="digits", output=str(out), epochs=2,
                      stop_after=1, progress=False), log=lambda msg: None)
    return out, torch.load(state_path(out), weights_only=True)


# ----------------------------------------------------------------------------- numeric options

INIT = ["init", "digits", "--cf", "2"]
TRAIN = ["train", "digits", "--cf", "4", "--data", "digits", "--quiet"]

NUMERIC = [
    (INIT, "--cf", ["0", "-1", "65537", "abc", "1.5", "", "1e3", "9" * 5000]),
    (INIT, "--calib-batches", ["-2", "0", "1001", "1000000", "two"]),
    (INIT, "--seed", ["-1", str(2**32), str(2**64 + 1), "nan", "0x10"]),
    (TRAIN, "--lr", ["nan", "inf", "-inf", "0", "-1", "1e3", "NaN", "x", "1" * 400]),
    (TRAIN, "--weight-decay", ["nan", "-1", "inf", "2", "-0.001"]),
    (TRAIN, "--epochs", ["0", "-3", str(10**9), "1.0"]),
    (TRAIN, "--batch-size", ["0", "-1", str(10**7)]),
    (TRAIN, "--stop-after", ["0", "-1", str(10**9)]),
    (TRAIN, "--threads", ["0", "-1", "100000"]),
    (TRAIN, "--milestones", ["0", "-1", "5,200000", ",".join(["1"] * 65), "a", "1;2"]),
    (TRAIN, "--seed", ["-1", str(2**64), str(2**32)]),
    (TRAIN, "--cf", ["0", "-4"]),
    (["eval", "CKPT", "--data", "digits"], "--limit", ["0", "-1", str(2**40), "x"]),
    (["convert", "CKPT", "-o", "OUT"], "--cf", ["0", "-5", "x", str(10**6)]),
]
NUMERIC_CASES = [(base, opt, v) for base, opt, values in NUMERIC for v in values]


@pytest.mark.parametrize("base,option,value", NUMERIC_CASES,
                         ids=[f"{b[0]}{o}={v[:12]}" for b, o, v in NUMERIC_CASES])
def test_numeric_option_out_of_range(base, option, value, tmp_path, good_ckpt, capsys):
    argv = [a.replace("CKPT", str(good_ckpt)).replace("OUT", str(tmp_path / "o.pt"))
            for a in base] + [f"{option}={value}"]
    if "-o" not in argv:
        argv += ["-o", str(tmp_path / "o.pt")]
    line = refused(argv, capsys, tmp_path, rf"argument {option}: ")
    assert len(line) < 300


@pytest.mark.parametrize("argv,match", [
    (TRAIN + ["--epochs", "3", "--milestones", "3"], r"--milestones 3 is not before --epochs 3"),
    (TRAIN + ["--epochs", "2", "--milestones", "1,7"], r"--milestones 7 is not before"),
])
def test_milestones_beyond_the_run(argv, match, tmp_path, capsys):
    refused(argv + ["-o", tmp_path / "m.pt"], capsys, tmp_path, match)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                        HealthCheck.function_scoped_fixture])
@given(value=st.one_of(st.text(max_size=30), st.integers(-2**70, 2**70).map(str),
                       st.floats(allow_nan=True, allow_infinity=True).map(repr)),
       option=st.sampled_from(["--lr", "--weight-decay", "--epochs", "--batch-size", "--seed",
                               "--threads", "--stop-after", "--cf", "--milestones"]))
def test_train_options_parse_into_range_or_refuse_in_one_line(value, option, capsys):
    """Property: any text either parses to a value inside the documented range, or the
    parser exits 2 with exactly one error line."""
    from generator.model.train import LIMITS

    capsys.readouterr()
    try:
        args = make_parser().parse_args(["train", "digits", "--cf", "4", "--data", "digits",
                                         "-o", "x.pt", f"{option}={value}"])
    except SystemExit as exc:
        err = capsys.readouterr().err
        assert exc.code == 2 and len(err.splitlines()) == 1 and err.startswith("error: "), err
        return
    v = getattr(args, option[2:].replace("-", "_"))
    if option == "--milestones":
        assert all(1 <= m <= LIMITS["epochs"] for m in v) and len(v) <= LIMITS["milestones"]
    elif option in ("--lr", "--weight-decay"):
        import math

        assert math.isfinite(v) and v >= 0 and (v > 0 or option == "--weight-decay")
        assert v <= LIMITS[option[2:].replace("-", "_")]
    else:
        key = {"--stop-after": "epochs"}.get(option, option[2:].replace("-", "_"))
        assert isinstance(v, int) and (0 if option == "--seed" else 1) <= v <= LIMITS[key]


def test_usage_errors_are_one_line(capsys, tmp_path):
    for argv in (["init"], ["nosuch"], [], ["train", "digits", "--cf", "2"],
                 ["eval", "x.pt", "--data", "mnist"], ["init", "digits", "--cf", "2", "--bogus"]):
        refused(argv, capsys, tmp_path)


def test_api_refuses_bad_numbers_too(tmp_path):
    from generator.core.errors import CfgenError

    with pytest.raises(CfgenError, match=r"--calib-batches must be an integer in \[1, 1000\]"):
        init_model("digits", 2, calib_batches=-2)
    with pytest.raises(CfgenError, match=r"--seed must be an integer"):
        init_model("digits", 2, seed=2**64 + 1)
    for kw, match in (({"lr": float("nan")}, "--lr"), ({"weight_decay": -1.0}, "--weight-decay"),
                      ({"epochs": 10**9}, "--epochs"), ({"seed": -1}, "--seed"),
                      ({"threads": 0}, "--threads"), ({"milestones": [0]}, "--milestones"),
                      ({"batch_size": True}, "--batch-size"), ({"cf": 2.0}, "--cf")):
        cfg = TrainConfig(arch="digits", cf=4, data="digits", output=str(tmp_path / "a.pt"),
                          progress=False)
        for k, v in kw.items():
            setattr(cfg, k, v)
        with pytest.raises(CfgenError, match=match):
            cfg.finalize()
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------- checkpoints

FLOAT_TENSORS = ["layers.0.weight", "layers.0.bias", "layers.1.running_mean",
                 "layers.1.running_var", "layers.3.weight", "layers.3.bias",
                 "layers.3.running_var", "layers.4.weight", "layers.8.weight",
                 "layers.11.weight", "layers.11.bias"]
NONFINITE = [(k, v, i) for k in FLOAT_TENSORS for v in (float("nan"), float("inf"), -float("inf"))
             for i in (0, -1)]


@pytest.mark.parametrize("key,value,index", NONFINITE,
                         ids=[f"{k}={v}@{i}" for k, v, i in NONFINITE])
def test_non_finite_numbers_are_refused_naming_the_tensor(key, value, index, model, tmp_path,
                                                          capsys):
    p = payload(model)
    t = p["state_dict"][key]
    t.view(-1)[index] = value
    path = tmp_path / "bad.pt"
    torch.save(p, path)
    refused(["convert", path, "--cf", "4", "-o", tmp_path / "o.pt"], capsys, tmp_path,
            rf"bad\.pt: state_dict: {re.escape(key)} holds 1 non-finite value \(NaN or Inf\)")


BAD_ENTRIES = {
    "int-for-float": ("layers.4.weight", lambda t: t.to(torch.int32), r"is int32, expected float32"),
    "float64": ("layers.0.weight", lambda t: t.double(), r"is float64, expected float32"),
    "complex": ("layers.0.bias", lambda t: t.to(torch.complex64), r"is complex64"),
    "bool": ("layers.1.running_var", lambda t: t > 0, r"is bool"),
    "list": ("layers.0.weight", lambda t: t.tolist(), r"layers\.0\.weight is a list, not a tensor"),
    "string": ("layers.0.bias", lambda t: "weights", r"is a str, not a tensor"),
    "number": ("layers.3.weight", lambda t: 1.0, r"is a float, not a tensor"),
    "none": ("layers.3.bias", lambda t: None, r"is a NoneType, not a tensor"),
    "dict": ("layers.4.weight", lambda t: {"w": t}, r"is a dict, not a tensor"),
    "sparse": ("layers.0.bias", lambda t: t.to_sparse(), r"not a dense CPU tensor"),
    "scalar": ("layers.0.bias", lambda t: torch.tensor(1.0), r"has shape \(\), the spec needs \(32\)"),
    "transposed": ("layers.11.weight", lambda t: t.transpose(0, 1).contiguous(), r"has shape"),
    "missing": ("layers.8.weight", lambda t: _DROP, r"missing tensor layers\.8\.weight"),
    "negative-var": ("layers.3.running_var", lambda t: -t, r"negative variance"),
    "negative-count": ("layers.1.num_batches_tracked", lambda t: t - 100, r"is negative"),
    "count-float": ("layers.1.num_batches_tracked", lambda t: t.float(), r"is float32, expected int64"),
}


@pytest.mark.parametrize("kind", sorted(BAD_ENTRIES))
def test_bad_state_dict_entries(kind, model, tmp_path, capsys):
    key, change, match = BAD_ENTRIES[kind]
    path = tmp_path / "bad.pt"
    torch.save(with_tensor(model, key, change(model.state_dict()[key].clone())), path)
    refused(["eval", path, "--data", "digits", "--limit", "5"], capsys, tmp_path, match)


@pytest.mark.parametrize("kind,make,match", [
    ("extra", lambda sd: {**sd, "layers.99.weight": torch.zeros(1)}, r"unexpected entry layers\.99"),
    ("int-key", lambda sd: {**sd, 7: torch.zeros(1)}, r"key of type int"),
    ("list", lambda sd: list(sd.values()), r"missing 'state_dict'"),
])
def test_bad_state_dict_containers(kind, make, match, model, tmp_path, capsys):
    path = tmp_path / "bad.pt"
    torch.save(payload(model, state_dict=make(dict(model.state_dict()))), path)
    refused(["convert", path, "--cf", "4", "-o", tmp_path / "o.pt"], capsys, tmp_path, match)


def _shared_lists(depth: int):
    x: list = [1]
    for _ in range(depth):
        x = [x, x]  # 2**depth paths to the same leaf: must not be walked path by path
    return x


def _nested(depth: int):
    x: dict = {}
    for _ in range(depth):
        x = {"a": x}
    return x


PLAIN = {
    "meta-tensor": ({"meta": {"lr": torch.tensor(0.1)}}, r"meta\.lr: holds a Tensor, not plain data"),
    "meta-nan": ({"meta": {"history": [{"loss": float("nan")}]}}, r"meta\.history\[0\]\.loss: nan is not a finite"),
    "meta-inf": ({"meta": {"x": float("inf")}}, r"inf is not a finite number"),
    "meta-set": ({"meta": {"s": {1, 2}}}, r"holds a set"),
    "meta-bytes": ({"meta": {"b": b"\x00"}}, r"holds a bytes"),
    "meta-complex": ({"meta": {"c": 1j}}, r"holds a complex"),
    "meta-dtype": ({"meta": {"d": torch.float32}}, r"holds a dtype"),
    "meta-int-key": ({"meta": {1: "x"}}, r"meta: key of type int"),
    "meta-huge-int": ({"meta": {"n": 2**200}}, r"integer out of range"),
    "meta-deep": ({"meta": _nested(100)}, r"nested deeper than 32 levels"),
    "meta-shared": ({"meta": {"x": _shared_lists(25)}}, r"more than 1,000,000 values"),
    "meta-long-string": ({"meta": {"s": "x" * 200_001}}, r"string of 200,001 characters"),
    "meta-list": ({"meta": [1, 2]}, r"'meta' is not a dict"),
    "accuracy-tensor": ({"accuracy": {"digits": torch.tensor(0.9)}}, r"accuracy\.digits: tensor\(0\.9000\) is not an accuracy"),
    "accuracy-above-1": ({"accuracy": {"digits": 1.5}}, r"1\.5 is not an accuracy in \[0, 1\]"),
    "accuracy-nan": ({"accuracy": {"digits": float("nan")}}, r"nan is not an accuracy"),
    "accuracy-string": ({"accuracy": {"digits": "high"}}, r"'high' is not an accuracy"),
    "accuracy-bool": ({"accuracy": {"digits": True}}, r"True is not an accuracy"),
    "accuracy-newline-key": ({"accuracy": {"a\nb": 0.5}}, r"not a short data set name"),
    "accuracy-int-key": ({"accuracy": {3: 0.5}}, r"not a short data set name"),
    "spec-tensor": ("spec", r"spec\.input\.channels: holds a Tensor"),
    "version-bool": ({"version": True}, r"format version True is not supported"),
}


@pytest.mark.parametrize("kind", sorted(PLAIN))
def test_meta_accuracy_and_spec_must_be_plain_data(kind, model, tmp_path, capsys):
    over, match = PLAIN[kind]
    if over == "spec":
        spec = copy.deepcopy(model.spec)
        spec["input"]["channels"] = torch.tensor(1)
        over = {"spec": spec}
    path = tmp_path / "bad.pt"
    torch.save(payload(model, **over), path)
    refused(["eval", path, "--data", "digits"], capsys, tmp_path, match)


# ----------------------------------------------------------------------------- input paths

def _fifo(tmp_path):
    p = tmp_path / "fifo.pt"
    os.mkfifo(p)
    return p


INPUTS = {
    "missing": (lambda t: t / "nope.pt", r"nope\.pt: no such checkpoint file"),
    "folder": (lambda t: (t / "d.pt").mkdir() or t / "d.pt", r"d\.pt: is a folder, not a checkpoint"),
    "fifo": (_fifo, r"fifo\.pt: not a regular file"),  # must not block
    "dev-null": (lambda t: "/dev/null", r"/dev/null: not a regular file"),
    "proc-mem": (lambda t: "/proc/self/mem", r"cannot read|not a torch checkpoint"),
    "proc-kmsg-like": (lambda t: "/proc/self/status", r"not a torch checkpoint"),
    "below-file": (lambda t: (t / "f").write_text("x") and t / "f" / "c.pt",
                   r"no such checkpoint file \(a parent is not a folder\)"),
    "empty": (lambda t: (t / "e.pt").write_bytes(b"") or t / "e.pt", r"not a torch checkpoint"),
    "json": (lambda t: (t / "j.pt").write_text("{}") and t / "j.pt", r"not a torch checkpoint"),
    "long-name": (lambda t: t / ("a" * 300 + ".pt"), r"cannot read: file name too long"),
}


@pytest.mark.parametrize("kind", sorted(INPUTS))
@pytest.mark.parametrize("command", ["eval", "convert", "from"])
def test_unusable_input_checkpoints(kind, command, tmp_path, capsys):
    make, match = INPUTS[kind]
    path = make(tmp_path)
    argv = {"eval": ["eval", path, "--data", "digits"],
            "convert": ["convert", path, "--cf", "4", "-o", tmp_path / "o.pt"],
            "from": TRAIN + ["--epochs", "1", "--from", path, "-o", tmp_path / "o.pt"]}[command]
    refused(argv, capsys, tmp_path, match)


def test_resume_and_out_state_paths(tmp_path, capsys):
    (tmp_path / "r.pt.state").mkdir()
    for resume in (["--resume"], []):
        refused(TRAIN + resume + ["-o", tmp_path / "r.pt"], capsys, tmp_path,
                r"r\.pt\.state: is a folder")
    (tmp_path / "s.pt.state").write_text("not a state")
    refused(TRAIN + ["--resume", "-o", tmp_path / "s.pt"], capsys, tmp_path,
            r"s\.pt\.state: not a torch training state .*; delete it to start afresh")
    refused(TRAIN + ["-o", tmp_path / "s.pt"], capsys, tmp_path,
            r"s\.pt\.state: exists and is not a checkpoint; refusing to overwrite")
    os.mkfifo(tmp_path / "q.pt.state")  # must not block
    refused(TRAIN + ["--resume", "-o", tmp_path / "q.pt"], capsys, tmp_path,
            r"q\.pt\.state: not a regular file")


# ----------------------------------------------------------------------------- output paths

def _existing_json(t):
    (t / "spec.json").write_text('{"keep": true}')
    return t / "spec.json"


OUTPUTS = {
    "proc": (lambda t: "/proc/cfgen-test.pt", r"/proc/cfgen-test\.pt: cannot write"),
    "proc-subdir": (lambda t: "/proc/cfgen-dir/x.pt", r"cannot write"),
    "sys": (lambda t: "/sys/cfgen-test.pt", r"cannot write"),
    "folder": (lambda t: (t / "out").mkdir() or t / "out", r"out: is a folder"),
    "dot": (lambda t: str(t) + "/.", r"names a folder|is a folder"),
    "below-file": (lambda t: (t / "f").write_text("x") and t / "f" / "o.pt",
                   r"cannot write: a parent is a file"),
    "below-file-deep": (lambda t: (t / "g").write_text("x") and t / "g" / "a" / "b" / "o.pt",
                        r"cannot write"),
    "existing-json": (_existing_json, r"exists and is not a checkpoint; refusing to overwrite"),
    "dev-null": (lambda t: "/dev/null", r"/dev/null: exists and is not a regular file"),
    "fifo": (_fifo, r"fifo\.pt: exists and is not a regular file"),
    "long-name": (lambda t: t / ("b" * 250 + ".pt"), r"file name too long"),
    "empty": (lambda t: "", r"not a valid file name|names a folder"),
}


@pytest.mark.parametrize("kind", sorted(OUTPUTS))
@pytest.mark.parametrize("command", ["init", "convert", "train"])
def test_unwritable_outputs(kind, command, tmp_path, good_ckpt, capsys):
    make, match = OUTPUTS[kind]
    out = make(tmp_path)
    argv = {"init": INIT + ["--calib-batches", "1", "-o", out],
            "convert": ["convert", good_ckpt, "--cf", "4", "-o", out],
            "train": TRAIN + ["--epochs", "1", "-o", out]}[command]
    refused(argv, capsys, tmp_path, match)
    assert not os.path.exists("/proc/cfgen-dir")


def test_a_failed_save_leaves_no_temp_file_and_no_new_folders(tmp_path, model, monkeypatch,
                                                              capsys):
    def disk_full(obj, f, *a, **k):
        Path(f).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(C.torch, "save", disk_full)
    out = tmp_path / "new" / "deeper" / "x.pt"
    with pytest.raises(CheckpointError, match=r"x\.pt: cannot write: no space left on device"):
        C.save_checkpoint(out, model)
    assert list(tmp_path.iterdir()) == []
    refused(INIT + ["--calib-batches", "1", "-o", out], capsys, tmp_path,
            r"cannot write: no space left on device")

    def torch_writer_fails(obj, f, *a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 1 vs 2")

    monkeypatch.setattr(C.torch, "save", torch_writer_fails)
    refused(INIT + ["--calib-batches", "1", "-o", out], capsys, tmp_path, r"cannot write: ")


def test_overwriting_a_checkpoint_is_still_allowed(good_ckpt, tmp_path, capsys):
    out = tmp_path / "c.pt"
    out.write_bytes(good_ckpt.read_bytes())
    code, _, err = run(["convert", out, "--cf", "4", "-o", out], capsys)
    assert code == 0, err
    assert [l["cf"] for l in C.load_checkpoint(out).layers()] == [None, 4, 4, None]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]


# ----------------------------------------------------------------------------- spec files

def _deep_json(depth):
    return "[" * depth + "]" * depth


SPECS = {
    "binary": (b"\x00\xff\xfe\x89PNG\r\n", r"not (a JSON )?(a )?spec \(not UTF-8 text\)"),
    "latin-1": ('{"name": "caf\xe9"}'.encode("latin-1"), r"not UTF-8 text"),
    "nested-200000": (_deep_json(200_000).encode(), r"nested too deeply"),
    "nested-list-open": (("[" * 200_000).encode(), r"nested too deeply|not a readable JSON"),
    "nan": (b'{"input": NaN}', r"NaN is not a JSON number"),
    "infinity": (b'{"input": {"channels": Infinity}}', r"Infinity is not a JSON number"),
    "huge-int": (b'{"input": ' + b"7" * 5000 + b"}", r"spec \(Exceeds the limit"),
    "truncated": (b'{"input": {', r"not a readable JSON spec"),
    "empty": (b"", r"not a readable JSON spec"),
    "array": (b"[1, 2]", r"a spec must be a JSON object"),
}


@pytest.mark.parametrize("kind", sorted(SPECS))
@pytest.mark.parametrize("command", ["init", "train"])
def test_bad_spec_files(kind, command, tmp_path, capsys):
    data, match = SPECS[kind]
    spec = tmp_path / "spec.json"
    spec.write_bytes(data)
    base = ["init", spec, "--cf", "2"] if command == "init" else \
        ["train", spec, "--cf", "2", "--data", "digits", "--quiet"]
    refused(base + ["-o", tmp_path / "o.pt"], capsys, tmp_path, match)


@pytest.mark.parametrize("make,match", [
    (lambda t: (t / "d.json").mkdir() or t / "d.json", r"unknown architecture .*d\.json"),
    (_fifo, r"unknown architecture .*fifo\.pt"),  # not read: no hang
    (lambda t: "/proc/self/mem", r"/proc/self/mem: cannot read the spec"),
    (lambda t: "x" * 5000, r"unknown architecture 'xxx.*\.\.\.'"),
    (lambda t: "new\nline", r"unknown architecture 'new\?line'"),
])
def test_spec_paths_that_are_not_spec_files(make, match, tmp_path, capsys):
    refused(["init", make(tmp_path), "--cf", "2", "-o", tmp_path / "o.pt"], capsys, tmp_path,
            match)


# ----------------------------------------------------------------------------- CIFAR batches

def _write_batches(folder: Path, test_batch, good: bool = True):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    ok = {b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8), b"labels": [1, 2]}
    for i in range(1, 6):
        with open(folder / f"data_batch_{i}", "wb") as fh:
            pickle.dump(ok, fh, protocol=2)
    with open(folder / "test_batch", "wb") as fh:
        if isinstance(test_batch, bytes):
            fh.write(test_batch)
        else:
            pickle.dump(test_batch, fh, protocol=2)


U8 = np.zeros((2, 3072), np.uint8)
CIFAR = {
    "float-data": ({b"data": U8.astype(np.float64) + 1e10, b"labels": [0, 1]}, r"'data' is a float64 array, not a uint8 array"),
    "list-data": ({b"data": [[300] * 3072] * 2, b"labels": [0, 1]}, r"'data' is a list, not a uint8"),
    "string-data": ({b"data": "pixels", b"labels": [0]}, r"'data' is a str"),
    "flat-data": ({b"data": U8.reshape(-1), b"labels": [0, 1]}, r"'data' has shape \(6144,\)"),
    "wrong-width": ({b"data": np.zeros((2, 3000), np.uint8), b"labels": [0, 1]}, r"has shape \(2, 3000\)"),
    "float-labels": ({b"data": U8, b"labels": [0.5, 1.0]}, r"'labels' is not a flat list of integers"),
    "bool-labels": ({b"data": U8, b"labels": [True, False]}, r"'labels' is not a flat list"),
    "nested-labels": ({b"data": U8, b"labels": [[0], [1]]}, r"'labels' is not a flat list"),
    "huge-labels": ({b"data": U8, b"labels": [2**70, 1]}, r"labels outside 0\.\.9"),
    "negative-labels": ({b"data": U8, b"labels": np.array([-1, 0])}, r"labels outside 0\.\.9"),
    "float-label-array": ({b"data": U8, b"labels": np.array([0.0, 1.0])}, r"'labels' is not a flat"),
    "count-mismatch": ({b"data": U8, b"labels": [0]}, r"2 images but 1 labels"),
    "no-labels": ({b"data": U8}, r"no 'labels'"),
    "list-not-dict": ([U8, [0, 1]], r"a list, not a dict"),
    "non-utf8-key": ({b"\xff": 1, b"data": U8, b"labels": [0, 1, 2]}, r"2 images but 3 labels"),
    "garbage": (b"\x80\x02garbage", r"not a CIFAR-10 python batch"),
    "truncated": (pickle.dumps({b"data": U8, b"labels": [0, 1]}, protocol=2)[:50], r"not a CIFAR-10 python batch"),
}


@pytest.mark.parametrize("kind", sorted(CIFAR))
def test_malformed_cifar_batches(kind, good_ckpt, tmp_path, capsys):
    batch, match = CIFAR[kind]
    _write_batches(tmp_path / "c", batch)
    refused(["eval", good_ckpt, "--data", "cifar10", "--data-dir", tmp_path / "c"], capsys,
            tmp_path, r"test_batch: .*" + match)


def test_split_from_batch_refuses_empty_and_odd_batches():
    from generator.model.data import split_from_batch
    from generator.core.errors import DataError

    with pytest.raises(DataError, match=r"'data' has shape \(0, 3072\), expected \(N, 3072\) "
                                        r"with N >= 1"):
        split_from_batch({b"data": np.zeros((0, 3072), np.uint8), b"labels": []}, "b")
    with pytest.raises(DataError, match=r"'data' has shape \(1, 2, 3072\)"):
        split_from_batch({"data": np.zeros((1, 2, 3072), np.uint8), "labels": [0]}, "b")
    with pytest.raises(DataError, match=r"'labels' is not a flat list"):
        split_from_batch({"data": U8, "labels": "01"}, "b")
    ok = split_from_batch({"data": U8 + 7, "labels": np.array([3, 9], np.uint8)}, "b")
    assert ok.images.shape == (2, 3, 32, 32) and ok.labels.dtype == np.int64
    assert ok.labels.tolist() == [3, 9] and int(ok.images.max()) == 7


def test_data_dir_that_is_a_file(tmp_path, good_ckpt, capsys):
    (tmp_path / "f").write_text("x")
    refused(["eval", good_ckpt, "--data", "cifar10", "--data-dir", tmp_path / "f"], capsys,
            tmp_path, r"f: is not a folder; --data-dir names the folder")
    refused(TRAIN[:5] + ["cifar10", "--data-dir", tmp_path / "f", "--quiet", "-o",
                         tmp_path / "o.pt"], capsys, tmp_path, r"is not a folder")


# ----------------------------------------------------------------------------- train --resume

def _state_cases():
    def drop(key):
        return lambda s: s.pop(key)

    def setk(path, value):
        def f(s):
            obj = s
            for k in path[:-1]:
                obj = obj[k]
            obj[path[-1]] = value(obj[path[-1]]) if callable(value) else value
        return f

    def model_tensor(key, fn):
        return lambda s: s["model"].__setitem__(key, fn(s["model"][key]))

    def opt_state(key, fn):
        return lambda s: s["optimizer"]["state"][0].__setitem__(key, fn(s["optimizer"]["state"][0][key]))

    cases = {f"missing-{k}": (drop(k), rf"missing '{k}'")
             for k in ("config", "epoch", "spec", "model", "optimizer", "rng")}
    cases.update({
        "format": (setk(["format"], "other"), r"not a cfgen training state"),
        "version": (setk(["version"], 2), r"training state version 2"),
        "config-missing-lr": (lambda s: s["config"].pop("lr"), r"config lacks 'lr'"),
        "config-lr-string": (setk(["config", "lr"], "0.01"), r"config\.lr = '0\.01' is not a valid"),
        "config-lr-nan": (setk(["config", "lr"], float("nan")), r"config\.lr: nan is not a finite"),
        "config-epochs-zero": (setk(["config", "epochs"], 0), r"config\.epochs = 0"),
        "config-seed-huge": (setk(["config", "seed"], 2**64), r"config\.seed"),
        "config-milestones": (setk(["config", "milestones"], "1,2"), r"config\.milestones"),
        "config-data": (setk(["config", "data"], "mnist"), r"config\.data"),
        "config-tensor": (setk(["config", "cf"], torch.tensor(4)), r"config\.cf: holds a Tensor"),
        "config-list": (setk(["config"], [1]), r"'config' is a list, not a dict"),
        "epoch-string": (setk(["epoch"], "1"), r"'epoch' is a str, not an int"),
        "epoch-float": (setk(["epoch"], 1.5), r"'epoch' is a float, not an int"),
        "epoch-bool": (setk(["epoch"], True), r"'epoch' is a bool"),
        "epoch-tensor": (setk(["epoch"], torch.tensor(1)), r"'epoch' is a Tensor"),
        "epoch-negative": (setk(["epoch"], -1), r"epoch -1 is outside 0\.\.2"),
        "epoch-beyond": (setk(["epoch"], 10**6), r"epoch 1000000 is outside"),
        "seconds-nan": (setk(["seconds"], float("nan")), r"seconds: nan is not a finite"),
        "history-string": (setk(["history"], "h"), r"'history' is not a list of dicts"),
        "origin-tensor": (setk(["origin"], {"from": torch.zeros(1)}), r"origin\.from: holds a Tensor"),
        "spec-unresolved": (lambda s: s["spec"].pop("resolved"), r"bad spec: spec is not resolved"),
        "spec-bad-cf": (lambda s: s["spec"]["layers"][4].__setitem__("cf", 3), r"bad spec: .*does not divide"),
        "spec-not-dict": (setk(["spec"], "digits"), r"'spec' is a str"),
        "model-shape": (model_tensor("layers.4.weight", lambda t: t[:32]), r"model: layers\.4\.weight has shape \(32, 32, 3, 3\)"),
        "model-nan": (model_tensor("layers.8.weight", lambda t: t * float("nan")), r"model: layers\.8\.weight holds \d+ non-finite"),
        "model-missing": (lambda s: s["model"].pop("layers.0.bias"), r"model: missing tensor layers\.0\.bias"),
        "model-dtype": (model_tensor("layers.0.weight", lambda t: t.half()), r"is float16, expected float32"),
        "optimizer-list": (setk(["optimizer"], [1]), r"'optimizer' is a list"),
        "optimizer-groups": (setk(["optimizer", "param_groups"], []), r"optimizer is not the Adam state"),
        "optimizer-two-groups": (setk(["optimizer", "param_groups"], lambda g: g + g), r"optimizer is not the Adam state"),
        "optimizer-params": (setk(["optimizer", "param_groups"], lambda g: [{**g[0], "params": g[0]["params"][:-1]}]), r"parameter groups of another model"),
        "optimizer-betas": (setk(["optimizer", "param_groups"], lambda g: [{**g[0], "betas": (2.0, 0.5)}]), r"optimizer\.betas = \(2\.0, 0\.5\)"),
        "optimizer-capturable": (setk(["optimizer", "param_groups"], lambda g: [{**g[0], "capturable": True}]), r"optimizer\.capturable"),
        "optimizer-wd": (setk(["optimizer", "param_groups"], lambda g: [{**g[0], "weight_decay": float("nan")}]), r"optimizer\.weight_decay"),
        "optimizer-exp-avg-shape": (opt_state("exp_avg", lambda t: t.reshape(-1)[:1]), r"optimizer state 0\.exp_avg does not match"),
        "optimizer-exp-avg-sq-negative": (opt_state("exp_avg_sq", lambda t: t - 1), r"optimizer state 0\.exp_avg_sq holds non-finite or negative"),
        "optimizer-step-nan": (opt_state("step", lambda t: t * float("nan")), r"0\.step holds non-finite"),
        "optimizer-step-list": (opt_state("step", lambda t: [1]), r"0\.step does not match"),
        "optimizer-index": (lambda s: s["optimizer"]["state"].__setitem__(999, s["optimizer"]["state"][0]), r"optimizer state has a bad entry"),
        "rng-short": (setk(["rng", "torch"], lambda t: t[:10]), r"rng\.torch is not a random generator state"),
        "rng-list": (setk(["rng", "torch"], lambda t: t.tolist()), r"rng\.torch is not"),
        "rng-float": (setk(["rng", "torch"], lambda t: t.float()), r"rng\.torch is not"),
        "rng-missing": (lambda s: s["rng"].pop("torch"), r"rng\.torch is not"),
        "rng-cuda": (setk(["rng", "cuda"], "x"), r"rng\.cuda is not"),
    })
    return cases


STATE_CASES = _state_cases()


@pytest.mark.parametrize("kind", sorted(STATE_CASES))
def test_resume_from_a_bad_training_state(kind, run_state, tmp_path, capsys):
    src, state = run_state
    change, match = STATE_CASES[kind]
    out = tmp_path / "run.pt"
    out.write_bytes(src.read_bytes())
    bad = copy.deepcopy(state)
    change(bad)
    torch.save(bad, state_path(out))
    refused(TRAIN + ["--resume", "-o", out], capsys, tmp_path, r"run\.pt\.state: .*" + match)


def test_resume_from_a_good_state_still_works(run_state, tmp_path, capsys):
    src, state = run_state
    out = tmp_path / "run.pt"
    out.write_bytes(src.read_bytes())
    torch.save(state, state_path(out))
    code, outp, err = run(TRAIN + ["--resume", "-o", out], capsys)
    assert code == 0, err
    assert "2 epochs" in outp and C.load_checkpoint(out).meta["epochs_done"] == 2


def test_damaged_state_archives(run_state, tmp_path, capsys):
    src, state = run_state
    out = tmp_path / "run.pt"
    out.write_bytes(src.read_bytes())
    raw = bytearray(state_path(src).read_bytes())
    cases = {"truncated": bytes(raw[: len(raw) // 2]), "empty": b"", "garbage": b"PK\x03\x04" * 10}
    flipped = bytearray(raw)
    flipped[len(raw) // 2] ^= 0xFF
    cases["bit-flip"] = bytes(flipped)
    for name, data in cases.items():
        state_path(out).write_bytes(data)
        refused(TRAIN + ["--resume", "-o", out], capsys, tmp_path,
                r"run\.pt\.state: .*; delete it to start afresh")


# ----------------------------------------------------------------------------- train --from

def _spec_variant(tmp_path, change) -> Path:
    spec = json.loads((REPO / "generator" / "model" / "zoo" / "digits.json").read_text())
    change(spec)
    path = tmp_path / "variant" / "digits.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(spec))
    return path


@pytest.mark.parametrize("change,match", [
    (lambda s: s["layers"][4].__setitem__("out", 32), r"layer conv2 differs .* in out \(32 vs 64\)"),
    (lambda s: s["layers"][4].__setitem__("precision", "float"), r"layer conv2 is float"),
    (lambda s: s["layers"][6].__setitem__("type", "avgpool"), r"differs .* in type"),
    (lambda s: s["layers"].insert(2, {"type": "dropout", "p": 0.1}), r"has 16 layers, the spec 15"),
    (lambda s: s["layers"][1].__setitem__("eps", 0.001), r"in eps"),
])
def test_from_an_incompatible_checkpoint(change, match, tmp_path, capsys):
    variant = _spec_variant(tmp_path, change)
    ckpt = tmp_path / "variant.pt"
    assert main(["init", str(variant), "--cf", "2", "--calib-batches", "1", "-o", str(ckpt)]) == 0
    refused(TRAIN + ["--epochs", "1", "--from", ckpt, "-o", tmp_path / "o.pt"], capsys,
            tmp_path, r"variant\.pt: (its model|layer)" if match is None else match)


def test_from_a_checkpoint_that_cannot_be_regrouped(good_ckpt, tmp_path, capsys):
    refused(["train", "digits", "--cf", "3", "--data", "digits", "--quiet", "--epochs", "1",
             "--from", good_ckpt, "-o", tmp_path / "o.pt"], capsys, tmp_path,
            r"does not divide")


def test_from_a_non_finite_checkpoint(model, tmp_path, capsys):
    p = payload(model)
    p["state_dict"]["layers.3.running_mean"][0] = float("nan")
    torch.save(p, tmp_path / "nan.pt")
    refused(TRAIN + ["--epochs", "1", "--from", tmp_path / "nan.pt", "-o", tmp_path / "o.pt"],
            capsys, tmp_path, r"layers\.3\.running_mean holds 1 non-finite")


# ----------------------------------------------------------------------------- end to end

def _cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "generator", *map(str, args)], cwd=REPO,
                          env=ENV, capture_output=True, text=True, timeout=timeout)


def test_end_to_end_no_traceback(tmp_path, model):
    p = payload(model)
    p["state_dict"]["layers.4.weight"][0, 0, 0, 0] = float("inf")
    torch.save(p, tmp_path / "inf.pt")
    fifo = _fifo(tmp_path)
    before = snapshot(tmp_path)
    for argv, match in (
            (["init", "digits", "--cf", "2", "--calib-batches", "-2", "-o", tmp_path / "a.pt"],
             r"^error: init: argument --calib-batches: must be an integer in \[1, 1000\], got -2$"),
            (["train", "digits", "--cf", "4", "--data", "digits", "--lr", "nan", "-o",
              tmp_path / "b.pt"], r"argument --lr: must be a finite number in \(0, 10\]"),
            (["eval", tmp_path / "inf.pt", "--data", "digits"],
             r"inf\.pt: state_dict: layers\.4\.weight holds 1 non-finite value"),
            (["eval", fifo, "--data", "digits"], r"fifo\.pt: not a regular file"),
            (["init", "digits", "--cf", "2", "-o", "/proc/x.pt"], r"/proc/x\.pt: cannot write")):
        res = _cli(*argv)
        assert res.returncode == 2, (argv, res.stderr)
        assert "Traceback" not in res.stderr and len(res.stderr.splitlines()) == 1, res.stderr
        assert re.search(match, res.stderr.strip()), res.stderr
        assert res.stdout == ""
    assert snapshot(tmp_path) == before


def test_batch_of_one_image_for_a_flat_batchnorm(tmp_path, capsys):
    spec = {"name": "flat", "input": {"channels": 1, "height": 8, "width": 8}, "num_classes": 10,
            "layers": [{"type": "flatten"}, {"type": "linear", "out": 16, "precision": "float"},
                       {"type": "batchnorm", "name": "bn"}, {"type": "relu"},
                       {"type": "linear", "out": 10, "precision": "xnor"}]}
    (tmp_path / "flat.json").write_text(json.dumps(spec))
    refused(["train", tmp_path / "flat.json", "--cf", "2", "--data", "digits", "--quiet",
             "--batch-size", "1", "--epochs", "1", "-o", tmp_path / "f.pt"], capsys, tmp_path,
            r"batches of 1 image: batch-norm layer bn sees one value per channel .* raise "
            r"--batch-size")
