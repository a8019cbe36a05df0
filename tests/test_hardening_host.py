"""Hardening of the host side (issue 11): the driver refuses bad input with one DriverError
line, CIFAR-10 batches are read with one restricted unpickler everywhere, the package /
notebook CLIs exit 2 with one line, and user strings cannot change the meaning of the files
rendered for the board (README.md, the notebook, cfgen_meta.json).

Reuses the digits build of tests/test_host.py (one per session). Every error case asserts the
error type, a single line, and (for the CLIs) exit status 2, no traceback and a build folder
left as it was.
"""

from __future__ import annotations

import ast
import json
import math
import os
import pickle
import re
import shutil
import string
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REPO
from test_host import answer, build, expected, meta, overlay  # noqa: F401 - shared fixtures

import cfgen_driver as drv  # noqa: E402 - test_host put host/ on sys.path
from cfgen_driver import Accelerator, checks  # noqa: E402
from cfgen_driver.board import PynqBackend  # noqa: E402
from cfgen_driver.fakepynq import FakePynq  # noqa: E402

HYP = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

NASTY = ['digits\nPYTHON = touch pwned; true\n#', 'a"b', "a'b", '$(touch pwned)', '`touch pwned`', '``',
         'x; rm -rf /', '"""', "'''", '*/', '/*', '#', '# %%', '\n# %% [markdown]\n# hi', '\\', 'a\\',
         '\\n', '{{ 7*7 }}', '{% raw %}', '</script><b>', '| a | b |', '[x](javascript:alert(1))', '*bold*',
         '_u_', '\x00z', 'ü名', '\r\n', '\u2028x', '\t', '-', '1. x', '> q', '&amp;', '~~s~~', '![i](x)']


def one_line_error(e: BaseException) -> str:
    msg = str(e)
    assert msg and "\n" not in msg and "\r" not in msg, repr(msg)
    return msg


def raises_one_line(exc_type, fn, *args, **kw) -> str:
    with pytest.raises(exc_type) as info:
        fn(*args, **kw)
    return one_line_error(info.value)


def snapshot(folder: Path) -> dict:
    """Every path under folder with its size and mtime: 'nothing left behind' means equal."""
    return {str(p.relative_to(folder)): (p.is_dir(), p.stat().st_size if p.is_file() else 0,
                                         p.stat().st_mtime_ns if p.is_file() else 0)
            for p in folder.rglob("*")}


def clone_build(build: Path, dest: Path) -> Path:
    # ".package.*": the staging files of a `make package` another test may be running on the
    # shared build right now (they vanish mid-copy)
    shutil.copytree(build, dest, symlinks=True, ignore=shutil.ignore_patterns("package", "package.tar.gz",
                                                                              ".package.*", "csim", "vivado"))
    return dest


@pytest.fixture
def fresh(build, tmp_path) -> Path:
    return clone_build(build, tmp_path / "out")


@pytest.fixture
def golden(build):
    with Accelerator.open(build, "golden") as acc:
        yield acc


def cli(module: str, *args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=cwd or REPO,
                          capture_output=True, text=True, timeout=300)


def assert_cli_refused(r: subprocess.CompletedProcess, match: str | None = None) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    err = r.stderr.strip()
    assert "Traceback" not in r.stderr and len(err.splitlines()) == 1 and err.startswith("error: "), r.stderr
    if match:
        assert re.search(match, err), err
    return err


# ----------------------------------------------------------------------------- images

RAGGED = [
    [[[0] * 8] * 8, [[0] * 8] * 7],                  # two images of different heights
    [[[[0]] * 8] * 8, [[[0, 0]] * 8] * 8],           # channels differ
    [np.zeros((8, 8, 1)), np.zeros((8, 7, 1))],
    [[1, [2, 3]]],
    [None],
    [["a"] * 8] * 8,
    [[[2 ** 70] * 8] * 8],                           # Python ints beyond int64: an object array
    [[[object()] * 8] * 8],
    [[[1.5] * 8] * 8],
    (),
    [],
]


@pytest.mark.parametrize("images", RAGGED, ids=range(len(RAGGED)))
def test_ragged_and_odd_lists_are_input_errors(golden, images):
    raises_one_line(drv.InputError, golden.run, images)


@HYP
@given(st.recursive(st.integers(-3, 300), lambda inner: st.lists(inner, max_size=9), max_leaves=200))
def test_generated_nested_lists(golden, images):
    """Any nesting of ints is either a valid batch of 8x8 digits or one InputError line."""
    try:
        x = golden.check_images(images if isinstance(images, list) else [images])
    except drv.InputError as e:
        one_line_error(e)
    else:
        assert x.dtype == np.uint8 and x.shape[1:] == (8, 8, 1)


# ----------------------------------------------------------------------------- numbers

BAD_COUNTS = [-5, 0, float("nan"), float("inf"), -float("inf"), 2.5, 3.0, "10", True, 10 ** 9, 2 ** 70,
              np.float64(4), [4]]


