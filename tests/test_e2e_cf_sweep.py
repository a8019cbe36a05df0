"""NIN with every CF n builds and passes C simulation (separate file so pytest-xdist can
run it beside the other end-to-end tests)."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli
from test_e2e import check_csim


@pytest.mark.slow
@pytest.mark.parametrize("cf", [1, 2, 4, 8])
def test_nin_every_cf_builds_and_passes_csim(cf, tmp_path):
    ckpt = tmp_path / f"nin_cf{cf}.pt"
    run_cli("init", "nin", "--cf", cf, "-o", ckpt)
    out = tmp_path / "out"
    run_cli("build", ckpt, "--board", "pynq-z2", "-o", out, "--frames", 3)
    graph = json.loads((out / "graph.json").read_text())
    mac = next(n for n in graph["nodes"] if n["kind"] == "scalemac")
    assert mac["n"] == cf
    check_csim(out, 3)
