"""Run-time weights, HLS side (docs/WEIGHTS.md, docs/HLS.md "Run-time weights"): the tables
are writable arrays filled by the top's load mode from the weight stream, the dataflow runs
in mode 0.

- digits CF-4 built with --runtime-weights: no weight in the sources (they render byte for
  byte the same for other weights of the same ranges), `make csim` bit exact with a load, a
  run call before it that must do nothing, and a reload after the first batch; a flipped bit
  of the first load fails on its checksum and on the first batch's frames (the reload
  restores them); the TLAST check; the host shim's cfgen_load_weights;
- every loader shape on hand-built graphs (int8 dsp and dsp2 matrices with thresholds and
  relu offsets, xnor, average-pool thresholds, scale MACs with SIMD < n and SIMD > n, lanes
  of 1 .. 72 bits, residual adds, forks) C-simulated bit exact (-Werror);
- UltraRAM binding, csim's refusals.
"""

from __future__ import annotations

import ctypes
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, _shared, run_cli
from generator.backends import hls
from generator.core import tools
from generator.flows import csim
from generator.hw import golden, weights
from generator.hw.boards import load_board
from generator.hw.ir import Graph, Stream

sys.path.insert(0, str(REPO / "tests" / "hls_unit_tb"))
sys.path.insert(0, str(REPO / "tests"))
import hls_graphs as H  # noqa: E402
from rtl_unit_tb import graphs as G  # noqa: E402

pytestmark = pytest.mark.hls

FRAMES, BATCH = 8, 4          # two batches: the reload comes between them
BOARD = {"name": "pynq-z2", "part": "xc7z020clg400-1", "family": "xc7", "clock_mhz": 100}


@pytest.fixture(scope="module")
def digits_rw(tmp_path_factory) -> Path:
    """digits CF-4 (untrained, calibrated), built for pynq-z2 with run-time weights."""
    def make_model(p):
        run_cli("init", "digits", "--cf", 4, "-o", p)

    model = _shared(tmp_path_factory, "rwh_digits.pt", make_model)

    def make(p):
        run_cli("build", model, "--board", "pynq-z2", "-o", p, "--frames", FRAMES, "--runtime-weights")
    return _shared(tmp_path_factory, "rwh_digits_build", make)


def _sources(hls_dir: Path) -> dict:
    return {p.relative_to(hls_dir).as_posix(): p.read_text() for p in sorted((hls_dir / "src").rglob("*"))
            if p.is_file()}


def _weights_json(build: Path) -> dict:
    return json.loads((build / "weights" / "weights.json").read_text())


# --------------------------------------------------------------------------- sources

def test_sources_hold_no_weights(digits_rw, tmp_path):
    """No table initialiser in the node headers (only the structural pad words / pool mask),
    the top in two modes, and the same sources for other weights of the same ranges: output
    channels permuted in every node, half the XNOR weight bits flipped."""
    src = _sources(digits_rw / "hls")
    top = src["src/cf_digits.cpp"]
    for name, text in src.items():
        if name.startswith("src/nodes/"):
            assert "= {" not in text, name
            consts = re.findall(r"static const cf::rom<\d+>::type (\w+) = ", text)
            assert all(c.endswith(("_pad", "_mask")) for c in consts), (name, consts)
            if "conv" in name:
                assert "_load(hls::stream<cf::wgt_beat>& wgt, cf::Fletcher& f)" in text
    assert "static void cf_digits_dataflow(" in top and "#pragma HLS DATAFLOW" in top
    assert top.index("#pragma HLS DATAFLOW") < top.index("static void cf_digits_load(")
    for port in ("wgt_stream", "wstat_stream"):
        assert f"#pragma HLS INTERFACE axis port={port}" in top
    assert "#pragma HLS INTERFACE s_axilite port=mode bundle=control" in top
    head = src["src/cf_digits.h"]
    man = _weights_json(digits_rw)
    assert f"CF_WEIGHT_WORDS = {man['words']};" in head and "#define CF_RUNTIME_WEIGHTS 1" in head
    hm = json.loads((digits_rw / "hls" / "manifest.json").read_text())
    assert hm["runtime_weights"] and hm["weights"]["words"] == man["words"]
    assert [m["role"] for m in hm["weights"]["memories"]] == [m["role"] for m in man["memories"]]

    g = Graph.load(digits_rw)
    rng = np.random.default_rng(7)
    for n in g.nodes:
        if n.kind in ("conv", "scalemac"):
            perm = rng.permutation(n.out.c)
            for f in ("weights", "thresholds", "direction", "sign", "offset", "bias"):
                if getattr(n, f, None) is not None:
                    setattr(n, f, np.asarray(getattr(n, f))[perm])
            if getattr(n, "matrix", "") == "xnor":
                n.weights = n.weights ^ (rng.random(n.weights.shape) < 0.5).astype(n.weights.dtype)
    other = tmp_path / "other"
    hls.render(g, other, load_board("pynq-z2"))
    assert _sources(other / "hls") == src
    assert not np.array_equal(weights.stream(g), weights.stream(Graph.load(digits_rw)))


