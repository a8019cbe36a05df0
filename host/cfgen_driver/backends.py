"""Off-board backends with the board's interface: packed frames in, packed frames out.

Every backend takes uint8 (n, input frame_bytes) exactly as the DMA would send them and
returns uint8 (n, output frame_bytes) exactly as the DMA would receive them, so the
packing code is exercised everywhere. `timing` holds the last call's copy_in / compute /
copy_out seconds.

- GoldenBackend: the NumPy golden model (generator.golden) on OUT/graph.json + graph.npz.
- CSimBackend: the generated HLS top compiled with g++ into a shared library together with
  templates/host/csim_shim.cpp (extern "C" cfgen_run), called through ctypes.
Both need the build folder and the cfgen repository (the `generator` package): off-board only.
The board backend is in board.py.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .errors import BackendUnavailable, ClosedError, MetadataError, SimulationError
from .packing import pack_frames, unpack_frames

#: the cfgen repository when the driver runs from it (host/cfgen_driver -> repo root).
REPO_ROOT = Path(__file__).resolve().parents[2]


class Backend:
    name = "backend"

    def __init__(self, meta: dict, max_batch: int):
        self.meta = meta
        self.max_batch = int(max_batch)
        self.timing = {"copy_in": 0.0, "compute": 0.0, "copy_out": 0.0}
        self._closed = False

    def execute(self, frames: np.ndarray) -> np.ndarray:
        if self._closed:
            raise ClosedError(f"the {self.name} backend is closed")
        n = frames.shape[0]
        if not 1 <= n <= self.max_batch:
            raise ValueError(f"batch of {n} frames; this backend takes 1..{self.max_batch}")
        if frames.dtype != np.uint8 or frames.shape[1:] != (self.meta["input"]["frame_bytes"],):
            raise ValueError(f"packed frames must be uint8 (n, {self.meta['input']['frame_bytes']})")
        return self._execute(frames)

    def _execute(self, frames):  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    def describe(self) -> str:
        return self.name


def import_generator():
    """The cfgen `generator` package (off-board only), from sys.path or this repository."""
    try:
        import generator  # noqa: F401
    except ImportError:
        if (REPO_ROOT / "generator" / "__init__.py").is_file():
            sys.path.insert(0, str(REPO_ROOT))
        try:
            import generator  # noqa: F401,F811
        except ImportError:
            raise BackendUnavailable("the cfgen generator package is not importable here (the golden and "
                                     "C-simulation backends run off-board from the cfgen repository; on a "
                                     "board use backend='board')") from None
    import generator
    return generator


def _check_build(build_dir, what: str) -> Path:
    if build_dir is None:
        raise BackendUnavailable(f"the {what} backend needs the build folder (build_dir=OUT)")
    b = Path(build_dir)
    if not (b / "graph.json").is_file():
        raise BackendUnavailable(f"{b} is not a cfgen build folder (no graph.json): the {what} backend "
                                 "needs the build folder written by `python -m generator build`")
    return b


def _check_meta_matches(meta: dict, graph: dict, where) -> None:
    s, o = graph["input"], graph["nodes"][-1]["out"]
    mi, mo = meta["input"], meta["output"]
    if (s["h"], s["w"], s["c"]) != (mi["h"], mi["w"], mi["c"]) or \
            (o["h"], o["w"], o["c"], o["kind"], o["bits"]) != (mo["h"], mo["w"], mo["c"], mo["kind"], mo["bits"]):
        raise MetadataError(f"cfgen_meta.json does not describe the graph in {where} "
                            "(different shapes or output format): re-run `make package`")


class GoldenBackend(Backend):
    """The golden model (bit-exact specification) behind the stream interface."""
    name = "golden"

    def __init__(self, meta: dict, build_dir, max_batch: int = 64):
        super().__init__(meta, max_batch)
        b = _check_build(build_dir, "golden")
        import_generator()
        from generator import golden
        from generator.ir import Graph
        self._golden = golden
        self.graph = Graph.load(b)
        _check_meta_matches(meta, self.graph.to_dict(), b)

    def _execute(self, frames):
        t0 = time.perf_counter()
        pixels = unpack_frames(frames, self.meta["input"]).astype(np.uint8)
        t1 = time.perf_counter()
        out = self._golden.run(self.graph, pixels, batch=max(16, len(pixels)))[-1]
        t2 = time.perf_counter()
        raw = pack_frames(out, self.meta["output"])
        t3 = time.perf_counter()
        self.timing = {"copy_in": t1 - t0, "compute": t2 - t1, "copy_out": t3 - t2}
        return raw


# ------------------------------------------------------------------------ C simulation

def shim_source(build_dir: Path) -> Path:
    for cand in (build_dir / "host" / "csim_shim.cpp", REPO_ROOT / "templates" / "host" / "csim_shim.cpp"):
        if cand.is_file():
            return cand
    raise BackendUnavailable("csim_shim.cpp not found (neither in OUT/host/ nor in the cfgen repository)")


def hls_manifest(build_dir: Path) -> dict:
    p = build_dir / "hls" / "manifest.json"
    if not p.is_file():
        raise BackendUnavailable(f"{build_dir}/hls/manifest.json not found: this build has no HLS backend "
                                 "(the C-simulation backend compiles the generated HLS code)")
    return json.loads(p.read_text())


def csim_command(build_dir, output: Path) -> list[str]:
    """The g++ command that builds the C-simulation shared library of OUT/hls/."""
    build_dir = Path(build_dir)
    gen = import_generator()  # noqa: F841
    from generator import tools
    man = hls_manifest(build_dir)
    hls = build_dir / "hls"
    top = man["top"]
    try:
        cxx = str(tools.cxx())
        flags = tools.hls_cxxflags(opt="-O2", werror=False)
    except tools.ToolMissing as e:
        raise BackendUnavailable(f"C simulation needs g++ and the ap_types headers: {e}") from None
    incs = []
    for d in list(man.get("sim_include_dirs", ["sim"])) + list(man.get("include_dirs", ["include", "src"])):
        incs += ["-I", str(hls / d)]
    defs = [f"-DCFGEN_TOP={top}", f'-DCFGEN_TOP_HEADER="{top}.h"']
    if man.get("ap_int_max_w"):
        defs.append(f"-DAP_INT_MAX_W={int(man['ap_int_max_w'])}")
    srcs = [str(shim_source(build_dir))] + [str(hls / s) for s in man["sources"]]
    return [cxx, *flags, "-fPIC", "-shared", *defs, *incs, *srcs, "-o", str(output)]


def _digest(build_dir: Path, cmd: list[str]) -> str:
    h = hashlib.sha256(" ".join(cmd[:-1]).encode())
    hls = build_dir / "hls"
    files = [shim_source(build_dir)] + sorted(p for sub in ("include", "sim", "src")
                                              for p in (hls / sub).rglob("*") if p.is_file())
    for p in files:
        h.update(str(p.relative_to(build_dir) if p.is_relative_to(build_dir) else p.name).encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def build_csim_library(build_dir, log=None, timeout: float = 1800) -> Path:
    """Compile (once; cached by a digest of sources and flags) OUT/host/csim/libcfgen_csim_<digest>.so."""
    build_dir = Path(build_dir)
    cache = build_dir / "host" / "csim"
    cache.mkdir(parents=True, exist_ok=True)
    probe = cache / "probe.so"
    key = _digest(build_dir, csim_command(build_dir, probe))
    lib = cache / f"libcfgen_csim_{key}.so"
    if lib.is_file():
        return lib
    import fcntl
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if lib.is_file():
            return lib
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=cache)
        os.close(fd)
        cmd = csim_command(build_dir, Path(tmp))
        if log:
            log(f"compiling the C-simulation library ({Path(cmd[-3]).name} + shim) ...")
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            os.unlink(tmp)
            raise SimulationError(f"compiling the C-simulation library took over {timeout:.0f} s") from None
        if proc.returncode != 0:
            os.unlink(tmp)
            raise SimulationError("compiling the C-simulation library failed:\n" + " ".join(cmd) + "\n"
                                  + proc.stderr[-4000:])
        os.replace(tmp, lib)
        for old in cache.glob("libcfgen_csim_*.so"):
            if old != lib:
                old.unlink(missing_ok=True)
        if log:
            log(f"compiled {lib} in {time.perf_counter() - t0:.1f} s")
    return lib


_RC = {-1: "buffer sizes do not match reps frames", -2: "the top produced the wrong number of output beats",
       -3: "TLAST is not on the last beat of every output frame", -4: "the top left input beats unread"}


class CSimBackend(Backend):
    """The generated HLS code, compiled with g++ (C simulation), behind the stream interface."""
    name = "csim"

    def __init__(self, meta: dict, build_dir, max_batch: int = 64, log=None):
        super().__init__(meta, max_batch)
        b = _check_build(build_dir, "csim")
        _check_meta_matches(meta, json.loads((b / "graph.json").read_text()), b)
        self.library = build_csim_library(b, log=log)
        lib = ctypes.CDLL(str(self.library))
        lib.cfgen_run.restype = ctypes.c_int
        lib.cfgen_run.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_void_p,
                                  ctypes.c_size_t, ctypes.c_size_t, ctypes.c_uint]
        ib, ob = lib.cfgen_in_beat_bytes(), lib.cfgen_out_beat_bytes()
        if (ib, ob) != (meta["input"]["beat_bytes"], meta["output"]["beat_bytes"]):
            raise MetadataError(f"the HLS top's AXI-stream ports are {ib} / {ob} bytes per beat, the metadata "
                                f"says {meta['input']['beat_bytes']} / {meta['output']['beat_bytes']}")
        self._lib = lib
        # Buffers allocated once, like the board's contiguous buffers.
        self._in = np.zeros((self.max_batch, meta["input"]["frame_bytes"]), dtype=np.uint8)
        self._out = np.zeros((self.max_batch, meta["output"]["frame_bytes"]), dtype=np.uint8)

    def _execute(self, frames):
        n = frames.shape[0]
        mi, mo = self.meta["input"], self.meta["output"]
        t0 = time.perf_counter()
        self._in[:n] = frames
        t1 = time.perf_counter()
        rc = self._lib.cfgen_run(self._in.ctypes.data, n * mi["frame_bytes"], mi["frame_beats"],
                                 self._out.ctypes.data, n * mo["frame_bytes"], mo["frame_beats"], n)
        t2 = time.perf_counter()
        if rc != 0:
            raise SimulationError(f"C simulation of {n} frames: {_RC.get(rc, f'error {rc}')}")
        out = self._out[:n].copy()
        self.timing = {"copy_in": t1 - t0, "compute": t2 - t1, "copy_out": time.perf_counter() - t2}
        return out

    def close(self) -> None:
        self._in = self._out = None
        super().close()

    def describe(self) -> str:
        return f"csim ({self.library.name})"
