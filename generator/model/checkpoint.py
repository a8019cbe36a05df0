"""The one checkpoint format: self-describing, loaded only with weights_only=True."""

from __future__ import annotations

import datetime
import math
import os
import pickle
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import spec as specmod
from ..core.errors import CheckpointError, SpecError
from ..core.escape import one_line
from ..core.jsonfile import regular_file, replaceable_file
from .network import CFNet

FORMAT = "cfgen-checkpoint"
VERSION = 1

# What a checkpoint archive may hold before anything is unpickled: the largest model the spec
# budget admits is 1 GiB of float32 weights (a training state holds three copies with Adam).
MAX_ARCHIVE_BYTES = 5 << 30
MAX_ARCHIVE_MEMBERS = 100_000
# meta / accuracy / spec / history are plain JSON-like data of bounded size.
MAX_PLAIN_NODES = 1_000_000
MAX_PLAIN_DEPTH = 32
MAX_PLAIN_STRING = 100_000
TEMP_SUFFIX_LEN = len(".") + len(".") + 8 + len(".tmp")  # mkstemp: .NAME.XXXXXXXX.tmp


def show(path) -> str:
    """A path as it goes into a one-line message: printable, bounded."""
    return one_line(path, 200)


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
        return layer_summary(self.spec)


def layer_summary(spec: dict) -> list[dict]:
    """{"name", "precision", "cf"} of every conv/linear layer, nested ones included."""
    return [{"name": l["name"], "precision": l["precision"], "cf": l["cf"]}
            for l in specmod.walk(spec) if l["type"] in ("conv", "linear")]


def save_checkpoint(path, model: CFNet, meta: dict | None = None,
                    accuracy: dict | None = None) -> None:
    """Write the checkpoint atomically."""
    spec = model.spec
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "spec": spec,
        "layers": layer_summary(spec),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "meta": {"saved": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                 **(meta or {})},
        "accuracy": dict(accuracy or {}),
    }
    atomic_torch_save(payload, path)