@pytest.mark.parametrize("frames", BAD_COUNTS, ids=repr)
def test_throughput_frames_refused_before_running(meta, answer, overlay, frames):
    fake = FakePynq(meta, answer)
    with Accelerator(meta, PynqBackend(meta, overlay, 4, pynq=fake)) as acc:
        n = len(fake.calls)
        msg = raises_one_line(drv.InputError, acc.throughput_test, frames=frames)
        assert "frames" in msg and len(fake.calls) == n   # nothing reached the DMA


@pytest.mark.parametrize("key", ["repeats", "latency_runs"])
@pytest.mark.parametrize("value", [-1, 0, float("nan"), "3", 1.5, True, 10 ** 6])
def test_throughput_repeats_refused(golden, key, value):
    raises_one_line(drv.InputError, golden.throughput_test, golden_images(golden), **{key: value})


def golden_images(acc):
    return np.zeros((2,) + acc.input_shape, np.uint8)


def test_throughput_frames_limits_and_warmup(golden):
    tp = golden.throughput_test(golden_images(golden), frames=1, repeats=1, latency_runs=1)
    assert tp["frames"] == 1
    raises_one_line(drv.InputError, golden.throughput_test, warmup="yes")


BAD_TIMEOUTS = [float("nan"), float("inf"), -float("inf"), -1, 0, 0.0, -1e-9, 1e9, "5", None, True, [1],
                np.float32("nan")]


@pytest.mark.parametrize("timeout", BAD_TIMEOUTS, ids=repr)
def test_timeout_refused_before_the_overlay(meta, answer, overlay, build, timeout):
    """A NaN timeout used to make the wait loop spin for ever (now > NaN is always false)."""
    fake = FakePynq(meta, answer, hang=True)
    msg = raises_one_line(drv.InputError, PynqBackend, meta, overlay, 4, timeout=timeout, pynq=fake)
    assert "timeout" in msg and fake.calls == []
    raises_one_line(drv.InputError, Accelerator.open, build, "board", bitfile=overlay, pynq=fake, timeout=timeout)
    raises_one_line(drv.InputError, Accelerator.open, build, "golden", timeout=timeout)
    assert fake.calls == []


@HYP
@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10 ** 12, 10 ** 12))
def test_generated_timeouts(timeout):
    try:
        v = checks.seconds(timeout)
    except drv.InputError as e:
        one_line_error(e)
        assert not (math.isfinite(timeout) and 0 < timeout <= checks.MAX_SECONDS)
    else:
        assert math.isfinite(v) and 0 < v <= checks.MAX_SECONDS


@pytest.mark.parametrize("batch", [0, -1, 1.5, "4", float("nan"), True, None, 10 ** 12, checks.MAX_FRAMES + 1])
def test_bad_batch(build, meta, answer, overlay, batch):
    fake = FakePynq(meta, answer)
    raises_one_line(drv.InputError, Accelerator.open, build, "golden", batch=batch)
    raises_one_line(drv.InputError, PynqBackend, meta, overlay, batch, pynq=fake)
    assert fake.calls == []


def big_meta(meta, h=512, w=512, c=3):
    m = json.loads(json.dumps(meta))
    m["input"] = drv.meta._stream({"h": h, "w": w, "c": c, "kind": "uint", "bits": 8})
    return m


def test_batch_that_cannot_be_allocated_is_refused_with_numbers(meta, overlay):
    """512x512x3 frames are 768 KiB: 1000 of them are 750 MiB of contiguous memory."""
    m = big_meta(meta)
    fake = FakePynq(m, lambda f: None, buffer_max_size=(1 << 26) - 1)  # a 26-bit DMA length: frames fit
    msg = raises_one_line(drv.InputError, PynqBackend, m, overlay, 1000, pynq=fake)
    assert "750.0 MiB" in msg and "batch <= 170" in msg
    assert not [c for c in fake.calls if c[0] in ("allocate", "Overlay")]
    PynqBackend(m, overlay, 2, pynq=fake).close()  # a batch that fits is accepted
    raises_one_line(drv.InputError, drv.backends.GoldenBackend, m, None, 1000)


def test_random_frames_bounded(meta, answer, overlay):
    fake = FakePynq(big_meta(meta), answer, buffer_max_size=(1 << 26) - 1)
    with Accelerator(big_meta(meta), PynqBackend(big_meta(meta), overlay, 4, pynq=fake)) as acc:
        msg = raises_one_line(drv.InputError, acc.throughput_test, frames=checks.MAX_FRAMES)
        assert "MiB" in msg


def test_frame_over_the_dma_transfer_is_one_line_at_open(meta, overlay):
    """768 KiB frames, a 14-bit DMA length register: refused at open, never split (TLAST)."""
    m = big_meta(meta)
    fake = FakePynq(m, lambda f: None)
    msg = raises_one_line(drv.DMAError, PynqBackend, m, overlay, 2, pynq=fake)
    assert "786432 bytes" in msg and "16383 bytes" in msg and not fake.live_buffers


