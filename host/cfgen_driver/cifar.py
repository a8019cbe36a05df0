"""CIFAR-10 python batches (data_batch_1..5, test_batch) read with a restricted unpickler.

The one implementation used by the board-side notebook (cfgen_demo.ipynb) and by the generator
(generator/model/data.py imports it from here): numpy only, no torch, no `generator`.

The official batches are pickles of plain dicts holding a uint8 array and lists; the unpickler
admits only the numpy reconstruction functions those need, so a hostile file (one whose
__reduce__ names os.system, builtins.eval, ...) is refused before anything runs:
`DataFileError`, one line.
Official files (Python 2 pickles) name numpy.core.multiarray; batches re-pickled with numpy 2
name numpy._core.multiarray (protocol <= 4) or numpy._core.numeric (protocol 5).
"""

from __future__ import annotations

import importlib
import os
import pickle
from pathlib import Path

import numpy as np

from .checks import one_line
from .errors import DataFileError

NUM_CLASSES = 10
IMAGE_BYTES = 3 * 32 * 32
#: the official test_batch is 31 MB; anything far larger is not a CIFAR-10 batch.
MAX_FILE_BYTES = 256 << 20


def _np_core(name: str):
    try:
        return importlib.import_module(f"numpy._core.{name}")  # numpy >= 2
    except ImportError:
        return importlib.import_module(f"numpy.core.{name}")  # numpy 1.x (PYNQ images)


_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("_codecs", "encode"),  # bytes in a Python 3 protocol-2 pickle
}


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals a CIFAR-10 batch needs; anything else is UnpicklingError."""

    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"forbidden global {one_line(module, 60)}.{one_line(name, 60)} "
                                         "(not a CIFAR-10 batch: refused without running it)")
        if module == "numpy":
            return getattr(np, name)
        if module == "_codecs":
            import _codecs
            return _codecs.encode
        return getattr(_np_core(module.rsplit(".", 1)[1]), name)


_LOAD_ERRORS = (OSError, pickle.UnpicklingError, KeyError, ValueError, EOFError, TypeError, AttributeError,
                IndexError, OverflowError, MemoryError, RecursionError, UnicodeDecodeError)


def _where(path) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise DataFileError(f"a CIFAR-10 batch path must be a file name, got {type(path).__name__}")
    return one_line(Path(path))


def _reason(e: BaseException) -> str:
    lines = str(e).splitlines()
    return one_line(lines[0] if lines else type(e).__name__, 160)


def unpickle(path):
    """The object in a pickle file, through RestrictedUnpickler (bytes keys, as CIFAR-10's)."""
    where = _where(path)
    try:
        size = Path(path).stat().st_size
        if size > MAX_FILE_BYTES:
            raise DataFileError(f"{where}: {size} bytes is too large for a CIFAR-10 batch")
        with open(path, "rb") as fh:
            return RestrictedUnpickler(fh, encoding="bytes").load()
    except _LOAD_ERRORS as e:
        raise DataFileError(f"{where}: not a CIFAR-10 python batch ({_reason(e)})") from None


def read_batch(path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch -> (uint8 (N, 3, 32, 32) images, int64 (N,) labels)."""
    d = unpickle(path)
    where = _where(path)
    try:
        if not isinstance(d, dict):
            raise TypeError(f"holds a {type(d).__name__}, not a dict")
        d = {k.decode("latin-1") if isinstance(k, bytes) else k: v for k, v in d.items()}
        data, labels = d["data"], d["labels"]
        if isinstance(data, np.ndarray) and data.dtype == object or \
                isinstance(labels, np.ndarray) and labels.dtype == object:
            raise TypeError("object arrays")
        data = np.asarray(data, dtype=np.uint8)
        labels = np.asarray(labels, dtype=np.int64)
        if data.ndim != 2 or data.shape[1] != IMAGE_BYTES or labels.ndim != 1:
            raise ValueError(f"data {data.shape}, labels {labels.shape}; want (N, {IMAGE_BYTES}) and (N,)")
    except _LOAD_ERRORS as e:
        raise DataFileError(f"{where}: not a CIFAR-10 python batch ({_reason(e)})") from None
    if len(data) != len(labels):
        raise DataFileError(f"{where}: {len(data)} images but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DataFileError(f"{where}: labels outside 0..{NUM_CLASSES - 1}")
    return data.reshape(-1, 3, 32, 32), labels


def load_test_batch(path, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The first n images of a batch as the accelerator takes them: uint8 (n, 32, 32, 3), labels."""
    data, labels = read_batch(path)
    if n is not None:
        data, labels = data[:n], labels[:n]
    return np.ascontiguousarray(data.transpose(0, 2, 3, 1)), labels


def find_test_batch(*folders) -> Path | None:
    """The first `test_batch` in one of `folders` (or its cifar-10-batches-py/ subfolder)."""
    for d in folders:
        if not d:
            continue
        for cand in (Path(d, "test_batch"), Path(d, "cifar-10-batches-py", "test_batch")):
            if cand.is_file():
                return cand
    return None
