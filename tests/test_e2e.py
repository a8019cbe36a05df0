"""End to end, as a user runs it: checkpoint -> build -> `make csim` / `make sim` in the
build folder, every layer bit-exact against the golden model's vectors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO, run_cli


def make(out, target, frames, timeout=1200):
    proc = subprocess.run(["make", "-C", str(out), target, f"FRAMES={frames}",
                           f"PYTHON={sys.executable}"], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"make {target} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def check_csim(out, frames):
    make(out, "csim", frames)
    res = json.loads((out / "csim" / "results.json").read_text())
    assert res["frames"] == frames
    assert res["bit_exact"] is True
    assert set(res["mismatches"]) == set(json.loads((out / "vectors" / "meta.json")
                                                    .read_text())["nodes"])
    assert all(v == 0 for v in res["mismatches"].values()), res["mismatches"]
    return res


def check_sim(out, frames):
    make(out, "sim", frames)
    res = json.loads((out / "sim" / "results.json").read_text())
    assert res["frames"] >= frames and res["bit_exact"] is True and res["mismatches"] == 0
    report = json.loads((out / "report.json").read_text())
    assert res["interval_cycles"] > 0 and res["latency_cycles"] >= res["interval_cycles"]
    # the analytic model predicts the measured interval
    assert abs(res["interval_cycles"] - report["predicted"]["interval_cycles"]) \
        <= 0.05 * res["interval_cycles"]
    return res


@pytest.mark.slow
def test_nin_cf16_csim_20_frames_and_rtl_sim_10_frames(nin_cf16, tmp_path):
    out = tmp_path / "nin"
    run_cli("build", nin_cf16, "--board", "pynq-z2", "-o", out, "--frames", 20)
    check_csim(out, 20)
    check_sim(out, 10)


@pytest.mark.slow
def test_trained_digits_csim_100_frames_and_rtl_sim(trained_digits, tmp_path):
    out = tmp_path / "digits"
    run_cli("build", trained_digits, "--board", "pynq-z2", "-o", out, "--frames", 100,
            "--data", "digits")
    meta = json.loads((out / "vectors" / "meta.json").read_text())
    assert meta["golden_acc"] >= 0.9
    check_csim(out, 100)
    check_sim(out, 20)


def test_bad_checkpoint_leaves_no_build_folder(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    out = tmp_path / "out"
    proc = run_cli("build", bad, "--board", "pynq-z2", "-o", out, check=False)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]


def test_unknown_board_lists_known_ones(nin_cf16, tmp_path):
    proc = run_cli("build", nin_cf16, "--board", "nope", "-o", tmp_path / "o", check=False)
    assert proc.returncode == 2
    assert "pynq-z2" in proc.stderr and "kv260" in proc.stderr