def test_other_open_arguments(build):
    raises_one_line(drv.InputError, Accelerator.open, build, "golden", log="print")
    raises_one_line(drv.InputError, Accelerator.open, build, "golden", build_dir=3)
    raises_one_line(drv.DriverError, Accelerator.open, build, ["golden"])
    raises_one_line(drv.DriverError, Accelerator.open, build, "golden\nboard")
    raises_one_line(drv.MetadataError, Accelerator.open, 42, "golden")
    raises_one_line(drv.OverlayError, PynqBackend, drv.load_meta(build), 3.5)


# ----------------------------------------------------------------------------- metadata

def _paths(d, prefix=()):
    for k, v in d.items():
        yield prefix + (k,)
        if isinstance(v, dict):
            yield from _paths(v, prefix + (k,))


WRONG = [None, "x", "", [], {}, -1, 0, 1.5, float("nan"), float("inf"), True, 10 ** 30, ["a"], "../../x"]


def _mutate(meta, path, value, delete=False):
    m = json.loads(json.dumps(meta))
    d = m
    for k in path[:-1]:
        d = d[k]
    if delete:
        del d[path[-1]]
    else:
        d[path[-1]] = value
    return m


def _check_meta_file(tmp_path, m, raw: str | None = None):
    f = tmp_path / "cfgen_meta.json"
    f.write_text(raw if raw is not None else json.dumps(m))
    try:
        got = drv.load_meta(f)
    except drv.MetadataError as e:
        return one_line_error(e)
    # accepted: the driver must be able to use it
    assert isinstance(got["name"], str) and got["input"]["frame_bytes"] > 0
    return None


def test_every_required_field_missing(meta, tmp_path):
    optional = {("board",), ("part",), ("clock_mhz",), ("dataset",), ("graph_digest",), ("predicted",),
                ("build_dir",), ("output", "node"), ("output", "tlast"), ("input", "beat_bits"), ("output", "beat_bits")}
    optional |= {p for p in _paths(meta) if p[0] == "predicted"}
    refused = 0
    for path in _paths(meta):
        msg = _check_meta_file(tmp_path, _mutate(meta, path, None, delete=True))
        if path in optional:
            assert msg is None, path
        else:
            assert msg is not None, path
            refused += 1
    assert refused >= 20


@pytest.mark.parametrize("value", WRONG, ids=repr)
def test_every_field_with_a_wrong_type(meta, tmp_path, value):
    for path in _paths(meta):
        _check_meta_file(tmp_path, _mutate(meta, path, value))  # MetadataError or usable, nothing else


@pytest.mark.parametrize("path,value,match", [
    (("logit_scale",), float("nan"), "finite"), (("logit_scale",), -0.5, "positive"),
    (("logit_scale",), "0.1", "number"), (("input", "h"), "8", "integer"), (("input", "h"), 8.0, "integer"),
    (("input", "h"), True, "integer"), (("input", "frame_bytes"), 65, "frame_bytes"),
    (("input", "kind"), "float", "kind"), (("output", "bits"), 65, "beat_bytes|64"),
    (("num_classes",), 11, "num_classes|class_names"), (("class_names",), "0123456789", "list"),
    (("class_names",), list(range(10)), "strings"), (("ip", "top"), "../../etc/x", "identifier"),
    (("ip", "top"), "cf;rm", "identifier"), (("dma", "data_width_bits"), 12, "power of two"),
    (("predicted", "fps_at_clock"), "fast", "number"), (("name",), 5, "string"), (("version",), True, "version"),
    (("format",), "other", "format"), (("input", "beat_bytes"), 2, "beat_bytes")])
def test_specific_metadata_errors(meta, tmp_path, path, value, match):
    m = _mutate(dict(meta, predicted={"fps_at_clock": 1.0}), path, value)
    msg = _check_meta_file(tmp_path, m)
    assert msg and re.search(match, msg), msg


@pytest.mark.parametrize("raw", ["", "{", "[]", "null", "\"x\"", "[" * 100000 + "]" * 100000, "\xff\xfe{}",
                                 '{"format": "cfgen-host-meta", "version": NaN}'])
def test_metadata_file_not_json(meta, tmp_path, raw):
    f = tmp_path / "cfgen_meta.json"
    f.write_bytes(raw.encode("latin-1"))
    raises_one_line(drv.MetadataError, drv.load_meta, f)
    raises_one_line(drv.MetadataError, Accelerator.open, tmp_path, "golden")


def test_metadata_path_is_a_folder(tmp_path):
    (tmp_path / "cfgen_meta.json").mkdir()
    raises_one_line(drv.MetadataError, drv.load_meta, tmp_path)


@HYP
@given(st.data())
def test_generated_metadata_mutations(meta, tmp_path, data):
    paths = list(_paths(meta))
    m = json.loads(json.dumps(meta))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        try:
            value = data.draw(st.sampled_from(WRONG) | st.integers(-2 ** 64, 2 ** 64) | st.text(max_size=5)
                              | st.floats())
            m = _mutate(m, path, value, delete=data.draw(st.booleans()))
        except (KeyError, TypeError):
            continue  # an earlier mutation removed the parent
    _check_meta_file(tmp_path, m)


