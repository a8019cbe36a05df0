"""The one checkpoint format: self-describing, loaded only with weights_only=True."""

from __future__ import annotations

import datetime
import os
import pickle
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import spec as specmod
from .errors import CheckpointError, SpecError
from .model import CFNet

FORMAT = "cfgen-checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    spec: dict                      # resolved spec: precision and CF n fixed per layer
    state_dict: dict
    meta: dict = field(default_factory=dict)      # training metadata
    accuracy: dict = field(default_factory=dict)  # measured accuracies, e.g. {"digits": 0.95}
    path: str | None = None

    def model(self) -> CFNet:
        net = CFNet(self.spec)
        net.load_state_dict(self.state_dict, strict=True)
        return net.eval()

    def layers(self) -> list[dict]:
        return [{"name": l["name"], "precision": l["precision"], "cf": l["cf"]}
                for l in self.spec["layers"] if l["type"] in ("conv", "linear")]


def save_checkpoint(path, model: CFNet, meta: dict | None = None,
                    accuracy: dict | None = None) -> None:
    """Write the checkpoint atomically."""
    spec = model.spec
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "spec": spec,
        "layers": [{"name": l["name"], "precision": l["precision"], "cf": l["cf"]}
                   for l in spec["layers"] if l["type"] in ("conv", "linear")],
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "meta": {"saved": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                 **(meta or {})},
        "accuracy": dict(accuracy or {}),
    }
    atomic_torch_save(payload, path)


def atomic_torch_save(obj, path) -> None:
    """torch.save to a temp file, then rename: an interrupted save never leaves a torn file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_checkpoint(path) -> Checkpoint:
    """Load and validate; every failure is a one-line CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not a torch checkpoint (corrupt, truncated or foreign file)")
    # torch.load does not check the archive's CRCs: damaged tensor data would load silently.
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except Exception as exc:  # BadZipFile, zlib.error, OSError, ...
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({type(exc).__name__})") from None
    if bad is not None:
        raise CheckpointError(f"{path}: corrupt checkpoint (CRC mismatch in {bad})")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"unsupported (?:global: )?GLOBAL ([\w.]+)", str(exc), re.IGNORECASE)
        what = f"it references {found.group(1)}" if found else "it holds objects other than tensors"
        raise CheckpointError(f"{path}: refused to unpickle: {what}") from None
    except Exception as exc:  # torch raises assorted types on a damaged archive
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a cfgen checkpoint (no '{FORMAT}' marker)")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {payload.get('version')!r} "
                              f"is not supported (this cfgen reads version {VERSION})")
    for key in ("spec", "state_dict"):
        if not isinstance(payload.get(key), dict):
            raise CheckpointError(f"{path}: missing '{key}'")
    for key in ("meta", "accuracy"):
        if not isinstance(payload.get(key) or {}, dict):
            raise CheckpointError(f"{path}: '{key}' is not a dict")
    try:
        spec = specmod.validate(payload["spec"], source=str(path))
        if not payload["spec"].get("resolved"):
            raise SpecError("spec is not resolved (precision and CF n per layer)")
        spec["resolved"] = True
        for layer in spec["layers"]:
            if layer["type"] in ("conv", "linear") and layer["precision"] != "float":
                if not layer["cf"] or layer["out"] % layer["cf"]:
                    raise SpecError(f"layer {layer['name']}: CF n={layer['cf']} does not divide "
                                    f"{layer['out']} output channels")
    except SpecError as exc:
        raise CheckpointError(f"{path}: bad spec: {exc}") from None
    ckpt = Checkpoint(spec, payload["state_dict"], dict(payload.get("meta") or {}),
                      dict(payload.get("accuracy") or {}), str(path))
    try:
        ckpt.model()
    except (RuntimeError, ValueError) as exc:
        msg = " ".join(str(exc).split())
        raise CheckpointError(f"{path}: tensors do not match its spec ({msg[:200]})") from None
    return ckpt