def atomic_torch_save(obj, path) -> None:
    """torch.save to a temp file, then rename: an interrupted save never leaves a torn file.

    Folders it had to create are removed again when the save fails; a failure is a one-line
    CheckpointError naming the path.
    """
    path = _check_target(path)
    created = []
    tmp = None
    done = False
    try:
        created = _make_parents(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        torch.save(obj, tmp)
        _check_target(path)  # still replaceable (nothing put a folder there meanwhile)
        os.replace(tmp, path)
        done = True
    except (OSError, RuntimeError) as exc:  # torch's zip writer raises RuntimeError on ENOSPC
        raise CheckpointError(f"{show(path)}: cannot write: {_reason(exc)}") from None
    finally:
        if not done:
            if tmp is not None and os.path.lexists(tmp):
                os.unlink(tmp)
            _remove_dirs(created)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return one_line(" ".join(str(exc).split()), 120) or type(exc).__name__


def _make_parents(folder: Path) -> list[Path]:
    """mkdir -p; returns the folders it created, deepest last."""
    missing = []
    f = folder
    while not os.path.lexists(f):
        missing.append(f)
        if f.parent == f:
            break
        f = f.parent
    created = []
    try:
        for d in reversed(missing):
            os.mkdir(d)
            created.append(d)
    except BaseException:
        _remove_dirs(created)
        raise
    return created


def _remove_dirs(created: list[Path]) -> None:
    for d in reversed(created):
        try:
            os.rmdir(d)
        except OSError:
            pass


def _is_torch_archive(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            return any(n.endswith("/data.pkl") or n == "data.pkl" for n in zf.namelist())
    except Exception:  # BadZipFile, OSError, ...
        return False


def _check_target(path) -> Path:
    """The file a save replaces: absent, or a regular file holding a torch archive."""
    text = str(path)
    if not text or "\0" in text:
        raise CheckpointError(f"{show(text) or 'output path'}: not a valid file name")
    path = Path(path)
    if path.name in ("", ".", ".."):
        raise CheckpointError(f"{show(path)}: names a folder, not a checkpoint file")
    if len(os.fsencode(path.name)) + TEMP_SUFFIX_LEN > 255:
        raise CheckpointError(f"{show(path)}: file name too long")
    if replaceable_file(path, "checkpoint", CheckpointError, show(path), _reason) is None:
        return path
    if not _is_torch_archive(path):
        raise CheckpointError(f"{show(path)}: exists and is not a checkpoint; refusing to "
                              "overwrite it (remove it or choose another name)")
    return path


def check_output_path(path) -> Path:
    """Before any work: refuse an output file that cannot be written or must not be replaced.

    Probes the folder by creating (and removing) a temp file there, and removes any folder
    it had to create, so nothing is left behind either way.
    """
    path = _check_target(path)
    created = []
    try:
        created = _make_parents(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        os.unlink(tmp)
    except NotADirectoryError:
        raise CheckpointError(f"{show(path)}: cannot write: a parent is a file, "
                              "not a folder") from None
    except OSError as exc:
        raise CheckpointError(f"{show(path)}: cannot write: {_reason(exc)}") from None
    finally:
        _remove_dirs(created)
    return path


def check_plain(obj, what: str) -> None:
    """Refuse (CheckpointError) anything but JSON-like data: dict with str keys, list, tuple,
    str, bool, int, finite float, None; bounded in depth, size and string length.
    Iterative and counting nodes, so neither deep nesting nor shared sub-lists blow up."""
    stack = [(obj, 1, what)]
    nodes = 0
    while stack:
        item, depth, where = stack.pop()
        nodes += 1
        if nodes > MAX_PLAIN_NODES:
            raise CheckpointError(f"{what}: more than {MAX_PLAIN_NODES:,} values")
        if depth > MAX_PLAIN_DEPTH:
            raise CheckpointError(f"{where}: nested deeper than {MAX_PLAIN_DEPTH} levels")
        if item is None or isinstance(item, bool):
            continue
        if isinstance(item, int):
            if item.bit_length() > 64:
                raise CheckpointError(f"{where}: integer out of range")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise CheckpointError(f"{where}: {item} is not a finite number")
        elif isinstance(item, str):
            if len(item) > MAX_PLAIN_STRING:
                raise CheckpointError(f"{where}: string of {len(item):,} characters")
        elif isinstance(item, dict):
            for k, v in item.items():
                if not isinstance(k, str):
                    raise CheckpointError(f"{where}: key of type {type(k).__name__}, not a string")
                if len(k) > 200:
                    raise CheckpointError(f"{where}: key of {len(k):,} characters")
                stack.append((v, depth + 1, f"{where}.{one_line(k, 40)}"))
        elif isinstance(item, (list, tuple)):
            stack.extend((v, depth + 1, f"{where}[{i}]") for i, v in enumerate(item))
        else:
            raise CheckpointError(f"{where}: holds a {type(item).__name__}, not plain data "
                                  "(numbers, strings, lists, dicts)")


def check_accuracy(accuracy, what: str) -> None:
    """accuracy: {data set name: top-1 fraction in [0, 1]}."""
    if not isinstance(accuracy, dict):
        raise CheckpointError(f"{what}: not a dict")
    if len(accuracy) > 100:
        raise CheckpointError(f"{what}: {len(accuracy)} entries")
    for k, v in accuracy.items():
        if not isinstance(k, str) or not k or len(k) > 64 or not k.isprintable():
            raise CheckpointError(f"{what}: a key is not a short data set name")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
            raise CheckpointError(f"{what}.{k}: {one_line(repr(v), 40)} is not an accuracy "
                                  "in [0, 1]")


def check_resolved_spec(raw, source: str) -> dict:
    """The validated resolved spec (precision and CF n per layer), else a SpecError."""
    if not isinstance(raw, dict):
        raise SpecError("spec is not a JSON object")
    spec = specmod.validate(raw, source=source)
    if raw.get("resolved") is not True:
        raise SpecError("spec is not resolved (precision and CF n per layer)")
    spec["resolved"] = True
    for layer in specmod.walk(spec):
        if layer["type"] in ("conv", "linear") and layer["precision"] != "float":
            if not layer["cf"] or layer["out"] % layer["cf"]:
                raise SpecError(f"layer {layer['name']}: CF n={layer['cf']} does not divide "
                                f"{layer['out']} output channels")
    return spec


def _shape(t) -> str:
    return "(" + ", ".join(map(str, t)) + ")"


def check_state_dict(spec: dict, state_dict, what: str) -> None:
    """Refuse (CheckpointError) a state dict that CFNet(spec) would not load exactly, or that
    holds non-finite numbers (or a negative batch-norm variance), naming the tensor."""
    if not isinstance(state_dict, dict):
        raise CheckpointError(f"{what}: not a dict of tensors")
    for k in state_dict:
        if not isinstance(k, str):
            raise CheckpointError(f"{what}: key of type {type(k).__name__}, not a tensor name")
    reference = CFNet(spec).state_dict()
    missing = [k for k in reference if k not in state_dict]
    if missing:
        raise CheckpointError(f"{what}: missing tensor {one_line(missing[0], 60)}"
                              + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    extra = [k for k in state_dict if k not in reference]
    if extra:
        raise CheckpointError(f"{what}: unexpected entry {one_line(extra[0], 60)} "
                              f"(the spec has no such tensor)")
    for k, ref in reference.items():
        t = state_dict[k]
        if not isinstance(t, torch.Tensor):
            raise CheckpointError(f"{what}: {k} is a {type(t).__name__}, not a tensor")
        if t.layout != torch.strided or t.is_quantized or t.is_meta or t.device.type != "cpu":
            raise CheckpointError(f"{what}: {k} is not a dense CPU tensor")
        if t.dtype != ref.dtype:
            raise CheckpointError(f"{what}: {k} is {str(t.dtype).replace('torch.', '')}, "
                                  f"expected {str(ref.dtype).replace('torch.', '')}")
        if t.shape != ref.shape:
            raise CheckpointError(f"{what}: {k} has shape {_shape(t.shape)}, "
                                  f"the spec needs {_shape(ref.shape)}")
        if t.is_floating_point():
            bad = int((~torch.isfinite(t)).sum())
            if bad:
                raise CheckpointError(f"{what}: {k} holds {bad} non-finite value"
                                      f"{'s' if bad > 1 else ''} (NaN or Inf)")
            if k.endswith("running_var") and bool((t < 0).any()):
                raise CheckpointError(f"{what}: {k} holds a negative variance")
        elif k.endswith("num_batches_tracked") and bool((t < 0).any()):
            raise CheckpointError(f"{what}: {k} is negative")


def check_archive(path: Path, what: str = "checkpoint") -> None:
    """A readable regular file holding an intact zip archive of bounded size."""
    st = regular_file(path, what, CheckpointError, show(path), _reason)
    try:  # O_NONBLOCK: special files that pose as regular ones (/proc) must not block
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            os.read(fd, 4)
        finally:
            os.close(fd)
    except OSError as exc:
        raise CheckpointError(f"{show(path)}: cannot read: {_reason(exc)}") from None
    if st.st_size == 0 or not zipfile.is_zipfile(path):
        raise CheckpointError(f"{show(path)}: not a torch {what} "
                              "(corrupt, truncated or foreign file)")
    # torch.load does not check the archive's CRCs: damaged tensor data would load silently.
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_ARCHIVE_MEMBERS:
                raise CheckpointError(f"{show(path)}: {len(infos):,} archive members, "
                                      f"more than a {what} holds")
            size = sum(i.file_size for i in infos)
            if size > MAX_ARCHIVE_BYTES:
                raise CheckpointError(f"{show(path)}: {size:,} bytes uncompressed, more than "
                                      f"the {MAX_ARCHIVE_BYTES:,} cfgen accepts")
            bad = zf.testzip()
    except CheckpointError:
        raise
    except Exception as exc:  # BadZipFile, zlib.error, OSError, ...
        raise CheckpointError(f"{show(path)}: corrupt or truncated {what} "
                              f"({type(exc).__name__})") from None
    if bad is not None:
        raise CheckpointError(f"{show(path)}: corrupt {what} (CRC mismatch in "
                              f"{one_line(bad, 80)})")


def torch_load(path: Path, what: str):
    """torch.load(weights_only=True) of a checked archive; one-line CheckpointError."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"unsupported (?:global: )?GLOBAL ([\w.]+)", str(exc), re.IGNORECASE)
        why = (f"it references {one_line(found.group(1), 80)}" if found
               else "it holds objects other than tensors")
        raise CheckpointError(f"{show(path)}: refused to unpickle: {why}") from None
    except Exception as exc:  # torch raises assorted types on a damaged archive
        raise CheckpointError(f"{show(path)}: corrupt or truncated {what} "
                              f"({type(exc).__name__})") from None


def load_checkpoint(path) -> Checkpoint:
    """Load and validate; every failure is a one-line CheckpointError naming the file."""
    shown = show(path)
    path = Path(path)
    check_archive(path, "checkpoint")
    payload = torch_load(path, "checkpoint")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{shown}: not a cfgen checkpoint (no '{FORMAT}' marker)")
    version = payload.get("version")
    if isinstance(version, bool) or version != VERSION:
        shown_version = one_line(repr(version), 40)
        raise CheckpointError(f"{shown}: checkpoint format version {shown_version} "
                              f"is not supported (this cfgen reads version {VERSION})")
    for key in ("spec", "state_dict"):
        if not isinstance(payload.get(key), dict):
            raise CheckpointError(f"{shown}: missing '{key}'")
    for key in ("meta", "accuracy"):
        if not isinstance(payload.get(key) or {}, dict):
            raise CheckpointError(f"{shown}: '{key}' is not a dict")
    meta, accuracy = payload.get("meta") or {}, payload.get("accuracy") or {}
    check_plain(payload["spec"], f"{shown}: spec")
    check_plain(meta, f"{shown}: meta")
    check_accuracy(accuracy, f"{shown}: accuracy")
    try:
        spec = check_resolved_spec(payload["spec"], str(path))
    except SpecError as exc:
        raise CheckpointError(f"{shown}: bad spec: {exc}") from None
    check_state_dict(spec, payload["state_dict"], f"{shown}: state_dict")
    ckpt = Checkpoint(spec, payload["state_dict"], dict(meta), dict(accuracy), str(path))
    try:
        ckpt.model()
    except (RuntimeError, ValueError) as exc:
        msg = " ".join(str(exc).split())
        raise CheckpointError(f"{shown}: tensors do not match its spec ({msg[:200]})") from None
    return ckpt