# ----------------------------------------------------------------------------- damaged build folders

def _damage_npz(out: Path, how: str):
    f = out / "graph.npz"
    if how == "missing":
        f.unlink()
    elif how == "garbage":
        f.write_bytes(os.urandom(300))
    elif how == "empty":
        f.write_bytes(b"")
    elif how == "truncated":
        f.write_bytes(f.read_bytes()[:len(f.read_bytes()) // 2])
    elif how == "pickle":  # np.load must not unpickle it (allow_pickle=False)
        marker = out / "PWNED"
        f.write_bytes(pickle.dumps(Evil(f"touch {marker}")))
    elif how == "object-array":
        np.savez(f, x=np.array([{"a": 1}], dtype=object))
    elif how == "other-arrays":
        np.savez(f, unrelated=np.zeros(3))
    elif how == "wrong-shapes":
        with np.load(f) as z:
            arrays = {k: np.zeros((1,), z[k].dtype) for k in z.files}
        np.savez(f, **arrays)
    elif how == "a-folder":
        f.unlink()
        f.mkdir()


@pytest.mark.parametrize("how", ["missing", "garbage", "empty", "truncated", "pickle", "object-array",
                                 "other-arrays", "wrong-shapes", "a-folder"])
def test_damaged_graph_npz(fresh, expected, how):
    _damage_npz(fresh, how)
    try:
        acc = Accelerator.open(fresh, "golden")
    except drv.BackendUnavailable as e:
        assert "graph" in one_line_error(e)
    else:  # loaded (arrays absent or misshapen): running says so in one line
        with acc:
            raises_one_line(drv.DriverError, acc.run, expected[0][:2])
    assert not (fresh / "PWNED").exists()


def test_auto_with_every_backend_failing(fresh):
    (fresh / "hls" / "manifest.json").write_text("{garbage")
    _damage_npz(fresh, "garbage")
    msg = raises_one_line(drv.BackendUnavailable, Accelerator.open, fresh, "auto")
    assert "csim:" in msg and "golden:" in msg


GRAPH_JSON = ["", "{", "[]", '{"nodes": 3}', '{"input": {"h": 8}}', "null", '{"nodes": [], "input": {}}']


@pytest.mark.parametrize("raw", GRAPH_JSON)
@pytest.mark.parametrize("backend", ["golden", "csim"])
def test_damaged_graph_json(fresh, raw, backend):
    (fresh / "graph.json").write_text(raw)
    raises_one_line(drv.BackendUnavailable, Accelerator.open, fresh / "host", backend, build_dir=fresh)


DELETE = object()
MANIFESTS = [None, "", "{", "[1]", "null", {"top": DELETE}, {"sources": DELETE}, {"top": 'x"; system("touch pwned"); //'},
             {"top": "cf_digits -include /etc/passwd"}, {"sources": ["/etc/passwd"]}, {"sources": ["../../x.cpp"]},
             {"sources": "src/cf_digits.cpp"}, {"top": 5}, {"sources": None}, {"sim_include_dirs": [""]},
             {"include_dirs": ["/usr/include"]}, {"include_dirs": ["src/../../.."]},
             {"ap_int_max_w": "2048; -o /tmp/x"}, {"ap_int_max_w": True}, {"ap_int_max_w": 10 ** 9}]


@pytest.mark.parametrize("content", MANIFESTS, ids=range(len(MANIFESTS)))
def test_damaged_hls_manifest(fresh, content):
    man = fresh / "hls" / "manifest.json"
    if content is None:
        man.unlink()
    elif isinstance(content, str):
        man.write_text(content)
    else:
        good = json.loads(man.read_text())
        good.update(content)
        man.write_text(json.dumps({k: v for k, v in good.items() if v is not DELETE}))
    before = snapshot(fresh / "hls")
    raises_one_line(drv.BackendUnavailable, Accelerator.open, fresh, "csim")
    assert snapshot(fresh / "hls") == before and not (fresh / "host" / "csim").exists()
    assert not (REPO / "pwned").exists()


def test_not_a_build_folder(tmp_path, meta):
    drv.meta.save(meta, tmp_path)
    for backend in ("golden", "csim"):
        raises_one_line(drv.BackendUnavailable, Accelerator.open, tmp_path, backend)
    msg = raises_one_line(drv.BackendUnavailable, Accelerator.open, tmp_path, "auto")
    assert "csim:" in msg and "golden:" in msg


# ----------------------------------------------------------------------------- restricted CIFAR-10 loading

class Evil:
    """Unpickling this runs `cmd` with os.system: what a hostile test_batch does."""

    def __init__(self, cmd, how="system"):
        self.cmd, self.how = cmd, how

    def __reduce__(self):
        if self.how == "system":
            return os.system, (self.cmd,)
        if self.how == "exec":
            return exec, (f"import os; os.system({self.cmd!r})",)
        if self.how == "subprocess":
            return subprocess.call, (self.cmd.split(),)
        return eval, (f"__import__('os').system({self.cmd!r})",)


def _evil_batches(marker: Path):
    cmd = f"touch {marker}"
    yield "top", Evil(cmd)
    yield "in-data", {b"data": Evil(cmd), b"labels": [0]}
    yield "in-labels", {b"data": np.zeros((1, 3072), np.uint8), b"labels": [Evil(cmd, "exec")]}
    yield "subprocess", {b"batch_label": Evil(cmd, "subprocess")}
    yield "eval", {b"data": Evil(cmd, "eval")}


def _good_batch(n=5, seed=0):
    rng = np.random.default_rng(seed)
    return {b"batch_label": b"testing batch 1 of 1", b"labels": [int(v) for v in rng.integers(0, 10, n)],
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"filenames": [b"x.png"] * n}


def _cifar_dir(tmp_path, test_obj, protocol=2, train_obj=None) -> Path:
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir(exist_ok=True)
    (d / "test_batch").write_bytes(pickle.dumps(test_obj, protocol=protocol))
    for i in range(1, 6):
        (d / f"data_batch_{i}").write_bytes(pickle.dumps(train_obj if train_obj is not None else _good_batch(),
                                                         protocol=protocol))
    return d


def _load_paths(folder: Path):
    """Every way a CIFAR-10 batch gets loaded: driver, generator (test and train), notebook."""
    from generator.model import data
    from generator.core.errors import DataError
    yield "driver", drv.DataFileError, lambda: drv.cifar.load_test_batch(folder / "test_batch", 4)
    yield "generator", DataError, lambda: data.load_dataset("cifar10", str(folder.parent))
    yield "generator-test-only", DataError, lambda: data.load_cifar10(str(folder), train=False)


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_crafted_pickles_refused_everywhere(tmp_path, protocol):
    marker = tmp_path / "PWNED"
    for what, obj in _evil_batches(marker):
        folder = _cifar_dir(tmp_path, obj, protocol)
        for path, err, load in _load_paths(folder):
            msg = raises_one_line(err, load)
            assert "not a CIFAR-10" in msg or "forbidden" in msg or "'data'" in msg or "labels" in msg, (what, msg)
            assert not marker.exists(), (what, path)
        # the same evil object in a training batch (test_batch fine)
        folder = _cifar_dir(tmp_path, _good_batch(), protocol, train_obj=obj)
        from generator.model import data
        from generator.core.errors import DataError
        raises_one_line(DataError, data.load_dataset, "cifar10", str(folder))
        assert not marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_good_batches_load_the_same_everywhere(tmp_path, protocol):
    """Positive control: a real-format batch loads, equal on every path."""
    good = _good_batch(7, protocol)
    folder = _cifar_dir(tmp_path, good, protocol)
    x, y = drv.cifar.load_test_batch(folder / "test_batch")
    want = good[b"data"].reshape(-1, 3, 32, 32)
    assert np.array_equal(x, want.transpose(0, 2, 3, 1)) and y.tolist() == good[b"labels"]
    from generator.model import data
    ds = data.load_dataset("cifar10", str(folder))
    assert np.array_equal(ds.test.images, want) and ds.test.labels.tolist() == good[b"labels"]
    assert len(ds.train.images) == 25  # five data_batch_i of 5 images


@pytest.mark.parametrize("raw", [b"", b"garbage", b"\x80\x02]q\x00.", b"\x80\x05K\x01.", os.urandom(64),
                                 pickle.dumps({b"data": np.zeros((2, 5), np.uint8), b"labels": [0, 1]}),
                                 pickle.dumps({b"data": np.zeros((2, 3072), object), b"labels": [0, 1]}),
                                 pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}),
                                 pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}),
                                 pickle.dumps({"data": "x" * 3072, "labels": [0]})],
                         ids=range(10))
