"""Run-time weights, generator and driver side (docs/WEIGHTS.md): the weight stream and its
checksum, the hardware signature, `build --runtime-weights`, the `weights` command for a
retrained model, and the driver loading them (golden, C simulation, fake board).

The HLS and RTL weight ports are tested in test_runtime_weights_hls.py / _rtl.py; here the
C simulation is the real HLS code (the driver's C-simulation backend), the board the
fake one answering from it."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, _shared, run_cli

sys.path.insert(0, str(REPO / "host"))

from cfgen_driver import Accelerator, WeightsError  # noqa: E402
from cfgen_driver import meta as drv_meta  # noqa: E402
from cfgen_driver import weightfile  # noqa: E402
from cfgen_driver.backends import CSimBackend, GoldenBackend  # noqa: E402
from cfgen_driver.fakepynq import FakePynq  # noqa: E402

from generator.hw import golden, units, weights  # noqa: E402
from generator.hw.ir import Graph  # noqa: E402

HW = 8


def _train(seed):
    return lambda p: run_cli("train", "digits", "--cf", 4, "--mode", "xnor", "--data", "digits",
                             "--seed", seed, "-o", p)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two digits CF-4 models of one architecture, trained from different seeds."""
    return [_shared(tmp_path_factory, f"rw_digits_s{s}.pt", _train(s)) for s in (1, 2)]


@pytest.fixture(scope="module")
def rw_build(tmp_path_factory, models) -> Path:
    def make(p):
        run_cli("build", models[0], "--board", "pynq-z2", "-o", p, "--frames", 8, "--data",
                "digits", "--runtime-weights")
    return _shared(tmp_path_factory, "rw_build", make)


@pytest.fixture(scope="module")
def swapped(tmp_path_factory, models, rw_build) -> Path:
    """The second model's weight folder for the first model's build."""
    def make(p):
        run_cli("weights", models[1], rw_build, "-o", p, "--frames", 8, "--data", "digits")
    return _shared(tmp_path_factory, "rw_swapped", make)


def _words_python(words):
    s1 = s2 = 0
    for w in (int(x) for x in words):
        s1 = (s1 + w) % (1 << 32)
        s2 = (s2 + s1) % (1 << 32)
    return s1, s2


# ----------------------------------------------------------------------------- format

@pytest.mark.parametrize("n", [0, 1, 7, 70001])
def test_fletcher_is_the_running_sums(n):
    w = np.random.default_rng(n).integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    assert weights.fletcher(w) == weightfile.fletcher(w) == _words_python(w)


def test_fletcher_sees_a_swapped_pair():
    w = np.arange(1, 100, dtype=np.uint32)
    v = w.copy()
    v[[3, 4]] = v[[4, 3]]
    assert weights.fletcher(w)[0] == weights.fletcher(v)[0]
    assert weights.fletcher(w) != weights.fletcher(v)


def test_chunks_are_little_end_first():
    fields = np.array([[1, -1, 3]])            # three 20-bit fields: 60 bits, two chunks
    ch = weights.to_chunks(fields, 20)
    value = 1 | (((1 << 20) - 1) << 20) | (3 << 40)
    assert ch.shape == (1, 2) and int(ch[0, 0]) == value & 0xFFFFFFFF and int(ch[0, 1]) == value >> 32


def test_stream_is_every_rom_in_order(rw_build):
    # the generator writes the files the driver reads: one format, one set of names
    assert (weights.FORMAT, weights.BIN, weights.MANIFEST) == \
        (weightfile.FORMAT, weightfile.BIN, weightfile.MANIFEST)
    g = Graph.load(rw_build)
    mems = weights.memories(g)
    roms = [(n.name, m.role) for n in g.nodes for m in units.plan(n).memories if m.rom]
    assert [(m.node, m.role) for m in mems] == roms
    words = weights.stream(g)
    assert mems[-1].offset + mems[-1].words == len(words)
    man = json.loads((rw_build / "weights" / "weights.json").read_text())
    assert man["words"] == len(words) and tuple(man["checksum"]) == weights.fletcher(words)
    assert np.array_equal(np.fromfile(rw_build / "weights" / "weights.bin", "<u4"), words)
    hexw = [int(x, 16) for x in (rw_build / "weights" / "weights.hex").read_text().split()]
    assert hexw == [int(x) for x in words]
    # a memory's words are the units' contents, word for word
    m0 = mems[0]
    node = g.node(m0.node)
    _, fields, bits = units.contents(node)[0]
    w0 = sum(int(v & ((1 << bits) - 1)) << (bits * j) for j, v in enumerate(fields[0]))
    got = sum(int(c) << (32 * j) for j, c in enumerate(words[:m0.chunks_per_word]))
    assert got == w0


