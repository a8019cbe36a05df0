"""Host driver (host/cfgen_driver), board package and demo notebook.

One digits XNOR-CF-4 build per session; the C-simulation library is compiled once (cached in
OUT/host/csim/). The board layer runs against cfgen_driver.fakepynq, which answers from the
C simulation (or the golden model when no HLS backend is present) and checks what real
hardware would punish (alignment, transfer sizes, idle channels, cache flush/invalidate,
backpressure, TLAST per frame).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, _shared, run_cli

sys.path.insert(0, str(REPO / "host"))

import cfgen_driver as drv  # noqa: E402
from cfgen_driver import Accelerator, packing  # noqa: E402
from cfgen_driver.backends import CSimBackend, GoldenBackend  # noqa: E402
from cfgen_driver.board import PynqBackend  # noqa: E402
from cfgen_driver.fakepynq import FakePynq  # noqa: E402

from generator.hw import streams  # noqa: E402
from generator.hw.ir import Graph, Stream  # noqa: E402


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def build(tmp_path_factory) -> Path:
    """digits CF-4 (untrained, calibrated) built for pynq-z2 with 20 digits test vectors."""
    def make(path: Path):
        ckpt = path.with_suffix(".pt")
        run_cli("init", "digits", "--cf", 4, "-o", ckpt)
        run_cli("build", ckpt, "--board", "pynq-z2", "-o", path, "--frames", 20, "--data", "digits", "--force")
        if not (path / "host" / "cfgen_meta.json").is_file():  # until build.py lists the host backend
            from generator.backends import host
            from generator.hw.boards import load_board
            host.render(Graph.load(path), path, load_board("pynq-z2"))
    return _shared(tmp_path_factory, "host_digits_build", make)


@pytest.fixture(scope="session")
def meta(build):
    return drv.load_meta(build)


@pytest.fixture(scope="session")
def expected(build):
    vmeta = json.loads((build / "vectors" / "meta.json").read_text())
    x = np.load(build / "vectors" / "input.npy")
    ints = np.load(build / "vectors" / f"{vmeta['output']}.npy").reshape(len(x), -1)
    return x, ints, np.asarray(vmeta["golden_predictions"])


def _has_hls(build) -> bool:
    return (build / "hls" / "manifest.json").is_file()


@pytest.fixture(scope="session")
def csim(build, meta):
    if not _has_hls(build):
        pytest.skip("this build has no HLS backend (generator/backends/hls.py)")
    from generator.core import tools
    try:
        tools.cxx(), tools.ap_types_include()
    except tools.ToolMissing as e:
        pytest.skip(str(e))
    return CSimBackend(meta, build, max_batch=64)


@pytest.fixture(scope="session")
def answer(build, meta):
    """What the fake hardware computes with: the C simulation when present, else golden."""
    if _has_hls(build):
        try:
            return CSimBackend(meta, build, max_batch=64).execute
        except drv.BackendUnavailable:
            pass
    return GoldenBackend(meta, build, max_batch=64).execute


@pytest.fixture
def overlay(tmp_path, meta) -> Path:
    bit = tmp_path / f"{meta['ip']['top']}.bit"
    bit.write_bytes(b"\0fake bitstream")
    bit.with_suffix(".hwh").write_text("<fake/>")
    return bit


def board(meta, bit, fake, batch=16, timeout=2.0) -> Accelerator:
    return Accelerator(meta, PynqBackend(meta, bit, batch, pynq=fake, timeout=timeout))


# ----------------------------------------------------------------------------- packing

STREAMS = [Stream(4, 4, 3, "uint", 8), Stream(2, 3, 37, "bit", 1), Stream(2, 2, 5, "int", 19),
           Stream(1, 1, 10, "int", 47), Stream(1, 2, 2, "int", 64), Stream(3, 1, 4, "uint", 16),
           Stream(2, 2, 3, "int", 8), Stream(1, 1, 7, "uint", 5)]


@pytest.mark.parametrize("s", STREAMS, ids=lambda s: f"{s.c}x{s.kind}{s.bits}")
def test_packing_matches_generator_streams(s):
    rng = np.random.default_rng(s.c * 100 + s.bits)
    if s.kind == "int":
        lo, hi = -(1 << (s.bits - 1)), (1 << (s.bits - 1)) - 1
        v = rng.integers(lo, hi, (5, s.h, s.w, s.c), dtype=np.int64, endpoint=True)
        v.flat[:2] = [lo, hi]
    else:
        v = rng.integers(0, (1 << s.bits) - 1, (5, s.h, s.w, s.c), dtype=np.int64, endpoint=True)
    spec = drv.meta._stream(vars(s))
    raw = packing.pack_frames(v.astype(np.uint8) if s.bits == 8 and s.kind == "uint" else v, spec)
    assert raw.dtype == np.uint8 and raw.shape == (5, spec["frame_bytes"])
    nbytes = spec["beat_bytes"]
    want = b"".join(b.to_bytes(nbytes, "little") for b in streams.to_beats(v, s))
    assert raw.tobytes() == want
    assert np.array_equal(packing.unpack_frames(raw, spec), v)


def test_input_packing_is_vectorized():
    spec = drv.meta._stream({"h": 32, "w": 32, "c": 3, "kind": "uint", "bits": 8})
    x = np.random.default_rng(0).integers(0, 256, (256, 32, 32, 3), dtype=np.uint8)
    t = time.perf_counter()
    raw = packing.pack_frames(x, spec)
    assert time.perf_counter() - t < 0.5
    assert raw.shape == (256, 3072) and np.shares_memory(raw, x)  # CIFAR beats: the pixels as they are


# ----------------------------------------------------------------------------- metadata

def test_metadata(build, meta):
    from generator.model.data import CIFAR10_CLASSES
    assert meta["input"]["h"] == 8 and meta["input"]["frame_bytes"] == 64
    assert meta["output"]["beat_bytes"] == (meta["output"]["c"] * meta["output"]["bits"] + 7) // 8
    assert meta["class_names"] == [str(d) for d in range(10)]
    assert drv.meta.CIFAR10_CLASSES == CIFAR10_CLASSES
    g = json.loads((build / "graph.json").read_text())
    g["input"] = {"h": 32, "w": 32, "c": 3, "kind": "uint", "bits": 8}
    assert drv.meta.make_meta(g, dataset="cifar10")["class_names"] == list(CIFAR10_CLASSES)
    with pytest.raises(drv.MetadataError, match="version"):
        drv.meta.validate(dict(meta, version=99))
    with pytest.raises(drv.MetadataError, match="class names"):
        drv.meta.make_meta(g, class_names=["a"])
    with pytest.raises(drv.MetadataError, match="cfgen_meta.json"):
        drv.load_meta(build / "vectors")


def test_driver_needs_neither_torch_nor_generator(build, tmp_path):
    """The board has numpy and pynq only: importing and packing must not pull in more."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import numpy as np\n"
        "import cfgen_driver, cfgen_driver.board, cfgen_driver.fakepynq\n"
        "from cfgen_driver import Accelerator, load_meta, pack_frames\n"
        "m = load_meta(sys.argv[2]); pack_frames(np.zeros((2, 8, 8, 1), np.uint8), m['input'])\n"
        "try:\n    Accelerator.open(sys.argv[2], 'board')\nexcept cfgen_driver.DriverError as e:\n    print('E', e)\n"
        "bad = [m for m in ('torch', 'generator', 'pynq', 'jinja2') if m in sys.modules]\n"
        "assert not bad, bad\n")
    r = subprocess.run([sys.executable, "-c", code, str(REPO / "host"), str(build)], capture_output=True,
                       text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("E ")


# ----------------------------------------------------------------------------- off-board backends

def test_golden_backend(build, expected):
    x, ints, gpred = expected
    with Accelerator.open(build, "golden", batch=7) as acc:
        p = acc.run(x)
    assert np.array_equal(p.ints, ints) and np.array_equal(p.classes, gpred)
    assert np.allclose(p.logits, ints * acc.meta["logit_scale"])
    assert p.names == [str(c) for c in gpred]


@pytest.mark.hls
def test_csim_backend_bit_exact(build, meta, csim, expected):
    x, ints, _ = expected
    acc = Accelerator(meta, csim)
    assert np.array_equal(acc.run(x).ints, ints)
    assert np.array_equal(acc.run(x[3:4]).ints, ints[3:4])
    assert np.array_equal(acc.run(x[5]).ints, ints[5:6])  # one (H, W, C) image
    tp = acc.throughput_test(x, repeats=1, latency_runs=1)
    assert tp["backend"] == "csim" and tp["frames"] == len(x) and tp["fps"] > 0
    assert set(tp["us_per_frame"]) == {"pack", "copy_in", "compute", "copy_out", "unpack"}


def test_bad_inputs(build, expected):
    x, ints, _ = expected
    acc = Accelerator.open(build, "golden")
    cases = [(x.astype(np.float32), "dtype float32"), (x[:, :4], r"\(N, 8, 8, 1\)"),
             (x.transpose(0, 3, 1, 2), "NCHW"), (x.astype(np.int16) - 1, r"0\.\.255"),
             (x.astype(np.int32) + 200, r"0\.\.255"), (x[:0], "N = 0"), ("images", "numpy array"),
             (x.astype(bool), "dtype bool")]
    for bad, msg in cases:
        with pytest.raises(drv.InputError, match=msg):
            acc.run(bad)
    assert np.array_equal(acc.run(x[..., 0].astype(np.int64)).ints, ints)  # (N, H, W), ints in range
    acc.close()
    acc.close()
    with pytest.raises(drv.ClosedError):
        acc.run(x)
    with pytest.raises(drv.DriverError, match="unknown backend"):
        Accelerator.open(build, "fpga")


# ----------------------------------------------------------------------------- board layer (fake pynq)

def test_board_fake_exact_and_calls(meta, answer, expected, overlay):
    x, ints, _ = expected
    fake = FakePynq(meta, answer, buffer_max_size=200)
    acc = board(meta, overlay, fake, batch=16)
    assert "IP cf_digits_0" in repr(acc)
    assert np.array_equal(acc.run(x).ints, ints)          # 20 frames: batches of 16 + 4
    assert np.array_equal(acc.run(x[:3]).ints, ints[:3])
    calls = Counter(c[0] for c in fake.calls)
    assert calls["Overlay"] == 1 and calls["allocate"] == 2  # buffers allocated once
    assert calls["recv.transfer"] == 23                    # one S2MM packet (TLAST) per frame
    sends = [c for c in fake.calls if c[0] == "send.transfer"]
    assert sum(c[2] for c in sends) == 23 * 64 and max(c[2] for c in sends) <= 200
    writes = [c[1:] for c in fake.calls if c[0] == "ip.write"]
    assert writes == [(0x10, 16), (0, 1), (0x10, 4), (0, 1), (0x10, 3), (0, 1)]  # reps, ap_start
    assert calls["invalidate"] == 3 and fake.frames_computed == 23
    out_slot = [c for c in fake.calls if c[0] == "recv.transfer"][1][1]
    assert out_slot % 8 == 0 and out_slot >= meta["output"]["frame_bytes"]
    tp = acc.throughput_test(x, repeats=1, latency_runs=1)
    assert tp["backend"] == "board" and tp["compute_fps"] > 0
    acc.close()
    assert not fake.live_buffers and calls["allocate"] == Counter(c[0] for c in fake.calls)["allocate"]
    assert Counter(c[0] for c in fake.calls)["freebuffer"] == 2


def test_board_mm2s_transfers_are_whole_frames(meta, answer, expected, overlay):
    """Every MM2S transfer ends with TLAST and the accelerator resynchronises on it, so a send
    split at buffer_max_size (200 bytes: 3 frames of 64 and 8 bytes of the 4th) would end a frame
    early; the fake pads such frames and counts them (the driver used to split there)."""
    x, ints, _ = expected
    fake = FakePynq(meta, answer, buffer_max_size=200)
    with board(meta, overlay, fake, batch=16) as acc:
        assert np.array_equal(acc.run(x).ints, ints)
    sends = [c[2] for c in fake.calls if c[0] == "send.transfer"]
    assert sends == [192] * 5 + [64] + [192] + [64]          # 16 = 5*3 + 1, then 4 = 3 + 1
    assert fake.short_frames == 0 and fake.frames_computed == 20


def _small_meta(meta, h=3, w=3):
    """`meta` with h x w x 1 uint8 input frames (9 bytes: not a multiple of the DMA width)."""
    m = json.loads(json.dumps(meta))
    m["input"] = drv.meta._stream({"h": h, "w": w, "c": 1, "kind": "uint", "bits": 8})
    return m


def _mix(meta):
    ob = meta["output"]["frame_bytes"]

    def answer(frames):   # any function of every byte of the frame
        acc = np.cumsum(frames.astype(np.int64) * np.arange(1, frames.shape[1] + 1), axis=1)[:, -1:]
        return ((acc + np.arange(ob)) % 251).astype(np.uint8)
    return answer


@pytest.mark.parametrize("max_size,slot,per_send", [(200, 9, 16), (64, 16, 1), (9 * 8, 9, 8)])
def test_board_input_layout_unaligned_frames(meta, overlay, max_size, slot, per_send):
    """9-byte frames, 8-byte DMA width: k frames per transfer with 9k a multiple of 8 when they fit,
    else one frame per 8-aligned 16-byte slot; never a transfer that ends inside a frame."""
    m = _small_meta(meta)
    fake = FakePynq(m, _mix(m), buffer_max_size=max_size)
    frames = np.random.default_rng(1).integers(0, 256, (20, 9), dtype=np.uint8)
    be = PynqBackend(m, overlay, 20, pynq=fake, timeout=2.0)
    try:
        assert (be.in_slot, be.frames_per_send) == (slot, per_send)
        assert np.array_equal(be.execute(frames), _mix(m)(frames))
    finally:
        be.close()
    sends = [c[1:] for c in fake.calls if c[0] == "send.transfer"]
    assert all(nb % 9 == 0 and nb <= max_size and st % 8 == 0 for st, nb in sends)
    assert sum(nb for _, nb in sends) == 20 * 9 and fake.short_frames == 0


def test_board_frame_larger_than_dma_transfer_refused_at_open(meta, overlay):
    m = _small_meta(meta, 64, 64)   # 4096-byte frames
    fake = FakePynq(m, _mix(m), buffer_max_size=4000)
    with pytest.raises(drv.DMAError) as e:
        PynqBackend(m, overlay, 4, pynq=fake)
    msg = str(e.value)
    assert "\n" not in msg and "4096 bytes" in msg and "4000 bytes" in msg
    assert not fake.live_buffers and not [c for c in fake.calls if c[0] == "allocate"]


def test_fake_board_models_input_tlast(meta, overlay):
    """The fake ends a frame at every MM2S transfer's end: a driver that split frames would get
    padded frames (wrong answers, short_frames > 0)."""
    m = _small_meta(meta)
    fake = FakePynq(m, _mix(m), buffer_max_size=200)
    be = PynqBackend(m, overlay, 4, pynq=fake, timeout=0.3)
    try:
        frames = np.arange(36, dtype=np.uint8).reshape(4, 9)
        be.frames_per_send = 1
        be.execute(frames[:1])
        assert fake.short_frames == 0
        fake.reset_hardware()
        be.ip.write(0x10, 1), be.ip.write(0, 1)
        buf = be._in_buf
        buf[:9] = frames[1]
        be.dma.sendchannel.transfer(buf, start=0, nbytes=8)   # ends one byte early: TLAST
        while not be.dma.sendchannel.idle:
            pass
        assert fake.short_frames == 1 and fake.frames_computed == 2
        padded = frames[1].copy()
        padded[8] = 0
        pkt = fake.out_packets[0]
        assert pkt == _mix(m)(padded[None])[0].tobytes()
    finally:
        be.close()


def test_board_fake_free_running(meta, answer, expected, overlay):
    """An overlay without the accelerator's control registers (the RTL top): just stream."""
    x, ints, _ = expected
    fake = FakePynq(meta, answer, control=False, capacity=1)
    with board(meta, overlay, fake, batch=8) as acc:
        assert np.array_equal(acc.run(x).ints, ints)
    assert not [c for c in fake.calls if c[0] == "ip.write"] and not fake.live_buffers


def test_board_timeout_then_reset(meta, answer, expected, overlay):
    x, ints, _ = expected
    fake = FakePynq(meta, answer, hang=True)
    acc = board(meta, overlay, fake, timeout=0.3)
    t = time.perf_counter()
    with pytest.raises(drv.AcceleratorTimeout, match="no progress for 0.3 s.*reset"):
        acc.run(x)
    assert time.perf_counter() - t < 3
    assert ("dma.write", 0, 4) in fake.calls  # DMA soft reset
    with pytest.raises(drv.ClosedError, match="reset"):
        acc.run(x)
    fake.hang = False
    acc.reset()
    assert Counter(c[0] for c in fake.calls)["Overlay"] == 2
    assert np.array_equal(acc.run(x).ints, ints)
    acc.close()
    assert not fake.live_buffers


def test_board_dma_error(meta, answer, expected, overlay):
    """Output packets longer than cfgen_meta.json says (a mismatched bitstream): DMAError."""
    fake = FakePynq(meta, answer, packet_pad=8)
    with board(meta, overlay, fake) as acc:
        with pytest.raises(drv.DMAError, match="receive"):
            acc.run(expected[0][:2])
    assert not fake.live_buffers


def test_board_bad_input_never_reaches_dma(meta, answer, expected, overlay):
    fake = FakePynq(meta, answer)
    with board(meta, overlay, fake) as acc:
        n = len(fake.calls)
        with pytest.raises(drv.InputError):
            acc.run(expected[0].astype(np.float64))
        assert len(fake.calls) == n


def test_board_open_errors(build, meta, answer, overlay, tmp_path):
    with pytest.raises(drv.OverlayError, match="make bitstream"):  # checked before pynq is imported
        PynqBackend(meta, tmp_path / "none.bit")
    overlay.with_suffix(".hwh").rename(tmp_path / "moved.hwh")
    with pytest.raises(drv.OverlayError, match=r"\.hwh"):
        PynqBackend(meta, overlay, pynq=FakePynq(meta, answer))
    (tmp_path / "moved.hwh").rename(overlay.with_suffix(".hwh"))
    fake = FakePynq(meta, answer, no_device=True)
    with pytest.raises(drv.BoardUnavailable, match="No Devices Found.*csim"):
        PynqBackend(meta, overlay, pynq=fake)
    fake = FakePynq(meta, answer, dma=False)
    with pytest.raises(drv.OverlayError, match="no AXI DMA"):
        PynqBackend(meta, overlay, pynq=fake)
    fake = FakePynq(meta, answer, fail_alloc_after=1)
    with pytest.raises(drv.OverlayError, match="allocating"):
        PynqBackend(meta, overlay, pynq=fake)
    assert not fake.live_buffers  # the first buffer was freed
    try:
        import pynq  # noqa: F401
    except ImportError:
        with pytest.raises(drv.BoardUnavailable, match="pynq is not importable"):
            PynqBackend(meta, overlay)
        # auto: the overlay is there but pynq is not: falls back to an off-board backend
        with Accelerator.open(build, "auto", bitfile=overlay) as acc:
            assert acc.backend_name in ("csim", "golden")


# ----------------------------------------------------------------------------- package and notebook

def _make(build, target, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-C", str(build), target], capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, **(env or {})))


def test_package(build, meta, tmp_path):
    r = _make(build, "package")
    assert r.returncode == 0, r.stderr
    assert "INCOMPLETE" in r.stderr and "make bitstream" in r.stderr
    pkg = build / "package"
    man = json.loads((pkg / "MANIFEST.json").read_text())
    assert man["complete"] is False and len(man["missing"]) == 2
    for f in ("README.md", "cfgen_meta.json", "cfgen_demo.ipynb", "cfgen_driver/__init__.py",
              "cfgen_driver/board.py", "vectors/input.npy", "vectors/labels.npy", "vectors/meta.json"):
        assert f in man["files"], f
    assert "INCOMPLETE" in (pkg / "README.md").read_text()
    assert (build / "package.tar.gz").is_file()
    from generator.flows import package
    assert package.main([str(build), "--strict"]) == 2
    # with an overlay from `make bitstream` (OUT/vivado/<top>.bit + .hwh)
    top = meta["ip"]["top"]
    (build / "vivado").mkdir(exist_ok=True)
    (build / "vivado" / f"{top}.bit").write_bytes(b"bit")
    (build / "vivado" / f"{top}.hwh").write_text("hwh")
    try:
        man = package.make_package(build, strict=True, log=lambda m: None)
    finally:
        (build / "vivado" / f"{top}.bit").unlink()
        (build / "vivado" / f"{top}.hwh").unlink()
    assert man["complete"] and f"{top}.bit" in man["files"] and f"{top}.hwh" in man["files"]
    # the package on its own (as on the board, no repository on sys.path): metadata and driver load,
    # the overlay is found, pynq is what is missing off-board
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import cfgen_driver as d\n"
            "try:\n    d.Accelerator.open(sys.argv[1], 'board')\n"
            "except (d.BoardUnavailable, d.OverlayError) as e:\n    print(type(e).__name__, e)\n"
            "assert 'generator' not in sys.modules and 'torch' not in sys.modules\n")
    r = subprocess.run([sys.executable, "-c", code, str(pkg)], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("BoardUnavailable") or "No Devices Found" in r.stdout


@pytest.mark.hls
def test_notebook_runs_headless_on_csim(build, csim, expected):
    r = _make(build, "run-notebook")
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads((build / "notebook" / "results.json").read_text())
    x, ints, gpred = expected
    assert res["backend"] == "csim" and res["frames"] == len(x) == res["golden_frames"]
    assert res["agreement_with_golden"] == 1.0 and res["outputs_equal_golden"] is True
    assert res["predictions"] == gpred.tolist()
    labels = np.load(build / "vectors" / "labels.npy")
    assert res["accuracy"] == pytest.approx(float((gpred == labels).mean()))
    assert res["fps"] > 0