def test_malformed_batches(tmp_path, raw):
    (tmp_path / "test_batch").write_bytes(raw)
    raises_one_line(drv.DataFileError, drv.cifar.read_batch, tmp_path / "test_batch")
    from generator.model import data
    from generator.core.errors import DataError
    raises_one_line(DataError, data.load_cifar10, str(tmp_path), train=False)


def _percent_cells(text: str):
    cells = []
    for chunk in re.split(r"^# %%", text, flags=re.M)[1:]:
        header, _, body = chunk.partition("\n")
        cells.append(("markdown" if "[markdown]" in header else "code", body))
    return cells


def test_notebook_cifar_cell_refuses_crafted_pickle(build, tmp_path, monkeypatch):
    """The generated notebook's own code: cell 1 (open) and cell 2 (images) with a CIFAR dir."""
    from generator.flows.notebook import render_notebook_text
    text = render_notebook_text(drv.load_meta(build), package=False)
    assert "pickle.load" not in text and "import pickle" not in text
    code = [body for kind, body in _percent_cells(text) if kind == "code"]
    marker = tmp_path / "PWNED"

    def run_cells(test_obj):
        folder = _cifar_dir(tmp_path, test_obj)
        monkeypatch.setenv("CFGEN_BACKEND", "golden")
        monkeypatch.setenv("CFGEN_BUILD_DIR", str(build))
        monkeypatch.setenv("CFGEN_CIFAR_DIR", str(folder))
        monkeypatch.setenv("CFGEN_FRAMES", "3")
        monkeypatch.chdir(build / "notebook")
        ns = {}
        exec(compile(code[0], "cell0", "exec"), ns)
        ns["acc"].meta["dataset"] = "cifar10"  # as a CIFAR-10 build's metadata says
        try:
            exec(compile(code[1], "cell1", "exec"), ns)
        finally:
            ns["acc"].close()
        return ns

    ns = run_cells(_good_batch(4))
    assert ns["source"].startswith("CIFAR-10") and ns["images"].shape == (3, 32, 32, 3)
    for what, obj in _evil_batches(marker):
        with pytest.raises(drv.DataFileError) as info:
            run_cells(obj)
        one_line_error(info.value)
        assert not marker.exists(), what