def test_signature_is_the_hardware_sources(rw_build, tmp_path):
    man = json.loads((rw_build / "weights" / "weights.json").read_text())
    assert man["signature"] == weights.signature(rw_build)
    copy = tmp_path / "b"
    shutil.copytree(rw_build / "hls", copy / "hls")
    shutil.copytree(rw_build / "rtl", copy / "rtl")
    assert weights.signature(copy) == man["signature"]
    (copy / "rtl" / "mem").mkdir(exist_ok=True)
    (copy / "rtl" / "mem" / "x.hex").write_text("00\n")      # memory files are not hardware
    assert weights.signature(copy) == man["signature"]
    top = next((copy / "rtl").glob("*top*.v"))
    top.write_text(top.read_text() + "\n// edited\n")
    assert weights.signature(copy) != man["signature"]


def test_build_metadata_names_the_weight_port(rw_build):
    meta = drv_meta.load(rw_build)
    man = json.loads((rw_build / "weights" / "weights.json").read_text())
    assert meta["weights"]["signature"] == man["signature"]
    assert meta["weights"]["words"] == man["words"] and meta["weights"]["checksum"] == man["checksum"]
    assert json.loads((rw_build / "graph.json").read_text())["runtime_weights"] is True


def test_headroom_keeps_the_golden_model(models, tmp_path):
    """Widening the value-dependent widths changes no output value."""
    from generator.hw.lower import lower
    from generator.model.checkpoint import load_checkpoint
    g = lower(load_checkpoint(models[0]))
    wide = lower(load_checkpoint(models[0]))
    weights.add_headroom(wide)
    wide.validate()
    assert any(a.out.bits != b.out.bits for a, b in zip(g.nodes, wide.nodes))
    x = np.random.default_rng(0).integers(0, 256, (6, HW, HW, 1), dtype=np.uint8)
    for a, b in zip(golden.run(g, x), golden.run(wide, x)):
        assert np.array_equal(a, b)


# ----------------------------------------------------------------------------- weights command

def test_a_retrained_model_gets_a_weight_file_for_the_build(rw_build, swapped):
    a = json.loads((rw_build / "weights" / "weights.json").read_text())
    b = json.loads((swapped / "weights.json").read_text())
    assert a["signature"] == b["signature"] and a["words"] == b["words"]
    assert a["checksum"] != b["checksum"]                      # other weights, same hardware
    assert (swapped / "graph.json").is_file() and (swapped / "vectors" / "input.hex").is_file()


def test_the_same_model_gives_the_same_words(models, rw_build, tmp_path):
    run_cli("weights", models[0], rw_build, "-o", tmp_path / "w")
    assert (tmp_path / "w" / "weights.bin").read_bytes() == \
        (rw_build / "weights" / "weights.bin").read_bytes()


def _one_line_error(r):
    err = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(err) == 1 and "Traceback" not in r.stderr, r.stderr
    return err[0]


def test_weights_refuses_another_architecture(rw_build, tmp_path):
    ck = tmp_path / "vgg.pt"
    run_cli("init", "digits_vgg", "--cf", 4, "-o", ck)
    err = _one_line_error(run_cli("weights", ck, rw_build, "-o", tmp_path / "w", check=False))
    assert "another architecture needs its own build" in err
    assert not (tmp_path / "w").exists()


def test_weights_refuses_a_rom_build(models, tmp_path):
    run_cli("build", models[0], "--board", "pynq-z2", "-o", tmp_path / "rom", "--frames", 1)
    err = _one_line_error(run_cli("weights", models[1], tmp_path / "rom", "-o", tmp_path / "w",
                                  check=False))
    assert "without --runtime-weights" in err and not (tmp_path / "w").exists()


def test_weights_refuses_edited_sources(models, rw_build, tmp_path):
    b = tmp_path / "b"
    shutil.copytree(rw_build, b)
    top = next((b / "rtl").glob("*top*.v"))
    top.write_text(top.read_text() + "\n// edited\n")
    err = _one_line_error(run_cli("weights", models[1], b, "-o", tmp_path / "w", check=False))
    assert "edited after the build" in err


