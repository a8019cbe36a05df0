"""`build` under bad input: options, board files, folding files, output paths, sizes,
signals and concurrent builds. Every case: non-zero exit, exactly one `error:` line, no
traceback, and nothing on disk that was not there before (or, for a replaced build
folder, exactly the new build)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from generator import cli
from generator.model import spec as specmod
from generator.model.checkpoint import save_checkpoint
from generator.model.network import CFNet, calibrate_batchnorm, pixels_to_input
from generator.core.outdir import MARKER

REPO = Path(__file__).resolve().parent.parent
BOARD = json.loads((REPO / "boards" / "pynq-z2.json").read_text())


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    spec = specmod.resolve(specmod.load_spec("digits"), 4, "xnor")
    torch.manual_seed(0)
    model = CFNet(spec)
    rng = np.random.default_rng(0)
    calibrate_batchnorm(model, [pixels_to_input(rng.integers(0, 256, (32, 1, 8, 8), dtype=np.uint8))])
    path = tmp_path_factory.mktemp("ckpt") / "digits.pt"
    save_checkpoint(path, model)
    return path


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


def run(args, capsys) -> tuple[int, str]:
    capsys.readouterr()
    try:
        rc = cli.main([str(a) for a in args])
    except SystemExit as exc:          # argparse usage errors
        rc = exc.code
    err = capsys.readouterr().err
    return rc, err


def assert_one_error(rc: int, err: str, match: str | None = None) -> None:
    assert rc != 0
    assert "Traceback" not in err
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    if match:
        assert match in lines[0], lines[0]


def refused(tmp_path, capsys, args, match=None):
    before = snapshot(tmp_path)
    rc, err = run(args, capsys)
    assert_one_error(rc, err, match)
    assert snapshot(tmp_path) == before
    return err


# ------------------------------------------------------------------ numeric options

@pytest.mark.parametrize("opt,value,match", [
    ("--fps", "0", "--fps"), ("--fps", "-5", "--fps"), ("--fps", "nan", "--fps"),
    ("--fps", "inf", "--fps"), ("--fps", "1e300", "--fps"), ("--fps", "abc", "--fps"),
    ("--frames", "0", "--frames"), ("--frames", "-1", "--frames"),
    ("--frames", str(10**12), "--frames"), ("--frames", "1.5", "--frames"),
    ("--seed", "-1", "--seed"), ("--seed", str(2**70), "--seed"),
    ("--util", "LUT=inf", "--util"), ("--util", "LUT=nan", "--util"), ("--util", "LUT=0", "--util"),
    ("--util", "LUT=1.5", "--util"), ("--util", "LUT=0.5,LUT=0.6", "twice"),
    ("--util", "XYZ=0.5", "--util"), ("--util", "LUT", "--util"), ("--util", ",", "--util"),
    ("--board", "no-such-board", "unknown board"), ("--board", "../boards/pynq-z2", "unknown board"),
    ("--mult", "dsp3", "--mult"),
])
def test_bad_numeric_and_choice_options(tmp_path, capsys, ckpt, opt, value, match):
    args = ["build", ckpt, "--board", "pynq-z2", "-o", tmp_path / "out", opt, value]
    if opt == "--board":
        args = ["build", ckpt, "-o", tmp_path / "out", "--board", value]
    refused(tmp_path, capsys, args, match)


@settings(max_examples=40, deadline=None)
@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers()))
def test_fps_is_refused_or_used(tmp_path_factory, ckpt, fps):
    from generator.build import check_options
    from generator.core.errors import BuildError
    ok = isinstance(fps, (int, float)) and fps == fps and 0 < fps <= 1e9
    if ok:
        check_options(1, fps, 0)
    else:
        with pytest.raises(BuildError, match="--fps"):
            check_options(1, fps, 0)


# ------------------------------------------------------------------ board files

def _board_file(tmp_path, **changes) -> Path:
    board = dict(BOARD)
    for k, v in changes.items():
        if v is KeyError:
            board.pop(k)
        else:
            board[k] = v
    path = tmp_path / "board.json"
    path.write_text(json.dumps(board))
    return path


@pytest.mark.parametrize("changes,match", [
    ({"clock_mhz": 0}, "clock_mhz"), ({"clock_mhz": -100}, "clock_mhz"),
    ({"clock_mhz": "100"}, "clock_mhz"), ({"clock_mhz": 1e9}, "clock_mhz"),
    ({"clock_mhz": True}, "clock_mhz"), ({"resources": {"LUT": 0, "FF": 1, "BRAM36": 1, "DSP": 1}}, "LUT"),
    ({"resources": {"LUT": 1.5, "FF": 1, "BRAM36": 1, "DSP": 1}}, "LUT"),
    ({"resources": {"LUT": 100, "FF": 1, "BRAM36": 1}}, "DSP"),
    ({"resources": {"LUT": 100, "FF": 1, "BRAM36": 1, "DSP": 1, "GPU": 1}}, "GPU"),
    ({"resources": [1, 2]}, "resources"), ({"resources": KeyError}, "missing"),
    ({"name": 7}, "name"), ({"name": ["x"]}, "name"), ({"part": None}, "part"), ({"part": ""}, "part"),
    ({"family": "stratix"}, "family"), ({"ps": "none"}, "ps"), ({"dma_data_width": 48}, "dma_data_width"),
    ({"dma_data_width": "64"}, "dma_data_width"), ({"hp_port": 3}, "hp_port"),
    ({"extra_field": 1}, "unknown field"), ({"description": "x" * 300}, "description"),
])
def test_bad_board_fields(tmp_path, capsys, ckpt, changes, match):
    board = _board_file(tmp_path, **changes)
    refused(tmp_path, capsys, ["build", ckpt, "--board", board, "-o", tmp_path / "out"], match)


@pytest.mark.parametrize("content", [b"", b"{", b"\xff\xfe\x00garbage", b"[1, 2]", b"null",
                                     b"\x89PNG\r\n\x1a\n" + bytes(range(256)), b"[" * 200_000,
                                     b'{"name": NaN}'])
def test_board_file_not_json(tmp_path, capsys, ckpt, content):
    path = tmp_path / "board.json"
    path.write_bytes(content)
    refused(tmp_path, capsys, ["build", ckpt, "--board", path, "-o", tmp_path / "out"], "board")


def test_custom_board_file_builds_and_is_recorded(tmp_path, capsys, ckpt):
    path = _board_file(tmp_path, name="my-board", clock_mhz=125)
    rc, err = run(["build", ckpt, "--board", path, "-o", tmp_path / "out", "--frames", 2], capsys)
    assert rc == 0, err
    assert json.loads((tmp_path / "out" / "board.json").read_text())["clock_mhz"] == 125
    assert json.loads((tmp_path / "out" / "report.json").read_text())["board"] == "my-board"


# ------------------------------------------------------------------ folding files

@pytest.mark.parametrize("content", [b"", b"\x00\x01\x02\xff", b"\xff\xfe", b"[]", b'{"conv1": 3}',
                                     b"{" * 100_000, b'{"nosuchnode": {"pe": 1, "simd": 1}}',
                                     b'{"conv1": {"pe": -1, "simd": 1}}',
                                     b'{"conv1": {"pe": "x", "simd": 1}}',
                                     b'{"conv1": {"pe": 1e400, "simd": 1}}'])
def test_bad_folding_file(tmp_path, capsys, ckpt, content):
    path = tmp_path / "fold.json"
    path.write_bytes(content)
    refused(tmp_path, capsys, ["build", ckpt, "--board", "pynq-z2", "--folding", path, "-o",
                               tmp_path / "out"])


def test_folding_file_is_a_folder(tmp_path, capsys, ckpt):
    (tmp_path / "d").mkdir()
    refused(tmp_path, capsys, ["build", ckpt, "--board", "pynq-z2", "--folding", tmp_path / "d",
                               "-o", tmp_path / "out"])


# ------------------------------------------------------------------ output paths and --force

def test_output_in_proc_is_refused(tmp_path, capsys, ckpt):
    refused(tmp_path, capsys, ["build", ckpt, "--board", "pynq-z2", "-o", "/proc/cfgen-out"])


def test_output_below_a_regular_file(tmp_path, capsys, ckpt):
    (tmp_path / "file").write_text("mine")
    refused(tmp_path, capsys, ["build", ckpt, "--board", "pynq-z2", "-o", tmp_path / "file" / "out"],
            "not a folder")


@pytest.mark.parametrize("force", [False, True])
def test_output_is_an_existing_file(tmp_path, capsys, ckpt, force):
    (tmp_path / "out").write_text("mine")
    refused(tmp_path, capsys, ["build", ckpt, "--board", "pynq-z2", "-o", tmp_path / "out"]
            + (["--force"] if force else []))
    assert (tmp_path / "out").read_text() == "mine"


@pytest.mark.parametrize("marker", [None, "", "garbage", '{"format": "cfgen-build", "version": 99}',
                                    '{"format": "other", "version": 1}'])
def test_force_never_deletes_a_folder_cfgen_did_not_write(tmp_path, capsys, ckpt, marker):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "thesis.tex").write_text("years of work")
    if marker is not None:
        (user / MARKER).write_text(marker)
    refused(tmp_path, capsys, ["build", ckpt, "--board", "pynq-z2", "-o", user, "--force"],
            "not a cfgen build folder")
    assert (user / "thesis.tex").read_text() == "years of work"


def test_force_replaces_a_cfgen_build_folder(tmp_path, capsys, ckpt):
    out = tmp_path / "out"
    assert run(["build", ckpt, "--board", "pynq-z2", "-o", out, "--frames", 2], capsys)[0] == 0
    assert (out / MARKER).is_file()
    refused(tmp_path, capsys, ["build", ckpt, "--board", "pynq-z2", "-o", out, "--frames", 2],
            "--force")
    (out / "stale.txt").write_text("old")
    assert run(["build", ckpt, "--board", "pynq-z2", "-o", out, "--frames", 3, "--force"], capsys)[0] == 0
    assert not (out / "stale.txt").exists()
    assert json.loads((out / "vectors" / "meta.json").read_text())["frames"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_symlinked_output_is_refused(tmp_path, capsys, ckpt):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    refused(tmp_path, capsys, ["build", ckpt, "--board", "pynq-z2", "-o", tmp_path / "link", "--force"],
            "symbolic link")


def test_failed_build_removes_the_folders_it_created(tmp_path, capsys, ckpt):
    # A folding that does not fit fails after the output's parents were made.
    path = tmp_path / "fold.json"
    path.write_text('{"conv1": {"pe": 3, "simd": 1}}')
    before = snapshot(tmp_path)
    rc, err = run(["build", ckpt, "--board", "pynq-z2", "--folding", path, "-o",
                   tmp_path / "a" / "b" / "out"], capsys)
    assert_one_error(rc, err)
    assert snapshot(tmp_path) == before


# ------------------------------------------------------------------ model sizes

def _spec_file(tmp_path, mutate) -> Path:
    spec = specmod.load_spec("digits")
    mutate(spec)
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return path


@pytest.mark.parametrize("mutate,match", [
    (lambda s: s["layers"][0].update(out=100_000), "<= 65536"),
    (lambda s: s["input"].update(height=100_000, width=100_000), "<= 65536"),
    (lambda s: s["input"].update(channels=60_000, height=60_000, width=60_000), "values per image"),
    (lambda s: s.update(layers=[{"type": "conv", "out": 65536, "kernel": 3, "padding": 1}] * 2,
                        num_classes=None) or s.pop("num_classes"), "weights"),
    (lambda s: s.update(layers=[{"type": "relu"}] * 2000), "layers"),
])
def test_oversized_specs_are_refused_before_allocation(tmp_path, capsys, mutate, match):
    path = _spec_file(tmp_path, mutate)
    refused(tmp_path, capsys, ["init", path, "--cf", 1, "-o", tmp_path / "m.pt"], match)


def test_deeply_nested_spec_json(tmp_path, capsys):
    path = tmp_path / "deep.json"
    path.write_text('{"name": "x", "input": ' + "[" * 200_000 + "]" * 200_000 + "}")
    refused(tmp_path, capsys, ["init", path, "--cf", 1, "-o", tmp_path / "m.pt"])


def test_deeply_nested_spec_inside_a_checkpoint(tmp_path, capsys, ckpt):
    payload = torch.load(ckpt, weights_only=True)
    deep: list = []
    for _ in range(400):           # torch.save itself recurses: 400 is what it can write
        deep = [deep]
    payload["spec"]["description"] = deep
    torch.save(payload, tmp_path / "deep.pt")
    refused(tmp_path, capsys, ["build", tmp_path / "deep.pt", "--board", "pynq-z2", "-o",
                               tmp_path / "out"])


# ------------------------------------------------------------------ signals and concurrency

def _start_build(tmp_path, ckpt, out, frames=30000):
    # No .pyc: modules imported after the staging folder is made are compiled from source,
    # where a SIGTERM used to be swallowed (the constant folding case in generator/core/signals.py).
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.Popen([sys.executable, "-m", "generator", "build", str(ckpt), "--board",
                             "pynq-z2", "-o", str(out), "--frames", str(frames)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for(cond, timeout=120.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_signal_during_build_leaves_nothing(tmp_path, ckpt, sig):
    work = tmp_path / "w"
    work.mkdir()
    proc = _start_build(work, ckpt, work / "out")
    staged = _wait_for(lambda: any(p.name.startswith(".out.") and p.is_dir() for p in work.iterdir())
                       or proc.poll() is not None)
    assert staged and proc.poll() is None, "the build ended before it could be interrupted"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err
    assert_one_error(proc.returncode, err, signal.Signals(sig).name)
    assert list(work.iterdir()) == []


_FOLDING_SCRIPT = """
import signal, sys
from generator.core import signals
signal.signal(signal.SIGALRM, signals._raise)
source = "\\n".join(f"x{i} = 2**62" for i in range(100_000))
signal.setitimer(signal.ITIMER_REAL, 0.02)       # lands while compile() parses and folds
try:
    compile(source, "<many constants>", "exec")