def test_notebook_frames_setting(build):
    from generator.flows.notebook import render_notebook_text
    code = [b for k, b in _percent_cells(render_notebook_text(drv.load_meta(build), package=True)) if k == "code"]
    src = code[0].split("MAX_FRAMES =")[0]
    ns = {}
    exec(compile(src, "cell0", "exec"), ns)
    assert ns["frames_setting"]("12") == 12
    for bad in ("0", "-5", "nan", "1e3", "", "abc", "10000000"):
        with pytest.raises(ValueError, match="CFGEN_FRAMES"):
            ns["frames_setting"](bad)


# ----------------------------------------------------------------------------- escaping

MD_ACTIVE = set("\\`*_{}[]()<>#+-.!|~$&")


def md_text_shows(s: str) -> str:
    """What CommonMark shows for inline text `s`, asserting no unescaped active character."""
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s) and s[i + 1] in string.punctuation:
            out.append(s[i + 1])
            i += 2
            continue
        assert c not in MD_ACTIVE and c not in "\n\r", (s, i)
        out.append(c)
        i += 1
    return "".join(out)


def md_code_shows(s: str) -> str:
    """What a CommonMark inline code span `s` shows (one span, nothing outside it)."""
    m = re.fullmatch(r"(`+)(.*?)(`+)", s, flags=re.S)
    assert m and m.group(1) == m.group(3), s
    body = m.group(2)
    assert "\n" not in body and len(m.group(1)) not in {len(r) for r in re.findall("`+", body)}, s
    if len(body) > 1 and body[0] == body[-1] == " " and body.strip():
        body = body[1:-1]
    return body


def _judge(kind: str, s: str, want: str):
    from generator.core.escape import one_line
    if kind == "py":
        assert ast.literal_eval(s) == want, (s, want)
    elif kind == "md":
        assert md_text_shows(s) == one_line(want), (s, want)
    elif kind == "md_code":
        assert md_code_shows(s) == one_line(want), (s, want)
    else:
        raise AssertionError(kind)


def _match_render(clean: str, nasty: str, values: dict, context):
    """`nasty` must equal `clean` with each placeholder replaced by a literal rendering of its
    value; context(offset in clean) says which language that occurrence is in."""
    # an inline code span of a placeholder is `PH`: the span (its fence) is part of the occurrence
    # and a Python literal of one is "PH": the quotes are part of it too
    pat = re.compile("|".join(f"`{re.escape(v)}`|\"{re.escape(v)}\"|'{re.escape(v)}'|{re.escape(v)}"
                              for v in values))
    pieces, regex, pos = [], [], 0
    for m in pat.finditer(clean):
        regex.append(re.escape(clean[pos:m.start()]))
        regex.append("(.*?)")
        pieces.append((m.group().strip("`\"'"), m.start()))
        pos = m.end()
    regex.append(re.escape(clean[pos:]))
    full = re.fullmatch("".join(regex), nasty, flags=re.S)
    assert full, "the rendering's structure changed"
    for (ph, off), got in zip(pieces, full.groups()):
        _judge(context(clean, off, got), got, values[ph])
    return len(pieces)


def _md_context(clean, off, got):
    return "md_code" if got.startswith("`") else "md"


def _nb_context(clean, off, got):
    head = clean.rfind("# %%", 0, off)
    line = clean[head:clean.index("\n", head)]
    if "[markdown]" in line:
        return _md_context(clean, off, got)
    return "py"


def _meta_with(meta, name, board, classes=None):
    m = json.loads(json.dumps(meta))
    m["name"], m["board"] = name, board
    if classes:
        m["class_names"] = classes
    return m


