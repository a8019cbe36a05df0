"""Off-board backends with the board's interface: packed frames in, packed frames out.

Every backend takes uint8 (n, input frame_bytes) exactly as the DMA would send them and
returns uint8 (n, output frame_bytes) exactly as the DMA would receive them, so the
packing code is exercised everywhere. `timing` holds the last call's copy_in / compute /
copy_out seconds.

- GoldenBackend: the NumPy golden model (generator.hw.golden) on OUT/graph.json + graph.npz.
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
import re
import tempfile
import time
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np

from . import checks
from .errors import (BackendUnavailable, BuildFolderError, ClosedError, InputError, MetadataError,
                     SimulationError)
from .meta import validate as validate_meta
from .packing import pack_frames, unpack_frames

#: the cfgen repository when the driver runs from it (host/cfgen_driver -> repo root).
REPO_ROOT = Path(__file__).resolve().parents[2]


class Backend:
    name = "backend"

    def __init__(self, meta: dict, max_batch: int):
        self.meta = validate_meta(meta)
        self.max_batch = checks.count(max_batch, "batch")
        # refused with numbers before anything is allocated
        checks.buffer_bytes(self.max_batch, meta["input"]["frame_bytes"], "input")
        checks.buffer_bytes(self.max_batch, meta["output"]["frame_bytes"], "output")
        self.timing = {"copy_in": 0.0, "compute": 0.0, "copy_out": 0.0}
        self._closed = False

    def execute(self, frames: np.ndarray) -> np.ndarray:
        if self._closed:
            raise ClosedError(f"the {self.name} backend is closed")
        n = frames.shape[0]
        if not 1 <= n <= self.max_batch:
            raise InputError(f"batch of {n} frames; this backend takes 1..{self.max_batch}")
        if frames.dtype != np.uint8 or frames.shape[1:] != (self.meta["input"]["frame_bytes"],):
            raise InputError(f"packed frames must be uint8 (n, {self.meta['input']['frame_bytes']})")
        return self._execute(frames)

    def _execute(self, frames):  # pragma: no cover - abstract
        raise NotImplementedError

    def load_weights(self, wf) -> tuple:
        """Write a checked weight file (weightfile.WeightFile) through the weight port; returns
        the hardware's status words (s1, s2), which the caller compares with the file's."""
        if self._closed:
            raise ClosedError(f"the {self.name} backend is closed")
        return self._load_weights(wf)

    def _load_weights(self, wf):  # pragma: no cover - abstract
        raise BackendUnavailable(f"the {self.name} backend cannot load run-time weights")

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
    if not isinstance(build_dir, (str, os.PathLike)):
        raise BackendUnavailable(f"build_dir must be a folder name, got {type(build_dir).__name__}")
    b = Path(build_dir)
    if not (b / "graph.json").is_file():
        raise BackendUnavailable(f"{checks.one_line(b)} is not a cfgen build folder (no graph.json): the {what} "
                                 "backend needs the build folder written by `python -m generator build`")
    return b


#: what reading a damaged build-folder file (JSON, .npz) raises
_DAMAGED = (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError, EOFError, RecursionError,
            MemoryError, zipfile.BadZipFile, zlib.error)


def _damaged(path, e: BaseException) -> BuildFolderError:
    return BuildFolderError(f"{checks.one_line(path)}: missing or damaged ({type(e).__name__}: "
                            f"{checks.one_line(e, 160)}); rebuild with `python -m generator build`")


def read_json(path: Path, what: str = "object") -> dict:
    """A build-folder JSON file that must hold an object; BuildFolderError otherwise."""
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
    except _DAMAGED as e:
        raise _damaged(path, e) from None
    if not isinstance(d, dict):
        raise BuildFolderError(f"{checks.one_line(path)}: damaged (holds a {type(d).__name__}, not an {what})")
    return d


def _check_meta_matches(meta: dict, graph: dict, where) -> None:
    try:
        s, o = graph["input"], graph["nodes"][-1]["out"]
        got = ((s["h"], s["w"], s["c"]), (o["h"], o["w"], o["c"], o["kind"], o["bits"]))
    except (KeyError, TypeError, IndexError) as e:
        raise _damaged(Path(where) / "graph.json", e) from None
    mi, mo = meta["input"], meta["output"]
    if got != ((mi["h"], mi["w"], mi["c"]), (mo["h"], mo["w"], mo["c"], mo["kind"], mo["bits"])):
        raise MetadataError(f"cfgen_meta.json does not describe the graph in {checks.one_line(where)} "
                            "(different shapes or output format): re-run `make package`")


class GoldenBackend(Backend):
    """The golden model (bit-exact specification) behind the stream interface."""
    name = "golden"

    def __init__(self, meta: dict, build_dir, max_batch: int = 64):
        super().__init__(meta, max_batch)
        b = _check_build(build_dir, "golden")
        import_generator()
        from generator.hw import golden
        from generator.hw.ir import Graph
        self._golden = golden
        _check_meta_matches(meta, read_json(b / "graph.json"), b)
        from generator.core.errors import CfgenError
        try:
            self.graph = Graph.load(b)
        except CfgenError as e:  # the generator's own one-line reason (it checks the files too)
            raise BuildFolderError(f"{checks.one_line(e, 300)}; rebuild with `python -m generator build`") from None
        except _DAMAGED as e:
            which = "graph.npz" if isinstance(e, (zipfile.BadZipFile, zlib.error, EOFError)) or \
                not (b / "graph.npz").is_file() or "npz" in str(e) else "graph.json / graph.npz"
            raise _damaged(b / which, e) from None

    def _load_weights(self, wf):
        """The golden model has no memories to write: it runs the graph the weights were
        written from (beside them: `generator weights` writes graph.json / graph.npz into its
        folder; a build keeps them one level up), after proving that the words are that
        graph's, word for word. It answers with the checksum of those words."""
        from generator.core.errors import CfgenError
        from generator.hw import weights as hw_weights
        from generator.hw.ir import Graph
        from .errors import WeightsError
        from .weightfile import fletcher
        folder = next((d for d in (wf.folder, wf.folder.parent) if (d / "graph.json").is_file()), None)
        if folder is None:
            raise WeightsError(f"{wf.describe()}: the golden backend runs the model the weights come "
                               "from, and no graph.json / graph.npz lies beside them")
        try:
            graph = Graph.load(folder)
            words = hw_weights.stream(graph)
        except CfgenError as e:
            raise WeightsError(f"{checks.one_line(e, 300)}") from None
        if not np.array_equal(words, wf.words):
            raise WeightsError(f"{wf.describe()}: the words are not those of the graph in "
                               f"{checks.one_line(folder, 80)}")
        _check_meta_matches(self.meta, read_json(folder / "graph.json"), folder)
        self.graph = graph
        return fletcher(wf.words)

    def _execute(self, frames):
        t0 = time.perf_counter()
        pixels = unpack_frames(frames, self.meta["input"]).astype(np.uint8)
        t1 = time.perf_counter()
        try:
            out = self._golden.run(self.graph, pixels, batch=max(16, len(pixels)))[-1]
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
            # graph.npz loaded but its arrays do not fit the graph (a damaged or edited build)
            raise SimulationError(f"the golden model failed on this build folder ({type(e).__name__}: "
                                  f"{checks.one_line(e, 160)}): is graph.npz the one written with graph.json?") from None
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


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _relative_paths(man: dict, key: str, default, p: Path) -> list[str]:
    v = man.get(key, default)
    if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
        raise BuildFolderError(f"{checks.one_line(p)}: damaged ({key} must be a list of file names)")
    for x in v:
        q = PurePosixPath(x)
        if q.is_absolute() or ".." in q.parts or "\0" in x or "\n" in x:
            raise BuildFolderError(f"{checks.one_line(p)}: {key} entry {checks.one_line(repr(x), 60)} is not a "
                                   "path inside hls/")
    return v