def test_weights_refuses_a_model_needing_wider_formats(models, rw_build, tmp_path):
    """A model whose ranges outgrow the build's headroom (the classifier's bias x 1000):
    refused with the field that differs, nothing written."""
    import torch
    from generator.model.checkpoint import load_checkpoint, save_checkpoint
    ck = load_checkpoint(models[1])
    m = ck.model()
    with torch.no_grad():
        last_bias = [p for n, p in m.named_parameters() if n.endswith("bias")][-1]
        last_bias.mul_(1000.0)
    save_checkpoint(tmp_path / "big.pt", m.eval(), meta={"kind": "test"})
    err = _one_line_error(run_cli("weights", tmp_path / "big.pt", rw_build, "-o", tmp_path / "w",
                                  check=False))
    assert "hardware differs" in err and "bw is" in err and not (tmp_path / "w").exists()


# ----------------------------------------------------------------------------- driver

def _images(n=8):
    from generator.model.data import load_dataset
    ds = load_dataset("digits", None)
    return np.ascontiguousarray(ds.test.images[:n].transpose(0, 2, 3, 1))


def _golden_ints(folder, x):
    g = Graph.load(folder)
    return golden.run(g, x)[-1].reshape(len(x), -1)


def test_golden_backend_loads_and_swaps(rw_build, swapped):
    x = _images()
    acc = Accelerator.open(rw_build, backend="golden")
    assert acc.weights is not None and acc.weights.folder == rw_build / "weights"
    assert np.array_equal(acc.run_ints(x), _golden_ints(rw_build, x))
    acc.load_weights(swapped)
    assert np.array_equal(acc.run_ints(x), _golden_ints(swapped, x))
    assert acc.run(x).logits[0, 0] == pytest.approx(
        acc.run_ints(x)[0, 0] * json.loads((swapped / "weights.json").read_text())["logit_scale"])


def test_nothing_runs_before_a_load(rw_build):
    acc = Accelerator.open(rw_build, backend="golden", weights=False)
    with pytest.raises(WeightsError, match="call load_weights"):
        acc.run(_images(1))


def test_damaged_or_foreign_weight_files_are_refused(rw_build, tmp_path):
    acc = Accelerator.open(rw_build, backend="golden", weights=False)
    w = tmp_path / "w"
    shutil.copytree(rw_build / "weights", w)
    raw = bytearray((w / "weights.bin").read_bytes())
    raw[40] ^= 0x10
    (w / "weights.bin").write_bytes(bytes(raw))
    with pytest.raises(WeightsError, match="damaged"):
        acc.load_weights(w)
    shutil.copy2(rw_build / "weights" / "weights.bin", w / "weights.bin")
    man = json.loads((w / "weights.json").read_text())
    (w / "weights.json").write_text(json.dumps(dict(man, signature="0" * 64)))
    with pytest.raises(WeightsError, match="other hardware"):
        acc.load_weights(w)
    with pytest.raises(WeightsError, match="no weights.json"):
        acc.load_weights(tmp_path)
    assert acc.weights is None


def _fake_board(rw_build, tmp_path, answer_backend, **kw):
    meta = drv_meta.load(rw_build)
    bit = tmp_path / "x.bit"
    bit.write_bytes(b"bit")
    bit.with_suffix(".hwh").write_bytes(b"hwh")
    fake = FakePynq(meta, answer_backend.execute, **kw)
    return meta, bit, fake


def test_fake_board_loads_through_the_weight_dma(rw_build, swapped, tmp_path):
    """The words go out through the weight DMA into the C simulation (the fake hands what it
    received to the C model); the answer is the checksum of what arrived."""
    meta = drv_meta.load(rw_build)
    csim = CSimBackend(meta, rw_build)
    loaded = []

    def into_csim(words):
        loaded.append(len(words))
        wf = weightfile.WeightFile(Path("."), words, weightfile.fletcher(words), "", "", 0, None)
        csim.load_weights(wf)

    _, bit, fake = _fake_board(rw_build, tmp_path, csim, on_weights=into_csim)
    x = _images()
    acc = Accelerator.open(rw_build, backend="board", bitfile=bit, pynq=fake)
    assert fake.weight_loads == 1 and loaded == [meta["weights"]["words"]]
    assert any(c[0] == "ip.write" and c[2] == 1 for c in fake.calls)     # mode 1, then start
    assert np.array_equal(acc.run_ints(x), _golden_ints(rw_build, x))
    acc.load_weights(swapped)
    assert fake.weight_loads == 2
    assert np.array_equal(acc.run_ints(x), _golden_ints(swapped, x))
    acc.reset()                                   # a new overlay: the weights are loaded again
    assert fake.weight_loads == 3
    assert np.array_equal(acc.run_ints(x), _golden_ints(swapped, x))
    acc.close()