def test_rom_build_unchanged(digits_rw, tmp_path):
    """The same graph without run-time weights renders the ROM build: literal tables, the
    three-argument top, no loader."""
    g = Graph.load(digits_rw)
    g.runtime_weights = False
    hls.render(g, tmp_path, load_board("pynq-z2"))
    src = _sources(tmp_path / "hls")
    assert "_load" not in "".join(src.values()) and "CF_RUNTIME_WEIGHTS" not in src["src/cf_digits.h"]
    assert "static const cf::rom<72>::type conv1_weights[16][2] = {" in src["src/nodes/conv1.h"]
    assert "unsigned reps) {\n#pragma HLS INTERFACE axis port=in_stream" in src["src/cf_digits.cpp"]
    assert "runtime_weights" not in json.loads((tmp_path / "hls" / "manifest.json").read_text())


# --------------------------------------------------------------------------- C simulation

def test_make_csim_loads_reloads_bit_exact(digits_rw):
    proc = subprocess.run(["make", "csim", f"FRAMES={FRAMES}"], cwd=digits_rw, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "BIT EXACT" in proc.stdout and "run-time weights loaded 2x, checksum ok" in proc.stdout
    res = json.loads((digits_rw / "csim" / "results.json").read_text())
    w = res["weights"]
    want = _weights_json(digits_rw)["checksum"]
    assert res["bit_exact"] and w["guard_ok"] and w["checksum_ok"] and res["frames"] == FRAMES
    assert [[ld["s1"], ld["s2"]] for ld in w["loads"]] == [want, want]   # the load and the reload


def _flag_bit(build: Path) -> tuple[int, int]:
    """Stream word and bit of the direction flag of conv1's channel 0 (params word 0, lane 0:
    {flag, value} of TW+1 bits): flipping it inverts that channel."""
    mem = next(m for m in _weights_json(build)["memories"] if m["node"] == "conv1" and m["role"] == "params")
    pe = Graph.load(build).nodes[0].pe
    return mem["offset"], mem["width"] // pe - 1


def test_corrupted_weight_fails(digits_rw):
    word, bit = _flag_bit(digits_rw)
    res = csim.run_csim(digits_rw, batch=BATCH, quiet=True, corrupt_weight=f"{word}:{bit}")
    w = res["weights"]
    assert not res["bit_exact"] and not w["checksum_ok"] and w["corrupt"] == f"{word}:{bit}"
    assert [ld["ok"] for ld in w["loads"]] == [False, True]
    assert [w["loads"][0]["s1"], w["loads"][0]["s2"]] != w["expected"]
    # the corrupted tables give wrong frames; the reload after the first batch restores them
    assert res["mismatches"]["conv1"] > 0 and res["first_mismatch"]["node"] == "conv1"
    conv1 = next(nd for nd in res["nodes"] if nd["name"] == "conv1")
    assert conv1["first_mismatch"]["frame"] < BATCH
    assert "weight checksum mismatch (load 1)" in csim.summary(res)
    # the command line: exit 1 and the reason; a word outside the stream is a usage error
    cli = subprocess.run([sys.executable, "-m", "generator.flows.csim", str(digits_rw), "--batch", str(BATCH),
                          "--corrupt-weight", f"{word}:{bit}"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert cli.returncode == 1 and "CHECKSUM MISMATCH" in cli.stdout, cli.stdout[-2000:] + cli.stderr[-2000:]
    bad = subprocess.run([sys.executable, "-m", "generator.flows.csim", str(digits_rw), "--corrupt-weight",
                          f"{_weights_json(digits_rw)['words']}:0"], cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 2 and "WORD must be" in bad.stderr
    # and a clean run afterwards is exact again (the option is per run)
    assert csim.run_csim(digits_rw, batch=BATCH, quiet=True)["bit_exact"]


def test_tlast_with_runtime_weights(digits_rw):
    res = csim.run_tlast(digits_rw, quiet=True)
    assert res["passed"], res["log"]
    assert any("weights: load 1" in line and "checksum ok" in line for line in res["log"])


def test_csim_refuses_missing_or_foreign_weights(digits_rw, tmp_path):
    out = tmp_path / "b"
    shutil.copytree(digits_rw / "hls", out / "hls")
    shutil.copytree(digits_rw / "vectors", out / "vectors")
    with pytest.raises(csim.CsimError, match="weights.hex not found"):
        csim.run_csim(out, quiet=True)
    shutil.copytree(digits_rw / "weights", out / "weights")
    lines = (out / "weights" / "weights.hex").read_text().splitlines()
    (out / "weights" / "weights.hex").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(csim.CsimError, match="the weights of another build"):
        csim.run_csim(out, quiet=True)


# --------------------------------------------------------------------------- host shim

def test_host_shim_loads_weights(digits_rw, tmp_path):
    """templates/host/csim_shim.cpp on a run-time weights build: cfgen_run refuses to run
    before a load (-7), cfgen_load_weights refuses a wrong word count (-1), answers the
    checksum, and the frames then match the golden output."""
    man = json.loads((digits_rw / "hls" / "manifest.json").read_text())
    top, h = man["top"], digits_rw / "hls"
    so = tmp_path / "shim.so"
    cmd = [str(tools.cxx()), *tools.hls_cxxflags(opt="-O1", werror=True), "-fPIC", "-shared",
           f"-DCFGEN_TOP={top}", f'-DCFGEN_TOP_HEADER="{top}.h"', f"-DAP_INT_MAX_W={man['ap_int_max_w']}",
           "-I", str(h / "sim"), "-I", str(h / "include"), "-I", str(h / "src"),
           str(REPO / "templates" / "host" / "csim_shim.cpp"), str(h / man["sources"][0]), "-o", str(so)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lib = ctypes.CDLL(str(so))
    lib.cfgen_load_weights.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    lib.cfgen_run.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_void_p,
                              ctypes.c_size_t, ctypes.c_size_t, ctypes.c_uint]
    lib.cfgen_weight_words.restype = ctypes.c_ulong
    ib, ob = lib.cfgen_in_beat_bytes(), lib.cfgen_out_beat_bytes()
    inb, outb = man["input"]["beats_per_frame"], man["output"]["beats_per_frame"]
    n = FRAMES
    vec = digits_rw / "vectors"
    inp = np.frombuffer(b"".join(int(x, 16).to_bytes(ib, "little")
                                 for x in (vec / "input.hex").read_text().split()[:n * inb]), np.uint8).copy()
    want = b"".join(int(x, 16).to_bytes(ob, "little")
                    for x in (vec / f"{man['output']['node']}.hex").read_text().split()[:n * outb])
    out = np.zeros(n * outb * ob, np.uint8)
    run = lambda: lib.cfgen_run(inp.ctypes.data, inp.size, inb, out.ctypes.data, out.size, outb, n)  # noqa: E731
    words = np.fromfile(digits_rw / "weights" / "weights.bin", dtype="<u4")
    st = np.zeros(2, np.uint32)
    assert lib.cfgen_weight_words() == len(words)
    assert run() == -7
    assert lib.cfgen_load_weights(words.ctypes.data, len(words) - 1, st.ctypes.data) == -1
    assert lib.cfgen_load_weights(words.ctypes.data, len(words), st.ctypes.data) == 0
    assert st.tolist() == _weights_json(digits_rw)["checksum"]
    assert run() == 0 and out.tobytes() == want
    bad = words.copy()
    bad[3] ^= 1 << 5
    assert lib.cfgen_load_weights(bad.ctypes.data, len(bad), st.ctypes.data) == 0
    assert st.tolist() != _weights_json(digits_rw)["checksum"]
    assert lib.cfgen_load_weights(words.ctypes.data, len(words), st.ctypes.data) == 0
    assert run() == 0 and out.tobytes() == want


# --------------------------------------------------------------------------- every loader

def _demo():
    g, px, tr = H.demo_chain(np.random.default_rng(1), frames=4)
    return g, px


def _dsp2_relu():
    """int8 dsp2 matrix with relu offsets (odd 24-bit lanes), a scale MAC with SIMD > n."""
    specs = [(H.conv, "c1", dict(c_out=8, k=3, pad=1, matrix="int8", act="relu_offset", pe=4, simd=3)),
             (H.scalemac, "fc", dict(c_out=6, n=2, pe=3, simd=4)),
             (H.globalsum, "gs", {})]
    g, px, _ = H.build_chain(np.random.default_rng(5), specs, Stream(6, 6, 3, "uint", 8), 4, name="dsp2")
    g.nodes[0].mult = "dsp2"
    return g, px


def _residual():
    return G.residual_chain(np.random.default_rng(3), fold={"b1": (1, 2), "b2": (1, 4)}), None


GRAPHS = {"demo": _demo, "dsp2_relu": _dsp2_relu, "residual": _residual}


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_every_loader_bit_exact(name, tmp_path):
    g, px = GRAPHS[name]()
    g.runtime_weights = True
    if px is None:
        G.write_vectors(g, tmp_path, frames=4, seed=4)
    else:
        H.write_vectors(tmp_path, g, px, golden.run(g, px))
    hls.render(g, tmp_path, BOARD)
    man = weights.write(g, tmp_path / "weights", weights.signature(tmp_path))
    res = csim.run_csim(tmp_path, batch=2, werror=True, quiet=True)
    assert res["bit_exact"], csim.summary(res)
    assert [ld["ok"] for ld in res["weights"]["loads"]] == [True, True]
    assert res["weights"]["words"] == man["words"]
    nodes = "".join((tmp_path / "hls" / "src" / "nodes" / f).read_text()
                    for f in sorted(p.name for p in (tmp_path / "hls" / "src" / "nodes").glob("*.h")))
    if name == "dsp2_relu":
        assert "cf::load_weights_dsp2<" in nodes and "cf::load_offsets_rs<" in nodes
        assert "cf::load_scales<" in nodes and ", 2, 1, " in nodes.split("cf::load_scales<")[1][:20]
    if name == "demo":
        assert "cf::load_thresholds<1, 32, " in nodes          # the average pool, SIMD < C
    if name == "residual":
        assert "cf::load_words<" in nodes
        assert "cf::load_thresholds<8, 1, " in nodes           # an average pool with SIMD = C


def test_uram_binding(tmp_path):
    """A conv's or scale MAC's weights in UltraRAM (weight_mem = 'uram') are bound to it in a
    run-time weights build; a ROM build renders as before."""
    g, _ = _demo()
    conv = next(n for n in g.nodes if n.kind == "conv")
    fc = next(n for n in g.nodes if n.kind == "scalemac")
    conv.weight_mem = fc.weight_mem = "uram"
    rom = hls.render(g, tmp_path / "rom", BOARD)
    assert "impl=uram" not in "".join(_sources(rom).values())
    g.runtime_weights = True
    src = _sources(hls.render(g, tmp_path / "rw", BOARD))
    assert f"#pragma HLS BIND_STORAGE variable={conv.name}_weights type=ram_2p impl=uram" in \
        src[f"src/nodes/{conv.name}.h"]
    assert f"#pragma HLS BIND_STORAGE variable={fc.name}_params.weights type=ram_2p impl=uram" in \
        src[f"src/nodes/{fc.name}.h"]
    assert sum(t.count("impl=uram") for t in src.values()) == 2
