"""Datasets as uint8 pixels (N, C, H, W) and int64 labels; the model divides by 255."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError

DATASETS = ("digits", "cifar10")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")


@dataclass
class Split:
    images: np.ndarray  # uint8 (N, C, H, W)
    labels: np.ndarray  # int64 (N,)


@dataclass
class Dataset:
    name: str
    train: Split
    test: Split
    classes: tuple


def load_dataset(name: str, data_dir: str | None = None) -> Dataset:
    if name == "digits":
        return load_digits()
    if name == "cifar10":
        return load_cifar10(data_dir)
    raise DataError(f"unknown dataset '{name}' (known: {', '.join(DATASETS)})")


def load_digits(test_fraction: float = 0.25) -> Dataset:
    """scikit-learn's bundled 8x8 digits (values 0..16) scaled to 0..255; fixed split."""
    from sklearn.datasets import load_digits as sk_digits

    raw = sk_digits()
    images = np.round(raw.images * (255.0 / 16.0)).astype(np.uint8)[:, None, :, :]
    labels = raw.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))
    n_test = int(round(len(labels) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return Dataset("digits", Split(images[train], labels[train]),
                   Split(images[test], labels[test]), tuple(str(d) for d in range(10)))


def _cifar_folder(data_dir: str | None) -> Path:
    if not data_dir:
        raise DataError("CIFAR-10 is not downloaded here: pass --data-dir DIR, where DIR holds the "
                        "python batches (data_batch_1..5, test_batch) or a cifar-10-batches-py folder")
    base = Path(data_dir)
    for cand in (base, base / "cifar-10-batches-py"):
        if (cand / "test_batch").is_file():
            return cand
    raise DataError(f"{base}: no CIFAR-10 python batches found; put data_batch_1..5 and test_batch "
                    f"(from cifar-10-python.tar.gz) in {base}/cifar-10-batches-py/")


def _np_core(name: str):
    import importlib

    try:
        return importlib.import_module(f"numpy._core.{name}")  # numpy >= 2
    except ImportError:
        return importlib.import_module(f"numpy.core.{name}")


def _read_cifar_batch(path: Path) -> Split:
    # The official batches are pickles of plain dicts of numpy arrays and lists; a restricted
    # unpickler admits only those types so a hostile file cannot run code.
    # Official files (Python 2 pickles) name numpy.core.multiarray; batches re-pickled with
    # numpy 2 name numpy._core.multiarray (protocol <= 4) or numpy._core.numeric (protocol 5).
    class _Safe(pickle.Unpickler):
        def find_class(self, module, name):
            if module in ("numpy.core.multiarray", "numpy._core.multiarray") and \
                    name in ("_reconstruct", "scalar"):
                return getattr(_np_core("multiarray"), name)
            if module in ("numpy.core.numeric", "numpy._core.numeric") and name == "_frombuffer":
                return getattr(_np_core("numeric"), name)
            if module == "numpy" and name in ("ndarray", "dtype"):
                return getattr(np, name)
            if (module, name) == ("_codecs", "encode"):  # bytes in a Python 3 protocol-2 pickle
                import _codecs

                return _codecs.encode
            raise pickle.UnpicklingError(f"{path}: forbidden type {module}.{name}")

    try:
        with open(path, "rb") as fh:
            d = _Safe(fh, encoding="bytes").load()
        if not isinstance(d, dict):
            raise TypeError("not a dict")
        d = {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}
        data = np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(d["labels"], dtype=np.int64)
    except (OSError, pickle.UnpicklingError, KeyError, ValueError, EOFError, TypeError) as exc:
        raise DataError(f"{path}: not a CIFAR-10 python batch ({str(exc).splitlines()[0][:120]})") from None
    if len(data) != len(labels):
        raise DataError(f"{path}: {len(data)} images but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES)):
        raise DataError(f"{path}: labels outside 0..{len(CIFAR10_CLASSES) - 1}")
    return Split(data, labels)


def load_cifar10(data_dir: str | None, train: bool = True) -> Dataset:
    folder = _cifar_folder(data_dir)
    test = _read_cifar_batch(folder / "test_batch")
    parts = []
    if train:
        for i in range(1, 6):
            p = folder / f"data_batch_{i}"
            if not p.is_file():
                raise DataError(f"{folder}: missing {p.name}")
            parts.append(_read_cifar_batch(p))
    tr = Split(np.concatenate([p.images for p in parts]) if parts else test.images[:0],
               np.concatenate([p.labels for p in parts]) if parts else test.labels[:0])
    return Dataset("cifar10", tr, test, CIFAR10_CLASSES)