def hls_manifest(build_dir: Path) -> dict:
    """OUT/hls/manifest.json, checked: the top is a C identifier (it becomes a -D define), sources
    and include folders are relative paths inside hls/."""
    p = build_dir / "hls" / "manifest.json"
    if not p.is_file():
        raise BackendUnavailable(f"{checks.one_line(build_dir)}/hls/manifest.json not found: this build has no "
                                 "HLS backend (the C-simulation backend compiles the generated HLS code)")
    man = read_json(p)
    if not isinstance(man.get("top"), str) or not _IDENT.fullmatch(man["top"]):
        raise BuildFolderError(f"{checks.one_line(p)}: damaged (top must be a C identifier, got "
                               f"{checks.one_line(repr(man.get('top')), 60)})")
    _relative_paths(man, "sources", None, p)
    for key, default in (("sim_include_dirs", ["sim"]), ("include_dirs", ["include", "src"])):
        _relative_paths(man, key, default, p)
    w = man.get("ap_int_max_w")
    if w is not None and (isinstance(w, bool) or not isinstance(w, int) or not 1 <= w <= 1 << 16):
        raise BuildFolderError(f"{checks.one_line(p)}: damaged (ap_int_max_w must be an integer in 1..65536)")
    return man


def csim_command(build_dir, output: Path) -> list[str]:
    """The g++ command that builds the C-simulation shared library of OUT/hls/."""
    build_dir = Path(build_dir)
    gen = import_generator()  # noqa: F841
    from generator.core import tools
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
    probe = cache / "probe.so"
    cmd = csim_command(build_dir, probe)
    try:
        key = _digest(build_dir, cmd)
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BuildFolderError(f"{checks.one_line(cache)}: cannot read the HLS sources or write the library "
                               f"({checks.one_line(e, 160)})") from None
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
            log_file = cache / "compile.log"
            log_file.write_text(" ".join(cmd) + "\n" + proc.stderr)
            lines = proc.stderr.strip().splitlines()
            first = next((ln for ln in lines if "error" in ln), lines[0] if lines else "no message")
            raise SimulationError(f"compiling the C-simulation library failed (g++ exit {proc.returncode}): "
                                  f"{checks.one_line(first, 200)}; full log in {log_file}")
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
        _check_meta_matches(meta, read_json(b / "graph.json"), b)
        self.library = build_csim_library(b, log=log)
        try:
            lib = ctypes.CDLL(str(self.library))
            lib.cfgen_run, lib.cfgen_in_beat_bytes, lib.cfgen_out_beat_bytes  # noqa: B018 - the shim's symbols
        except (OSError, AttributeError) as e:
            raise SimulationError(f"cannot load the C-simulation library {self.library.name}: "
                                  f"{checks.one_line(e, 200)}") from None
        lib.cfgen_run.restype = ctypes.c_int
        lib.cfgen_run.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_void_p,
                                  ctypes.c_size_t, ctypes.c_size_t, ctypes.c_uint]
        ib, ob = lib.cfgen_in_beat_bytes(), lib.cfgen_out_beat_bytes()
        if (ib, ob) != (meta["input"]["beat_bytes"], meta["output"]["beat_bytes"]):
            raise MetadataError(f"the HLS top's AXI-stream ports are {ib} / {ob} bytes per beat, the metadata "
                                f"says {meta['input']['beat_bytes']} / {meta['output']['beat_bytes']}")
        self._lib = lib
        if getattr(lib, "cfgen_load_weights", None) is not None:
            lib.cfgen_load_weights.restype = ctypes.c_int
            lib.cfgen_load_weights.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
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

    def _load_weights(self, wf):
        """The words through the HLS top's weight port (mode 1), as the board's DMA sends them."""
        if getattr(self._lib, "cfgen_load_weights", None) is None:
            raise BackendUnavailable(f"{self.library.name} has no weight port (the build keeps its "
                                     "weights in the bitstream)")
        words = np.ascontiguousarray(wf.words, dtype=np.uint32)
        status = np.zeros(2, dtype=np.uint32)
        rc = self._lib.cfgen_load_weights(words.ctypes.data, len(words), status.ctypes.data)
        if rc != 0:
            raise SimulationError(f"C simulation of the weight load: {_RC.get(rc, f'error {rc}')}")
        return int(status[0]), int(status[1])

    def close(self) -> None:
        self._in = self._out = None
        super().close()

    def describe(self) -> str:
        return f"csim ({self.library.name})"
