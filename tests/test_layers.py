"""The package layout is the pipeline (docs/ARCHITECTURE.md): imports run one way,
core <- model <- hw <- backends <- flows <- the orchestration (build, cli, commands).
A module that imports a later stage fails here with the offending import named."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PKG = REPO / "generator"
STAGES = ["core", "model", "hw", "backends", "flows"]
TOP = {"build", "runtime_weights", "cli", "commands", "__main__"}   # the orchestration: may import anything


def _module(path: Path) -> tuple[str, str]:
    """(dotted module, dotted package it resolves relative imports against)."""
    parts = path.relative_to(REPO).with_suffix("").parts
    if parts[-1] == "__init__":
        mod = ".".join(parts[:-1])
        return mod, mod
    mod = ".".join(parts)
    return mod, mod.rsplit(".", 1)[0]


def imported(path: Path, src: str | None = None) -> set[str]:
    """Every generator module or package this file imports, as absolute dotted names."""
    _, pkg = _module(path)
    out = set()
    for node in ast.walk(ast.parse(path.read_text() if src is None else src)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.add(target)
            out.update(f"{target}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m.split(".")[0] == "generator"}


def stage_of(dotted: str) -> str | None:
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else None


def violations(path: Path, src: str | None = None) -> list[str]:
    own = stage_of(_module(path)[0])
    if own not in STAGES:
        return []
    bad = []
    for m in sorted(imported(path, src)):
        st = stage_of(m)
        if st in TOP or (st in STAGES and STAGES.index(st) > STAGES.index(own)):
            bad.append(m)
    return bad


def test_imports_run_one_way():
    bad = {str(f.relative_to(REPO)): v for f in sorted(PKG.rglob("*.py")) if (v := violations(f))}
    assert not bad, f"imports against the stage order {STAGES}: {bad}"


def test_every_module_sits_in_a_stage():
    loose = sorted(f.name for f in PKG.glob("*.py") if f.stem not in TOP | {"__init__"})
    assert not loose, f"modules outside the stage packages: {loose}"


@pytest.mark.parametrize("src,expect", [
    ("from ..backends import rtl\n", ["generator.backends", "generator.backends.rtl"]),
    ("from ..flows.report import render\n", ["generator.flows.report",
                                              "generator.flows.report.render"]),
    ("from ..build import build\n", ["generator.build", "generator.build.build"]),
    ("from ..core.errors import BuildError\n", []),
])
def test_the_check_can_fail(src, expect):
    """A hardware-side module that imports a backend, a flow or the orchestration is caught."""
    assert violations(PKG / "hw" / "probe.py", src) == expect


def test_cost_model_has_no_catch_all():
    src = (PKG / "hw" / "perf.py").read_text()
    assert "except Exception" not in src and "except:" not in src
