"""Hostile names and paths: refused where they enter, and inert in every generated file.

Two layers are checked separately. (1) Spec, checkpoint and board loading refuse any name
that is not a short safe token. (2) With that check switched off, a build from hostile
names still writes files whose meaning does not change: every line of every generated file
either equals the line of a build from a benign name, or is a comment in both, or differs
only by the escaped name; nothing executes when the Makefile runs; g++, Icarus, tclsh and
JSON still parse what they read.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.core import escape
from generator.model import spec as specmod
from generator.hw.boards import load_board
from generator.build import build, render_project_files
from generator.model.checkpoint import load_checkpoint, save_checkpoint
from generator.core.errors import BuildError, CheckpointError, SpecError
from generator.model.network import CFNet, calibrate_batchnorm, pixels_to_input
from generator.core.names import NAME_RE

REPO = Path(__file__).resolve().parent.parent

HOSTILE = [
    "digits\nPYTHON = touch pwned; true\n#",
    'a"b\'c',
    "$(touch pwned)",
    "`touch pwned`",
    "x; touch pwned",
    "[exec touch pwned]",
    "x */ int pwned; /*",
    'x"""; import os; os.system("touch pwned"); """',
    "back\\slash\\",
    "hash#tag",
    "${PWNED}",
    "<script>alert(1)</script>",
    "tab\there",
    "-rf",
    "caf\u00e9",
    "a" * 65,
    "",
    "..",
]


def _digits_model(name: str) -> CFNet:
    spec = specmod.resolve(specmod.load_spec("digits"), 4, "xnor")
    torch.manual_seed(0)
    model = CFNet(spec)
    rng = np.random.default_rng(0)
    calibrate_batchnorm(model, [pixels_to_input(rng.integers(0, 256, (32, 1, 8, 8), dtype=np.uint8))])
    model.spec["name"] = name
    return model


# ------------------------------------------------------------------ (1) refused at entry

@pytest.mark.parametrize("name", HOSTILE)
def test_spec_refuses_hostile_model_name(name):
    spec = specmod.load_spec("digits")
    spec["name"] = name
    with pytest.raises(SpecError, match="model name"):
        specmod.validate(spec)


@pytest.mark.parametrize("name", [n for n in HOSTILE if n] + ["9lives", "has-dash", "has.dot"])
def test_spec_refuses_hostile_layer_name(name):
    spec = specmod.load_spec("digits")
    spec["layers"][0]["name"] = name
    with pytest.raises(SpecError):
        specmod.validate(spec)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_model_name_accepted_iff_safe(name):
    spec = specmod.load_spec("digits")
    spec["name"] = name
    safe = bool(NAME_RE.fullmatch(name)) and len(name) <= 64
    if safe:
        assert specmod.validate(spec)["name"] == name
    else:
        with pytest.raises(SpecError):
            specmod.validate(spec)


def test_default_name_from_a_spec_file_stem_is_made_safe(tmp_path):
    spec = specmod.load_spec("digits")
    del spec["name"]
    path = tmp_path / "my net $(x).json"
    path.write_text(json.dumps(spec))
    assert NAME_RE.fullmatch(specmod.load_spec(str(path))["name"])


@pytest.mark.parametrize("name", HOSTILE[:8])
def test_checkpoint_with_hostile_name_is_refused(tmp_path, name):
    path = tmp_path / "bad.pt"
    save_checkpoint(path, _digits_model(name))
    with pytest.raises(CheckpointError, match="model name"):
        load_checkpoint(path)
    proc = subprocess.run([sys.executable, "-m", "generator", "build", str(path), "--board",
                           "pynq-z2", "-o", str(tmp_path / "out")], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pt"]


@pytest.mark.parametrize("field,value", [
    ("name", "pynq\nPYTHON = touch pwned"), ("name", "$(touch pwned)"),
    ("part", "xc7z020 [exec touch pwned]"), ("part", "a;b"),
    ("vivado_board_part", "x}{exec touch pwned}"), ("hp_port", "S_AXI_HP0 {1}] ; exec touch pwned ;#"),
    ("description", "two\nlines"), ("family", "xc7\n"), ("ps", "zynq7;"),
])
def test_board_file_with_hostile_field_is_refused(tmp_path, field, value):
    board = json.loads((REPO / "boards" / "pynq-z2.json").read_text())
    board[field] = value
    path = tmp_path / "b.json"
    path.write_text(json.dumps(board))
    with pytest.raises(BuildError, match=field):
        load_board(str(path))


def test_board_name_is_not_a_path_into_the_tree(tmp_path):
    with pytest.raises(BuildError, match="unknown board"):
        load_board("../boards/pynq-z2")


# ------------------------------------------------------------------ escaping primitives

@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\0"),
               max_size=60))
def test_make_value_expands_to_the_literal_word(tmp_path_factory, s):
    """A Makefile with `V ?= make_value(s)` runs `printf %s $(V)` and prints exactly s."""
    d = tmp_path_factory.mktemp("mk")
    (d / "Makefile").write_text(f"V ?= {escape.make_value(s)}\nall:\n\t@printf %s $(V) > out\n"
                                f"\t@printf %s {escape.make_recipe(s)} > out2\n")
    subprocess.run(["make", "-s", "-C", str(d)], check=True, capture_output=True, timeout=30)
    assert (d / "out").read_bytes().decode() == s
    assert (d / "out2").read_bytes().decode() == s


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), max_codepoint=0xFFFF), max_size=60))
def test_tcl_string_is_the_literal(tmp_path_factory, s):
    """(Characters beyond the BMP become '?': Tcl 8.6 strings are UCS-2 inside.)"""
    d = tmp_path_factory.mktemp("tcl")
    script = d / "t.tcl"
    script.write_text(f"set fd [open {escape.tcl_string(str(d / 'out'))} w]\nfconfigure $fd -encoding utf-8\n"
                      f"puts -nonewline $fd {escape.tcl_string(s)}\nclose $fd\n", encoding="utf-8")
    subprocess.run(["tclsh", str(script)], check=True, capture_output=True, timeout=30)
    assert (d / "out").read_bytes().decode("utf-8") == s


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_py_literal_and_comments(s):
    import ast
    assert ast.literal_eval(escape.py_literal(s)) == s
    for comment in (escape.c_comment(s), escape.make_comment(s)):
        assert "\n" not in comment and "\r" not in comment and not comment.endswith("\\")
        assert "*/" not in escape.c_comment(s)
    code = escape.markdown_code(s)
    fence = re.match(r"`+", code).group(0)
    assert code.endswith(fence) and fence not in code[len(fence):-len(fence)]


def test_c_string_round_trips_through_gxx(tmp_path):
    names = HOSTILE + ["??=trigraph", "\u2603 snow"]
    src = "#include <cstdio>\nint main(){\n" + "".join(
        f'  std::fputs({escape.c_string(n)}, stdout); std::fputs("\\x01", stdout);\n' for n in names) + "}\n"
    (tmp_path / "t.cpp").write_text(src)
    subprocess.run(["g++", "-std=c++14", "-Wall", "-Werror", "-Wno-trigraphs", "-o",
                    str(tmp_path / "t"), str(tmp_path / "t.cpp")], check=True, timeout=120)
    out = subprocess.run([str(tmp_path / "t")], capture_output=True, check=True).stdout
    assert out.decode("utf-8").split("\x01")[:-1] == names


def test_verilog_string_round_trips_through_icarus(tmp_path):
    names = [n for n in HOSTILE if n.isascii()]
    body = "".join(f'    $write("%s\\001", {escape.verilog_string(n)});\n' for n in names)
    (tmp_path / "t.v").write_text(f"// {escape.verilog_comment(HOSTILE[6])}\nmodule t;\n"
                                  f"  initial begin\n{body}  end\nendmodule\n")
    subprocess.run(["iverilog", "-o", str(tmp_path / "t.vvp"), str(tmp_path / "t.v")], check=True,
                   timeout=60)
    out = subprocess.run(["vvp", "-n", str(tmp_path / "t.vvp")], capture_output=True, check=True).stdout
    assert out.decode().split("\x01")[:len(names)] == names


# ------------------------------------------------------------------ (2) inert in generated files

def test_makefile_from_a_hostile_interpreter_path_runs_only_that_interpreter(tmp_path):
    """The interpreter path is a user path: a folder named with Make and shell syntax."""
    weird = tmp_path / "py $(touch pwned) `touch pwned` ; #x 'q\" ${HOME}"
    weird.mkdir()
    fake = weird / "python"
    fake.write_text("#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$(dirname \"$0\")/argv\"\n")
    fake.chmod(0o755)
    out = tmp_path / "b"
    out.mkdir()
    graph = type("G", (), {"name": HOSTILE[0], "nodes": []})()
    board = {"name": "pynq\n\tPWN", "description": "d", "part": "p", "family": "xc7", "clock_mhz": 100}
    render_project_files(out, {"graph": graph, "board": board, "perf": {"interval_cycles": 1,
                               "fps_at_clock": 1.0, "clock_mhz": 100, "cycles": {}},
                               "python": str(fake), "checkpoint": "c $(touch pwned).pt",
                               "frames": 3, "data": "random", "backends": []})
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "MAKEFLAGS", "MAKELEVEL")}
    proc = subprocess.run(["make", "-C", str(out), "csim"], capture_output=True, text=True, timeout=60,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    assert (weird / "argv").read_text().split("\n")[:4] == ["-m", "generator.flows.csim", ".", "--frames"]
    help_out = subprocess.run(["make", "-C", str(out), "help"], capture_output=True, text=True,
                              timeout=60)
    assert help_out.returncode == 0 and "PWN" in help_out.stdout
    assert not list(tmp_path.rglob("pwned")) and not Path("pwned").exists()


def _comment(line: str, suffix: str) -> bool:
    s = line.strip()
    if suffix in (".v", ".sv", ".cpp", ".h", ".hpp", ".c"):
        return s.startswith("//")
    if suffix in (".tcl", ".sh", "") or suffix == ".mk":
        return s.startswith("#")
    return False


def _escaped_forms(name: str) -> list[str]:
    forms = {f(name) for f in escape.filters().values()
             if f not in (escape.make_value, escape.make_recipe)}
    forms |= {json.dumps(name), json.dumps(name)[1:-1], name}
    return sorted(forms, key=len, reverse=True)


def _masked(line: str, forms: list[str]) -> str:
    for f in sorted(forms, key=len, reverse=True):
        if f:
            line = line.replace(f, "\x00NAME\x00")
    return line


def _files(root: Path) -> dict[str, Path]:
    skip = {".npy", ".npz", ".hex", ".png", ".gz", ".tar"}
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix not in skip}


@pytest.fixture(scope="module")
def benign_build(tmp_path_factory):
    d = tmp_path_factory.mktemp("benign")
    save_checkpoint(d / "m.pt", _digits_model("benign"))
    build(str(d / "m.pt"), "pynq-z2", str(d / "out"), frames=2, log=lambda *a: None)
    return d / "out"


@pytest.mark.parametrize("name", [HOSTILE[0], HOSTILE[2], HOSTILE[5], HOSTILE[6], HOSTILE[7],
                                  HOSTILE[8], HOSTILE[1]])
def test_build_from_hostile_name_keeps_every_file_meaning(tmp_path, monkeypatch, benign_build, name):
    # Switch the entry check off: the generated files must be safe on their own.
    monkeypatch.setattr(specmod, "check_name", lambda value, *a, **k: value)
    ckpt = tmp_path / "m.pt"
    save_checkpoint(ckpt, _digits_model(name))
    out = tmp_path / "out"
    build(str(ckpt), "pynq-z2", str(out), frames=2, log=lambda *a: None)
    # The top-level identifier is derived from the name (sanitized): files named after it
    # are compared under the benign build's top name.
    top_h = json.loads((out / "hls" / "manifest.json").read_text())["top"]
    top_b = json.loads((benign_build / "hls" / "manifest.json").read_text())["top"]
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", top_h)
    hostile = {rel.replace(top_h, top_b): p for rel, p in _files(out).items()}
    benign = _files(benign_build)
    assert hostile.keys() == benign.keys()
    forms_b = _escaped_forms("benign") + [top_b, top_b.upper(), str(benign_build.parent)]
    forms_h = _escaped_forms(name) + [top_h, top_h.upper(), str(tmp_path)]
    for rel, path in hostile.items():
        if rel.endswith(".html"):
            continue  # autoescaped by Jinja; checked below by content
        text_h = path.read_text(encoding="utf-8", errors="replace")
        text_b = benign[rel].read_text(encoding="utf-8", errors="replace")
        if rel.endswith(".json") or rel.endswith(".ipynb"):
            json.loads(text_h)
            continue
        lines_h, lines_b = text_h.split("\n"), text_b.split("\n")
        assert len(lines_h) == len(lines_b), f"{rel}: the name added or removed lines"
        suffix = Path(rel).suffix if Path(rel).name != "Makefile" else ".mk"
        for lh, lb in zip(lines_h, lines_b):
            if lh == lb or (_comment(lh, suffix) and _comment(lb, suffix)
                            and not lh.rstrip().endswith("\\")):
                continue
            # Otherwise the line may differ only where it holds (an escaped form of) the name.
            assert _masked(lh, forms_h) == _masked(lb, forms_b), f"{rel}: {lb!r} -> {lh!r}"
    report = json.loads((out / "report.json").read_text())
    assert report["model"] == name
    # Every tool still reads its file: Tcl commands complete, Verilog elaborates, C++ compiles,
    # the Makefile runs only what it says.
    tcl = [str(p) for p in out.rglob("*.tcl")]
    check = "foreach f $argv { set fd [open $f]; set t [read $fd]; close $fd; " \
            "if {![info complete $t]} { puts \"incomplete $f\"; exit 1 } }"
    subprocess.run(["tclsh", "/dev/stdin", *tcl], input=check, text=True, check=True, timeout=60)
    make = subprocess.run(["make", "-n", "-C", str(out), "csim", "sim", "synth-estimate", "package"],
                          capture_output=True, text=True, timeout=60)
    make_b = subprocess.run(["make", "-n", "-C", str(benign_build), "csim", "sim", "synth-estimate",
                             "package"], capture_output=True, text=True, timeout=60)
    assert make.returncode == 0
    assert make.stdout.replace(str(out), "OUT") == make_b.stdout.replace(str(benign_build), "OUT")
    subprocess.run(["make", "-s", "-C", str(out), "help"], check=True, capture_output=True, timeout=60)
    if shutil.which("iverilog"):
        rtl = sorted(str(p) for p in (out / "rtl").glob("*.v"))
        subprocess.run(["iverilog", "-g2012", "-o", str(tmp_path / "a.vvp"), "-s", "cfgen_top", *rtl],
                       check=True, capture_output=True, timeout=120)
    assert not list(tmp_path.rglob("pwned")) and not (REPO / "pwned").exists()


def test_csim_runs_bit_exact_from_a_hostile_name(tmp_path, monkeypatch):
    """The C++ that carries the name as a literal and in comments still compiles and is exact."""
    monkeypatch.setattr(specmod, "check_name", lambda value, *a, **k: value)
    ckpt = tmp_path / "m.pt"
    save_checkpoint(ckpt, _digits_model(HOSTILE[6] + HOSTILE[0]))
    out = tmp_path / "out"
    build(str(ckpt), "pynq-z2", str(out), frames=2, log=lambda *a: None)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    proc = subprocess.run(["make", "-C", str(out), "csim", f"PYTHON={sys.executable}"],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert json.loads((out / "csim" / "results.json").read_text())["bit_exact"] is True
    assert not list(tmp_path.rglob("pwned"))