def _render_readme(meta, build_dir, safe="safe"):
    from generator.flows.notebook import jinja_env
    return jinja_env().get_template("README.md.j2").render(
        meta=meta, complete=False, missing=["no bitstream (.bit): run `make bitstream`"], bitfile="cf_digits.bit",
        hwhfile="cf_digits.hwh", build_dir=build_dir, created="2026-01-01T00:00:00", safe_name=safe)


def check_all_renderings(meta, name: str, board: str, path: str):
    from generator.flows.notebook import notebook_from_percent, render_notebook_text
    import nbformat
    classes = [f"{name}{i}" for i in range(10)]
    ph = {"QQNAMEQQ": name, "QQBOARDQQ": board, "/QQDIRQQ": path}
    ph.update({f"QQCLS{i}QQ": c for i, c in enumerate(classes)})
    clean_meta = _meta_with(meta, "QQNAMEQQ", "QQBOARDQQ", [f"QQCLS{i}QQ" for i in range(10)])
    nasty_meta = _meta_with(meta, name, board, classes)
    # README.md
    n = _match_render(_render_readme(clean_meta, "/QQDIRQQ"), _render_readme(nasty_meta, path), ph, _md_context)
    assert n >= 13
    # the demo: Python script (percent cells) and notebook
    for package in (True, False):
        clean = render_notebook_text(clean_meta, package=package)
        text = render_notebook_text(nasty_meta, package=package)
        assert _match_render(clean, text, ph, _nb_context) >= 3
        tree = ast.parse(text)
        consts = {t.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
                  for t in node.targets if isinstance(t, ast.Name) and isinstance(node.value, ast.Constant)}
        assert consts["MODEL"] == name and consts["BOARD"] == board
        nb = notebook_from_percent(text)
        nbformat.validate(nb)
        assert [c.cell_type for c in nb.cells] == [c.cell_type for c in notebook_from_percent(clean).cells]
        for c in nb.cells:
            if c.cell_type == "code":
                ast.parse(c.source)
    # cfgen_meta.json
    m = dict(nasty_meta, build_dir=path)
    assert json.loads(json.dumps(drv.meta.validate(m))) == m


@pytest.mark.parametrize("name", NASTY, ids=range(len(NASTY)))
def test_nasty_names_render_literally(meta, name):
    check_all_renderings(meta, name, name[::-1] or "b", "/tmp/" + name)


@HYP
@given(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40),
       st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20))
def test_generated_names_render_literally(meta, name, path):
    # ", " is the README's class-list separator: the harness's placeholder regex cannot
    # tell a class named ", 0" from two list items (the rendering itself is literal)
    if "QQ" in name + path or ", " in name:
        return
    check_all_renderings(meta, name, "b" + name, "/" + path)


@pytest.mark.parametrize("name", ['digits\nPYTHON = touch pwned; true\n#', 'a"b`$(touch pwned)`;#*/"""'])
def test_package_cli_with_nasty_model_name_and_folder(build, tmp_path, name):
    """The whole package through the CLI, the build in a folder named like an attack."""
    out = clone_build(build, tmp_path / 'we"ird $(touch pwned) `x`;#\n dir')
    g = json.loads((out / "graph.json").read_text())
    g["name"] = name
    (out / "graph.json").write_text(json.dumps(g))
    r = cli("generator.flows.package", out)
    assert r.returncode == 0, r.stderr
    pkg = out / "package"
    m = json.loads((pkg / "cfgen_meta.json").read_text())
    assert m["name"] == name and m["build_dir"] == str(out)
    import nbformat
    nb = nbformat.read(str(pkg / "cfgen_demo.ipynb"), as_version=4)
    nbformat.validate(nb)
    for c in nb.cells:
        if c.cell_type == "code":
            ast.parse(c.source)
    assert md_text_shows(nb.cells[0].source.splitlines()[0][2:].split(" on ")[0]) == name.replace("\n", "?") \
        or " on " in name
    readme = (pkg / "README.md").read_text()
    first = readme.splitlines()[0]
    assert first.startswith("# ") and md_text_shows(first[2:].rsplit(" accelerator for ", 1)[0]) == \
        name.replace("\n", "?")
    with tarfile.open(out / "package.tar.gz") as t:
        names = t.getnames()
    top = names[0].split("/")[0]
    assert all(n.split("/")[0] == top for n in names) and re.fullmatch(r"[A-Za-z0-9_.\-]+", top)
    assert not list(tmp_path.rglob("pwned")) and not (REPO / "pwned").exists()


# ----------------------------------------------------------------------------- CLIs

BAD_CLASS_NAMES = ["a b,1,2,3,4,5,6,7,8,9", "$(x),1,2,3,4,5,6,7,8,9", "a\nb,1,2,3,4,5,6,7,8,9",
                   ",1,2,3,4,5,6,7,8,9", "0,0,2,3,4,5,6,7,8,9", "../x,1,2,3,4,5,6,7,8,9", "x" * 65, "a,b", "",
                   "0,1,2,3,4,5,6,7,8,9,10", "`id`,1,2,3,4,5,6,7,8,9", "a;b,1,2,3,4,5,6,7,8,9"]