def test_fake_board_catches_a_corrupted_word(rw_build, tmp_path):
    meta = drv_meta.load(rw_build)
    _, bit, fake = _fake_board(rw_build, tmp_path, GoldenBackend(meta, rw_build), corrupt_weight=17)
    with pytest.raises(WeightsError, match="did not arrive intact"):
        Accelerator.open(rw_build, backend="board", bitfile=bit, pynq=fake)
    assert not fake.live_buffers                  # every buffer freed on the way out


def test_csim_backend_swaps_models(rw_build, swapped):
    x = _images()
    acc = Accelerator.open(rw_build, backend="csim")
    assert np.array_equal(acc.run_ints(x), _golden_ints(rw_build, x))
    acc.load_weights(swapped)
    assert np.array_equal(acc.run_ints(x), _golden_ints(swapped, x))


def test_package_carries_the_weights(rw_build, tmp_path):
    b = tmp_path / "b"
    shutil.copytree(rw_build, b)
    from generator.flows.package import make_package
    make_package(b, log=lambda *a: None, warn=lambda *a: None)
    pkg = b / "package"
    assert (pkg / "weights" / "weights.bin").read_bytes() == (b / "weights" / "weights.bin").read_bytes()
    assert weightfile.read(pkg).signature == drv_meta.load(pkg)["weights"]["signature"]


def test_residual_graphs_load_every_threshold(tmp_path):
    """digits_res with run-time weights: every node's read-only memory is in the stream, the
    one-word thresholds of the k = 1 average pools included (they were constants before)."""
    ck = tmp_path / "res.pt"
    run_cli("init", "digits_res", "--cf", 4, "-o", ck)
    run_cli("build", ck, "--board", "pynq-z2", "-o", tmp_path / "b", "--frames", 1,
            "--runtime-weights")
    g = Graph.load(tmp_path / "b")
    got = {(m.node, m.role) for m in weights.memories(g)}
    for n in g.nodes:
        if n.kind == "avgpool":
            assert (n.name, "thresholds") in got
        if n.kind in ("conv", "scalemac", "resadd"):
            assert any(node == n.name for node, _ in got)


def _swap_into_copy(rw_build, swapped, dest):
    """The build's hardware with the retrained model's weights and golden vectors."""
    shutil.copytree(rw_build, dest, ignore=shutil.ignore_patterns("sim_build", "csim", "obj_dir"))
    for sub in ("weights", "vectors"):
        shutil.rmtree(dest / sub)
    shutil.copytree(swapped / "vectors", dest / "vectors")
    (dest / "weights").mkdir()
    for f in ("weights.bin", "weights.hex", "weights.json"):
        shutil.copy2(swapped / f, dest / "weights" / f)
    assert weights.signature(dest) == weights.signature(rw_build)   # the same hardware


def test_a_retrained_model_is_bit_exact_on_the_same_rtl(rw_build, swapped, tmp_path):
    import subprocess
    b = tmp_path / "b"
    _swap_into_copy(rw_build, swapped, b)
    r = subprocess.run(["make", "-C", str(b), "sim"], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads((b / "sim" / "results.json").read_text())
    assert res["bit_exact"] and res["mismatches"] == 0
    assert res["weights"]["status_ok"] and tuple(res["weights"]["status"]) == \
        tuple(json.loads((swapped / "weights.json").read_text())["checksum"])


def test_the_block_design_has_the_weight_dma_the_driver_looks_for(rw_build):
    meta = drv_meta.load(rw_build)
    tcl = (rw_build / "vivado" / "bd.tcl").read_text()
    name = meta["weights"]["dma"]
    assert f"create_bd_cell -type ip -vlnv xilinx.com:ip:axi_dma {name}" in tcl
    assert f"accel/{'wgt_stream'}" in tcl and "accel/wstat_stream" in tcl
