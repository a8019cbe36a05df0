"""Datasets as uint8 pixels (N, C, H, W) and int64 labels; the model divides by 255."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import DataError

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
    try:
        if base.exists() and not base.is_dir():
            raise DataError(f"{_show(base)}: is not a folder; --data-dir names the folder with "
                            "the CIFAR-10 python batches (data_batch_1..5, test_batch)")
        for cand in (base, base / "cifar-10-batches-py"):
            if (cand / "test_batch").is_file():
                return cand
    except (OSError, ValueError) as exc:
        raise DataError(f"{_show(base)}: cannot read the folder ({_first_line(exc)})") from None
    raise DataError(f"{_show(base)}: no CIFAR-10 python batches found; put data_batch_1..5 and "
                    f"test_batch (from cifar-10-python.tar.gz) in {_show(base)}/cifar-10-batches-py/")


def _read_cifar_batch(path: Path) -> Split:
    # One restricted unpickler for the generator and the board: host/cfgen_driver/cifar.py
    # admits only the numpy globals a CIFAR-10 batch needs, so a hostile file cannot run code.
    from ..core.hostdriver import driver

    drv = driver()
    try:
        d = drv.cifar.unpickle(path)
    except drv.DataFileError as exc:
        raise DataError(str(exc)) from None
    return split_from_batch(d, path)


def _show(path) -> str:
    from ..core.escape import one_line

    return one_line(path, 200)


def _first_line(exc: BaseException) -> str:
    from ..core.escape import one_line

    lines = str(exc).splitlines()
    return one_line(lines[0] if lines else type(exc).__name__, 120)


CIFAR_PIXELS = 3 * 32 * 32


def split_from_batch(d, path) -> Split:
    """A CIFAR-10 batch dict -> Split, refusing anything but the official layout: 'data' a
    uint8 array (N, 3072) with N >= 1, 'labels' N integers in 0..9."""
    where = _show(path)
    if not isinstance(d, dict):
        raise DataError(f"{where}: not a CIFAR-10 python batch (a {type(d).__name__}, not a dict)")
    d = {k.decode("latin-1") if isinstance(k, bytes) else k: v for k, v in d.items()}
    for key in ("data", "labels"):
        if key not in d:
            raise DataError(f"{where}: not a CIFAR-10 python batch (no '{key}')")
    data = d["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
        what = f"{data.dtype} array" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{where}: 'data' is a {what}, not a uint8 array")
    if data.ndim != 2 or data.shape[1] != CIFAR_PIXELS or data.shape[0] < 1:
        raise DataError(f"{where}: 'data' has shape {tuple(data.shape)}, expected "
                        f"(N, {CIFAR_PIXELS}) with N >= 1")
    raw = d["labels"]
    if isinstance(raw, np.ndarray):
        ok = raw.ndim == 1 and raw.dtype.kind in "iu"
    else:
        ok = isinstance(raw, (list, tuple)) and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in raw)
    if not ok:
        raise DataError(f"{where}: 'labels' is not a flat list of integers")
    if len(raw) != len(data):
        raise DataError(f"{where}: {len(data)} images but {len(raw)} labels")
    if any(not 0 <= int(v) < len(CIFAR10_CLASSES) for v in raw):
        raise DataError(f"{where}: labels outside 0..{len(CIFAR10_CLASSES) - 1}")
    labels = np.asarray([int(v) for v in raw], dtype=np.int64)
    return Split(np.ascontiguousarray(data.reshape(-1, 3, 32, 32)), labels)


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
