"""The driver's user API: one class, the same on the board and off it.

    from cfgen_driver import Accelerator
    with Accelerator.open("package/", backend="auto") as acc:   # or a build folder
        p = acc.run(images)            # uint8 (N, H, W, C), e.g. (N, 32, 32, 3)
        p.classes, p.logits, p.names   # argmax, ints * logit_scale, class names
        acc.throughput_test(images)    # frames/s, latency, pack / copy / compute split
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import checks
from . import meta as meta_mod
from . import weightfile
from .backends import Backend, CSimBackend, GoldenBackend
from .errors import BackendUnavailable, BoardUnavailable, ClosedError, DriverError, InputError
from .packing import pack_frames, unpack_frames

BACKENDS = ("auto", "board", "csim", "golden")
STAGES = ("pack", "copy_in", "compute", "copy_out", "unpack")


@dataclass
class Prediction:
    ints: np.ndarray     # int64 (N, classes): the accelerator's output integers
    logits: np.ndarray   # float64 (N, classes): ints * logit_scale
    classes: np.ndarray  # int64 (N,): argmax
    names: list          # class name of each prediction

    def __len__(self):
        return len(self.classes)


def _is_build_dir(p: Path) -> bool:
    return (p / "graph.json").is_file()


class Accelerator:
    """Classifies uint8 images through a backend that takes and returns packed stream frames."""

    def __init__(self, meta: dict, backend: Backend):
        self.meta = meta_mod.validate(meta)
        if not isinstance(backend, Backend):
            raise DriverError(f"backend must be a cfgen_driver Backend, got {type(backend).__name__}")
        self.backend = backend
        self.batch = backend.max_batch
        self.last_timing = dict.fromkeys(STAGES, 0.0)
        self._closed = False
        self.weights = None      # the weight file loaded last (run-time weights builds)

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, path=".", backend: str = "auto", *, build_dir=None, bitfile=None, batch: int = 64,
             timeout: float = 5.0, pynq=None, dma_name=None, ip_name=None, log=None,
             weights=None) -> "Accelerator":
        """Open a package folder (cfgen_meta.json, .bit/.hwh) or a build folder.

        backend: 'board' (pynq overlay + DMA), 'csim' (HLS C simulation, needs the build folder),
        'golden' (NumPy golden model, needs the build folder), or 'auto': board when an overlay
        is present and pynq imports, else csim, else golden. $CFGEN_BACKEND overrides 'auto'.
        build_dir defaults to `path` when it is a build folder, else $CFGEN_BUILD_DIR, else the
        build folder the package was made from (when it still exists: off-board use).
        weights: for a build made with --runtime-weights, the weight folder to load at open
        (default: the package's or the build's weights/; False: load nothing yet, call
        load_weights() before running).
        """
        from .board import PynqBackend, find_bitfile

        batch = checks.count(batch, "batch")
        timeout = checks.seconds(timeout, "timeout")
        if log is not None and not callable(log):
            raise InputError(f"log must be a function (e.g. print) or None, got {type(log).__name__}")
        if backend == "auto":
            backend = os.environ.get("CFGEN_BACKEND") or "auto"
        if not isinstance(backend, str) or backend not in BACKENDS:
            raise DriverError(f"unknown backend {checks.one_line(repr(backend), 60)} (one of {', '.join(BACKENDS)})")
        meta = meta_mod.load(path)
        path = Path(path)
        if build_dir is not None and not isinstance(build_dir, (str, os.PathLike)):
            raise InputError(f"build_dir must be a folder name, got {type(build_dir).__name__}")
        folder = path if path.is_dir() else path.parent
        if build_dir is None:
            cands = [folder] if _is_build_dir(folder) else []
            cands += [Path(p) for p in (os.environ.get("CFGEN_BUILD_DIR"), meta.get("build_dir")) if p]
            build_dir = next((c for c in cands if _is_build_dir(c)), None)
        if bitfile is None:
            bitfile = find_bitfile(folder) or (find_bitfile(Path(build_dir) / "package") if build_dir else None)

        if backend == "auto":
            errors = []
            order = (["board"] if bitfile is not None else []) + ["csim", "golden"]
            for name in order:
                try:
                    return cls.open(path, name, build_dir=build_dir, bitfile=bitfile, batch=batch,
                                    timeout=timeout, pynq=pynq, dma_name=dma_name, ip_name=ip_name, log=log,
                                    weights=weights)
                except (BackendUnavailable, BoardUnavailable) as e:
                    errors.append(f"{name}: {e}")
                    if log:
                        log(f"backend {name} unavailable: {e}")
            raise BackendUnavailable("no backend can run here: " + "; ".join(errors))
        if backend == "board":
            be = PynqBackend(meta, bitfile, batch, timeout=timeout, pynq=pynq, dma_name=dma_name, ip_name=ip_name)
        elif backend == "csim":
            be = CSimBackend(meta, build_dir, batch, log=log)
        else:
            be = GoldenBackend(meta, build_dir, batch)
        acc = cls(meta, be)
        if meta.get("weights") and weights is not False:
            if weights is None:
                cands = [folder / "weights"] + ([Path(build_dir) / "weights"] if build_dir else [])
                weights = next((c for c in cands if (c / weightfile.MANIFEST).is_file()), cands[0])
            try:
                acc.load_weights(weights)
                if log:
                    log(f"loaded run-time weights {acc.weights.describe()}")
            except BaseException:
                acc.close()
                raise
        return acc

    # ------------------------------------------------------------------ run-time weights
    def load_weights(self, path) -> None:
        """Write a weight file (a folder from the build or from `python -m generator weights`)
        through the weight port; raises WeightsError unless the hardware's checksum of what it
        received equals the file's. Then every frame runs with these weights."""
        if self._closed:
            raise ClosedError("the accelerator is closed")
        wf = weightfile.read(path)
        weightfile.check_fits(wf, self.meta)
        self.weights = None
        status = self.backend.load_weights(wf)
        weightfile.check_status(wf, status)
        self.weights = wf

    # ------------------------------------------------------------------ properties
    @property
    def backend_name(self) -> str:
        return self.backend.name

    @property
    def input_shape(self) -> tuple:
        s = self.meta["input"]
        return (s["h"], s["w"], s["c"])

    @property
    def num_classes(self) -> int:
        return self.meta["num_classes"]

    @property
    def class_names(self) -> list:
        return list(self.meta["class_names"])

    def __repr__(self):
        state = "closed" if self._closed else self.backend.describe()
        return (f"<Accelerator {self.meta['name']} on {self.meta.get('board')}: input {self.input_shape} uint8, "
                f"{self.num_classes} classes, batch {self.batch}, {state}>")

    # ------------------------------------------------------------------ input checks
    def check_images(self, images) -> np.ndarray:
        """uint8 (N, H, W, C) (or one (H, W, C) image; (N, H, W) when C = 1) -> contiguous uint8."""
        h, w, c = self.input_shape
        if not isinstance(images, np.ndarray):
            if not isinstance(images, (list, tuple)):
                raise InputError(f"images must be a numpy array, got {type(images).__name__}")
            try:
                images = np.asarray(images)
            except (ValueError, TypeError, OverflowError) as e:  # ragged nesting (numpy >= 1.24)
                raise InputError(f"images: a ragged or non-numeric list cannot be an (N, {h}, {w}, {c}) array "
                                 f"({checks.one_line(e, 120)})") from None
            if images.dtype == object:  # ragged nesting (numpy < 1.24) or Python objects
                raise InputError(f"images: a ragged list or a list of Python objects cannot be an "
                                 f"(N, {h}, {w}, {c}) uint8 array")
        x = images
        if x.ndim == 3 and x.shape == (h, w, c):
            x = x[None]
        elif x.ndim == 3 and c == 1 and x.shape[1:] == (h, w):
            x = x[..., None]
        if x.ndim != 4 or x.shape[1:] != (h, w, c):
            hint = ""
            if x.ndim == 4 and x.shape[1:] == (c, h, w):
                hint = " (these look like NCHW images: pass images.transpose(0, 2, 3, 1))"
            raise InputError(f"images must be shaped (N, {h}, {w}, {c}) (N, H, W, C), got {tuple(images.shape)}{hint}")
        if x.shape[0] == 0:
            raise InputError("no images (N = 0)")
        if x.dtype != np.uint8:
            if x.dtype.kind == "b" or x.dtype.kind not in "iu":
                raise InputError(f"images must be uint8 pixels 0..255, got dtype {x.dtype} (floats are not "
                                 "rescaled implicitly: convert with np.clip(x, 0, 255).astype(np.uint8) "
                                 "after undoing any normalization)")
            lo, hi = int(x.min()), int(x.max())
            if lo < 0 or hi > 255:
                raise InputError(f"pixel values must lie in 0..255, got {lo}..{hi} (dtype {x.dtype})")
            x = x.astype(np.uint8)
        return np.ascontiguousarray(x)

    # ------------------------------------------------------------------ running
    def run_ints(self, images) -> np.ndarray:
        """Raw output integers (N, classes) int64 (the output stream, unpacked)."""
        if self._closed:
            raise ClosedError("the accelerator is closed (its buffers are freed)")
        if self.meta.get("weights") and self.weights is None:
            raise weightfile.WeightsError("this build loads its weights at run time and none are "
                                          "loaded: call load_weights(folder) first")
        x = self.check_images(images)
        timing = dict.fromkeys(STAGES, 0.0)
        outs = []
        for s in range(0, len(x), self.batch):
            t0 = time.perf_counter()
            frames = pack_frames(x[s:s + self.batch], self.meta["input"])
            t1 = time.perf_counter()
            raw = self.backend.execute(frames)
            t2 = time.perf_counter()
            outs.append(unpack_frames(raw, self.meta["output"]).reshape(len(frames), -1))
            t3 = time.perf_counter()
            timing["pack"] += t1 - t0
            timing["unpack"] += t3 - t2
            for k in ("copy_in", "compute", "copy_out"):
                timing[k] += self.backend.timing[k]
        self.last_timing = timing
        return np.concatenate(outs)

    def run(self, images) -> Prediction:
        ints = self.run_ints(images)
        # a swapped model's integers have its own scale (the weight file's)
        scale = self.weights.logit_scale if self.weights is not None and self.weights.logit_scale \
            else float(self.meta["logit_scale"])
        logits = ints.astype(np.float64) * scale
        classes = ints.argmax(axis=1)  # logit_scale > 0: the ints rank classes like the logits
        names = [self.meta["class_names"][i] for i in classes]
        return Prediction(ints, logits, classes, names)

    def predict(self, images) -> np.ndarray:
        return self.run(images).classes

    def logits(self, images) -> np.ndarray:
        return self.run(images).logits

    def throughput_test(self, images=None, frames: int | None = None, repeats: int = 3,
                        latency_runs: int = 5, warmup: bool | None = None) -> dict:
        """Frames/s and latency, with the time split into pack / copy_in / compute / copy_out / unpack.

        images: uint8 (N, H, W, C) (default: `frames` random images, default 4 batches).
        fps is end to end (packing and copies included); compute_fps counts only the backend's
        compute (on the board: DMA + accelerator, from the first transfer to the last frame back).
        latency_ms: one frame alone, end to end (median of latency_runs).
        warmup: one untimed batch first (default: on the board only).
        """
        if frames is not None:
            frames = checks.count(frames, "frames")
        repeats = checks.count(repeats, "repeats", hi=checks.MAX_REPEATS)
        latency_runs = checks.count(latency_runs, "latency_runs", hi=checks.MAX_REPEATS)
        if warmup is not None and not isinstance(warmup, (bool, np.bool_)):
            raise InputError(f"warmup must be True, False or None, got {type(warmup).__name__}")
        if images is None:
            n = frames or 4 * self.batch
            checks.buffer_bytes(n, self.meta["input"]["frame_bytes"], "random-image", limit=1 << 30,
                                name="frames")
            images = np.random.default_rng(0).integers(0, 256, (n,) + self.input_shape, dtype=np.uint8)
        x = self.check_images(images)
        if frames is not None:
            x = x[:frames]
        if warmup if warmup is not None else self.backend_name == "board":
            self.run_ints(x[:min(len(x), self.batch)])
        total = dict.fromkeys(STAGES, 0.0)
        wall = 0.0
        for _ in range(repeats):
            t0 = time.perf_counter()
            self.run_ints(x)
            wall += time.perf_counter() - t0
            for k in STAGES:
                total[k] += self.last_timing[k]
        nframes = len(x) * repeats
        lat, lat_compute = [], []
        for _ in range(latency_runs):
            t0 = time.perf_counter()
            self.run_ints(x[:1])
            lat.append(time.perf_counter() - t0)
            lat_compute.append(self.last_timing["compute"])
        return {
            "backend": self.backend_name,
            "frames": nframes,
            "batch": self.batch,
            "seconds": wall,
            "fps": nframes / wall if wall > 0 else float("inf"),
            "compute_fps": nframes / total["compute"] if total["compute"] > 0 else float("inf"),
            "latency_ms": 1e3 * float(np.median(lat)),
            "compute_latency_ms": 1e3 * float(np.median(lat_compute)),
            "us_per_frame": {k: 1e6 * v / nframes for k, v in total.items()},
        }

    # ------------------------------------------------------------------ lifetime
    def reset(self) -> None:
        """Board: re-download the overlay after a timeout / DMA error. Elsewhere: nothing to do."""
        if self._closed:
            raise ClosedError("the accelerator is closed")
        if hasattr(self.backend, "reset"):
            self.backend.reset()
            if self.weights is not None:    # a new overlay starts with empty weight memories
                self.load_weights(self.weights.folder)

    def close(self) -> None:
        """Free the buffers (board: the contiguous DMA buffers). Safe to call twice."""
        if not self._closed:
            self._closed = True
            self.backend.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