except signals.Terminated as exc:
    sys.exit(0 if exc.signum == signal.SIGALRM else 3)
sys.exit(1 if signals.received() else 2)          # 1: handled and swallowed, 2: too late
"""


def test_a_signal_during_constant_folding_is_not_swallowed():
    # The root cause of the SIGTERM-exits-0 defect: CPython's constant folder (ast_opt.c
    # make_const) clears any error raised while folding `2**62` except a KeyboardInterrupt,
    # and a Python signal handler may run right there. Terminated is a KeyboardInterrupt.
    r = subprocess.run([sys.executable, "-c", _FOLDING_SCRIPT], cwd=REPO, timeout=120,
                       capture_output=True, text=True)
    assert r.returncode == 0, {1: "the signal's exception was swallowed by compile()",
                               2: "compile() ended before the timer"}.get(r.returncode, r.stderr)


def test_a_swallowed_signal_still_cancels_the_build(tmp_path, capsys, ckpt):
    from generator.core import signals
    try:
        signals._raise(signal.SIGTERM, None)     # received, its exception lost on the way
    except signals.Terminated:
        pass
    before = snapshot(tmp_path)
    rc, err = run(["build", ckpt, "--board", "pynq-z2", "-o", tmp_path / "out", "--frames", 2],
                  capsys)
    assert rc == 128 + signal.SIGTERM, err
    assert_one_error(rc, err, "SIGTERM")
    assert snapshot(tmp_path) == before
    assert signals.received() is None          # reported once, then forgotten


@pytest.mark.parametrize("force", [False, True])
def test_a_signal_during_the_swap_never_tears_it(tmp_path, capsys, ckpt, monkeypatch, force):
    from generator.core import outdir, signals
    out = tmp_path / "out"
    if force:
        assert run(["build", ckpt, "--board", "pynq-z2", "-o", out, "--frames", 2], capsys)[0] == 0
    real_replace = os.replace
    calls = []

    def replace(src, dst, **kw):               # SIGTERM arrives between the swap's renames
        real_replace(src, dst, **kw)
        if Path(dst) == out or Path(dst).parent.name.startswith(".out.old."):
            calls.append(dst)
            signals._raise(signal.SIGTERM, None)

    monkeypatch.setattr(outdir.os, "replace", replace)
    rc, err = run(["build", ckpt, "--board", "pynq-z2", "-o", out, "--frames", 3]
                  + (["--force"] if force else []), capsys)
    assert len(calls) == (2 if force else 1)
    assert rc == 128 + signal.SIGTERM, err
    assert_one_error(rc, err, "SIGTERM")
    # The signal came after the point of no return: the new build is whole, nothing else.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (out / MARKER).is_file()
    assert json.loads((out / "vectors" / "meta.json").read_text())["frames"] == 3


def test_sigint_during_start_up(tmp_path, ckpt):
    proc = subprocess.Popen([sys.executable, "-m", "generator", "build", str(ckpt), "--board",
                             "pynq-z2", "-o", str(tmp_path / "out")], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)          # inside the imports (torch takes seconds)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert_one_error(proc.returncode, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_held_lock_refuses_a_second_build(tmp_path, capsys, ckpt):
    import fcntl
    lock = tmp_path / ".out.lock"
    with open(lock, "w") as fd:
        fcntl.flock(fd, fcntl.LOCK_EX)
        refused(tmp_path, capsys, ["build", ckpt, "--board", "pynq-z2", "-o", tmp_path / "out"],
                "another build is writing")
    lock.unlink()
    assert run(["build", ckpt, "--board", "pynq-z2", "-o", tmp_path / "out", "--frames", 2],
               capsys)[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]      # no lock file left


def test_two_builds_into_one_folder(tmp_path, ckpt):
    work = tmp_path / "w"
    work.mkdir()
    first = _start_build(work, ckpt, work / "out")
    second = _start_build(work, ckpt, work / "out", frames=3)
    _, err1 = first.communicate(timeout=300)
    _, err2 = second.communicate(timeout=300)
    # Exactly one wins the lock; the other is refused with one line (never both "succeed"
    # into one folder, never a torn folder).
    assert sorted([first.returncode, second.returncode]) == [0, 2], (err1, err2)
    loser = err2 if second.returncode else err1
    assert_one_error(2, loser)
    assert "another build is writing" in loser or "exists" in loser
    frames = json.loads((work / "out" / "vectors" / "meta.json").read_text())["frames"]
    assert frames == (30000 if first.returncode == 0 else 3)
    assert sorted(p.name for p in work.iterdir()) == ["out"]


def test_force_refuses_when_an_input_lies_inside_the_folder(tmp_path, capsys, ckpt):
    out = tmp_path / "out"
    assert run(["build", ckpt, "--board", "pynq-z2", "-o", out, "--frames", 2], capsys)[0] == 0
    inside = out / "m.pt"
    inside.write_bytes(ckpt.read_bytes())
    refused(tmp_path, capsys, ["build", inside, "--board", "pynq-z2", "-o", out, "--force"],
            "lies inside")
    assert inside.is_file()


_WEIRD_PATHS = ["", " ", "-", "--", ".", "..", "/", "/proc/self/mem", "/dev/zero", "/dev/null",
                "/proc", "/etc", "a" * 5000, "x/" * 3000, "\u2603", "$(touch pwned)", "`id`",
                "a\nb", "a\rb", "~", "*", "?", "[a]", "nul\x01", "/proc/self/fd/0"]


@settings(max_examples=60, deadline=None)
@given(slot=st.sampled_from(["checkpoint", "-o", "--board", "--folding", "--data-dir"]),
       value=st.one_of(st.sampled_from(_WEIRD_PATHS),
                       st.text(alphabet=st.characters(blacklist_characters="\0",
                                                      blacklist_categories=("Cs",)), max_size=30)))
def test_weird_paths_never_traceback(tmp_path_factory, ckpt, slot, value):
    import contextlib
    import io
    work = tmp_path_factory.mktemp("w")
    args = {"checkpoint": str(ckpt), "-o": str(work / "out"), "--board": "pynq-z2",
            "--folding": None, "--data-dir": None}
    args[slot] = value
    argv = ["build", args["checkpoint"], "--board", args["--board"], "-o", args["-o"], "--frames", "2"]
    if args["--folding"] is not None:
        argv += ["--folding", args["--folding"]]
    if args["--data-dir"] is not None:
        argv += ["--data", "cifar10", "--data-dir", args["--data-dir"]]
    err = io.StringIO()
    cwd = os.getcwd()
    os.chdir(work)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                rc = cli.main(argv)
            except SystemExit as exc:
                rc = exc.code
    finally:
        os.chdir(cwd)
    text = err.getvalue()
    assert "Traceback" not in text
    if rc != 0:
        assert_one_error(rc, text)
    # no staging debris (dot folders); a build that succeeded into `-o .name` is no debris
    made = (work / value).resolve() if slot == "-o" and rc == 0 else None
    assert not list(work.rglob("pwned"))
    assert not [d for d in work.glob(".*") if d.resolve() != made]