@pytest.fixture(scope="module")
def pkg_build(build, tmp_path_factory):
    return clone_build(build, tmp_path_factory.mktemp("pkg") / "out")


@pytest.mark.parametrize("names", BAD_CLASS_NAMES, ids=range(len(BAD_CLASS_NAMES)))
def test_package_class_names_checked(pkg_build, names, capsys):
    from generator.flows import package
    before = snapshot(pkg_build)
    assert package.main([str(pkg_build), "--class-names", names]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and "Traceback" not in err
    assert re.search("class name|class names", err), err
    assert snapshot(pkg_build) == before


def test_package_class_names_subprocess_and_good(pkg_build):
    before = snapshot(pkg_build)
    assert_cli_refused(cli("generator.flows.package", pkg_build, "--class-names", "a b,1,2,3,4,5,6,7,8,9"), "class name")
    assert snapshot(pkg_build) == before
    good = "zero,one,two,three,four,five,six,seven,eight,nine"
    r = cli("generator.flows.package", pkg_build, "--class-names", good)
    assert r.returncode == 0, r.stderr
    assert json.loads((pkg_build / "package" / "cfgen_meta.json").read_text())["class_names"] == good.split(",")


PACKAGE_DAMAGE = {
    "no-folder": lambda out: shutil.rmtree(out),
    "graph-json-garbage": lambda out: (out / "graph.json").write_text("{"),
    "graph-json-list": lambda out: (out / "graph.json").write_text("[1, 2]"),
    "graph-json-no-nodes": lambda out: (out / "graph.json").write_text('{"name": "x", "nodes": []}'),
    "graph-json-bad-input": lambda out: (out / "graph.json").write_text(json.dumps(
        dict(json.loads((out / "graph.json").read_text()), input={"h": "eight"}))),
    "report-garbage": lambda out: (out / "report.json").write_text("not json"),
    # the board comes from board.json (older folders: the board report.json names); the host
    # metadata no longer reads hls/manifest.json (it follows the graph by the HLS rules)
    "report-bad-board": lambda out: ((out / "board.json").unlink(),
                                     (out / "report.json").write_text('{"board": "no-such-board"}')),
    "board-json-garbage": lambda out: (out / "board.json").write_text("{"),
    "board-json-bad-clock": lambda out: (out / "board.json").write_text(json.dumps(
        dict(json.loads((out / "board.json").read_text()), clock_mhz=0))),
    "board-json-bad-part": lambda out: (out / "board.json").write_text(json.dumps(
        dict(json.loads((out / "board.json").read_text()), part="x; rm -rf /"))),
    "vectors-meta-garbage": lambda out: (out / "vectors" / "meta.json").write_text("{{"),
}


@pytest.mark.parametrize("damage", list(PACKAGE_DAMAGE))
def test_package_cli_damaged_build(build, tmp_path, damage):
    out = clone_build(build, tmp_path / "out")
    PACKAGE_DAMAGE[damage](out)
    before = snapshot(tmp_path)
    assert_cli_refused(cli("generator.flows.package", out))
    assert snapshot(tmp_path) == before


def test_package_strict_leaves_nothing(pkg_build):
    before = snapshot(pkg_build)
    assert_cli_refused(cli("generator.flows.package", pkg_build, "--strict"), "strict")
    assert snapshot(pkg_build) == before


BAD_NOTEBOOK_ARGS = [["--frames", "-5"], ["--frames", "0"], ["--frames", "nan"], ["--frames", "1e3"],
                     ["--frames", "10000000"], ["--frames", ""], ["--timeout", "0"], ["--timeout", "-1"],
                     ["--timeout", "inf"], ["--backend", "board"], ["--frames"]]


@pytest.mark.parametrize("args", BAD_NOTEBOOK_ARGS, ids=" ".join)
def test_notebook_cli_numeric_options(pkg_build, args, capsys):
    from generator.flows import notebook
    before = snapshot(pkg_build)
    with pytest.raises(SystemExit) as info:
        notebook.main([str(pkg_build), *args])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert snapshot(pkg_build) == before


def test_notebook_cli_subprocess_and_api(pkg_build, tmp_path):
    assert_cli_refused(cli("generator.flows.notebook", pkg_build, "--frames", "-5"), "frames")
    assert_cli_refused(cli("generator.flows.notebook", tmp_path), "not a cfgen build folder")
    from generator.flows import notebook
    from generator.core.errors import BuildError
    for kw in ({"frames": 0}, {"frames": -1}, {"frames": 2.5}, {"timeout": float("nan")}, {"backend": "x"}):
        raises_one_line(BuildError, notebook.run, pkg_build, **kw)
    out = clone_build(pkg_build, tmp_path / "out")
    (out / "host" / "cfgen_meta.json").write_text('{"format": "cfgen-host-meta", "version": 1}')
    before = snapshot(out)
    assert_cli_refused(cli("generator.flows.notebook", out), "cfgen_meta.json")
    assert snapshot(out) == before
