"""Training of CF-n binarized networks: the paper's schedule, resumable, optionally distributed.

Schedule (BRIEF section 2): Adam, lr 0.01, weight decay 1e-5, lr x0.1 at epochs
120/200/240/280 of 320, batch 128, no augmentation. A shorter --epochs scales the
milestones proportionally. For the tiny `digits` data set the default is DIGITS_EPOCHS.

Every epoch the trainer writes OUT (a normal checkpoint of the current weights) and
OUT.state (weights, optimizer, epoch, RNG state, config, history; a plain dict of
tensors and Python values, loadable with torch.load(weights_only=True)). `resume`
continues from OUT.state; on the CPU a resumed run equals an uninterrupted one.

Under torchrun (WORLD_SIZE > 1) the model is wrapped in DistributedDataParallel
(NCCL on GPUs, gloo on the CPU), every process reads a DistributedSampler shard of
batch_size / world_size images per step, and only rank 0 prints and writes files.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from . import spec as specmod
from .checkpoint import atomic_torch_save, check_archive, check_output_path, check_plain, check_resolved_spec, check_state_dict, load_checkpoint, save_checkpoint, show, torch_load
from .data import DATASETS, load_dataset
from ..core.errors import CfgenError, CheckpointError, DataError, SpecError
from .evaluate import check_compatible, float_accuracy, predict_float, accuracy_of
from .network import CFNet, pixels_to_input
from ..core.escape import one_line
from .quant import _CFMixin, check_cf, convert_to_cf

PAPER_EPOCHS = 320
PAPER_MILESTONES = (120, 200, 240, 280)
PAPER = {"batch_size": 128, "lr": 0.01, "weight_decay": 1e-5, "gamma": 0.1}
DIGITS_EPOCHS = 15  # digits CF-4 XNOR: ~0.99 test accuracy in ~15 s on one CPU thread
DIGITS_THREADS = 1  # the digits net is tiny: one thread is faster (and core-count independent)

STATE_FORMAT = "cfgen-train-state"
STATE_VERSION = 1

# Ranges of the numeric options (the CLI checks them as it parses; finalize() again).
LIMITS = {"cf": 1 << 16, "epochs": 100_000, "batch_size": 1 << 16, "lr": 10.0,
          "weight_decay": 1.0, "milestones": 64, "threads": 1024, "seed": 2**32 - 1}

# Options that define a run: on --resume, a value given again must equal the saved one.
RUN_OPTIONS = ("arch", "cf", "mode", "data", "batch_size", "lr", "weight_decay", "milestones",
               "seed", "center_clamp", "from_ckpt")


@dataclass
class TrainConfig:
    """None means "not given": finalize() fills the defaults (and resume the saved values)."""

    arch: str
    cf: int
    data: str
    output: str
    mode: str | None = None
    data_dir: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    milestones: list | None = None
    seed: int | None = None
    center_clamp: bool | None = None
    from_ckpt: str | None = None
    resume: bool = False
    stop_after: int | None = None
    device: str = "auto"
    progress: bool = True
    threads: int | None = None  # CPU threads (default: DIGITS_THREADS for digits, else torch's)

    def finalize(self, check_milestones: bool = True) -> "TrainConfig":
        """Defaults filled and every value range-checked (CfgenError, one line).

        check_milestones: refuse a milestone at or beyond --epochs (it would never act);
        off on --resume, where a run may be cut shorter than its saved schedule.
        """
        _check_int("--cf", self.cf, 1, LIMITS["cf"])
        for name, lo in (("epochs", 1), ("batch_size", 1), ("seed", 0), ("stop_after", 1),
                         ("threads", 1)):
            value = getattr(self, name)
            if value is not None:
                _check_int("--" + name.replace("_", "-"), value, lo,
                           LIMITS.get(name, LIMITS["epochs"]))
        if self.lr is not None:
            _check_float("--lr", self.lr, 0.0, LIMITS["lr"], lo_open=True)
        if self.weight_decay is not None:
            _check_float("--weight-decay", self.weight_decay, 0.0, LIMITS["weight_decay"])
        if self.milestones is not None:
            if not isinstance(self.milestones, (list, tuple)) or \
                    len(self.milestones) > LIMITS["milestones"]:
                raise CfgenError(f"--milestones must be a list of at most {LIMITS['milestones']} "
                                 "epochs")
            for m in self.milestones:
                _check_int("--milestones", m, 1, LIMITS["epochs"])
        if self.mode is not None and self.mode not in specmod.BINARY:
            raise CfgenError(f"--mode must be one of {', '.join(specmod.BINARY)}")
        if self.data not in DATASETS:
            raise DataError(f"unknown dataset {one_line(repr(self.data), 40)} "
                            f"(known: {', '.join(DATASETS)})")
        c = dataclasses.replace(self)
        if c.epochs is None:
            c.epochs = DIGITS_EPOCHS if c.data == "digits" else PAPER_EPOCHS
        c.batch_size = PAPER["batch_size"] if c.batch_size is None else c.batch_size
        c.lr = PAPER["lr"] if c.lr is None else c.lr
        c.weight_decay = PAPER["weight_decay"] if c.weight_decay is None else c.weight_decay
        c.seed = 0 if c.seed is None else c.seed
        c.center_clamp = bool(c.center_clamp)
        if c.milestones is None:
            c.milestones = scaled_milestones(c.epochs)
        c.milestones = sorted(int(m) for m in c.milestones)
        for name in ("epochs", "batch_size"):
            if getattr(c, name) < 1:
                raise CfgenError(f"--{name.replace('_', '-')} must be >= 1")
        if c.lr <= 0 or c.weight_decay < 0:
            raise CfgenError("--lr must be > 0 and --weight-decay >= 0")
        if c.stop_after is not None and c.stop_after < 1:
            raise CfgenError("--stop-after must be >= 1")
        late = [m for m in c.milestones if m >= c.epochs]
        if check_milestones and late:
            raise CfgenError(f"--milestones {late[0]} is not before --epochs {c.epochs}: "
                             f"a decay at epoch {late[0]} would never take effect")
        return c


def _check_int(option: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise CfgenError(f"{option} must be an integer in [{lo}, {hi}], "
                         f"got {one_line(repr(value), 40)}")
    return value


def _check_float(option: str, value, lo: float, hi: float, lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or not lo <= value <= hi or (lo_open and value == lo):
        raise CfgenError(f"{option} must be a finite number in {'(' if lo_open else '['}{lo:g}, "
                         f"{hi:g}], got {one_line(repr(value), 40)}")
    return float(value)


def scaled_milestones(epochs: int) -> list[int]:
    """The paper's decay epochs scaled to `epochs` (duplicates kept: each one is a x0.1)."""
    scaled = [round(m * epochs / PAPER_EPOCHS) for m in PAPER_MILESTONES]
    return [m for m in scaled if 0 < m < epochs]


def lr_at(cfg: TrainConfig, epoch: int) -> float:
    """Learning rate of 0-based `epoch` (MultiStepLR semantics)."""
    lr = cfg.lr * PAPER["gamma"] ** sum(1 for m in cfg.milestones if m <= epoch)
    return float(f"{lr:.10g}")


# ----------------------------------------------------------------------------- models

def convert_model(model: CFNet, n: int, mode: str | None = None,
                  center_clamp: bool = False) -> CFNet:
    """A new CFNet whose binary layers are CF-n (and `mode`, if given).

    Layers already at n keep their latent weights; others are re-grouped with
    quant.convert_to_cf (alpha_g = mean of the filter-wise alphas, signs kept).
    """
    spec = copy.deepcopy(model.spec)
    binary = [layer for layer in specmod.walk(spec)
              if layer["type"] in ("conv", "linear") and layer["precision"] != "float"]
    if not binary:
        raise SpecError(f"model '{spec.get('name')}' has no binary layers to convert")
    for layer in binary:  # check everything before changing anything
        try:
            check_cf(layer["out"], n)
        except SpecError as exc:
            raise SpecError(f"layer {layer['name']}: {exc}") from None
    src = copy.deepcopy(model)
    modules = dict(src.named_modules())
    for key, layer in specmod.walk_keys(spec):  # nested layers of residual blocks too
        module = modules[key]
        if not isinstance(module, _CFMixin):
            continue
        if module.cf != n:
            convert_to_cf(module, n)
        layer["cf"] = n
        # as resolve: the mode switches binary layers, but a shortcut keeps its precision
        if mode is not None and layer["precision"] != mode and not specmod.in_shortcut(key):
            layer["precision"] = mode
            if layer["type"] == "conv":
                layer["pad_value"] = -1 if mode == "xnor" else 0
    spec = specmod.validate(spec, source=spec.get("name", "spec"))
    spec["resolved"] = True
    out = CFNet(spec, center_clamp=center_clamp)
    out.load_state_dict(src.state_dict(), strict=True)
    return out.train(model.training)


def build_model(cfg: TrainConfig) -> tuple[CFNet, dict]:
    """The starting model: fresh from the spec (seeded), or --from a checkpoint."""
    base = specmod.load_spec(cfg.arch)
    if cfg.from_ckpt:
        ckpt = load_checkpoint(cfg.from_ckpt)
        if ckpt.spec.get("name") != base.get("name"):
            raise CheckpointError(f"{cfg.from_ckpt}: holds a '{ckpt.spec.get('name')}' model, "
                                  f"not '{base.get('name')}'")
        src = ckpt.model()
        cfs = sorted({l["cf"] for l in ckpt.layers() if l["precision"] != "float"})
        try:
            model = convert_model(src, cfg.cf, cfg.mode, cfg.center_clamp)
        except SpecError as exc:
            raise CheckpointError(f"{show(cfg.from_ckpt)}: cannot fine-tune at CF-{cfg.cf}: "
                                  f"{exc}") from None
        _check_same_architecture(base, model.spec, cfg.from_ckpt)
        return model, {"from": str(cfg.from_ckpt), "from_cf": cfs, "from_accuracy": ckpt.accuracy}
    spec = specmod.resolve(base, cfg.cf, cfg.mode)
    torch.manual_seed(cfg.seed)
    return CFNet(spec, center_clamp=cfg.center_clamp), {}


# Fields that --from may change: CF n and the binary precision (with its pad value).
_RETUNABLE = ("cf", "precision", "pad_value")


def _check_same_architecture(base: dict, got: dict, source) -> None:
    """--from: the checkpoint's layers must be the spec's layers (up to CF n / binary mode)."""
    if base["input"] != got["input"]:
        raise CheckpointError(f"{show(source)}: its model takes input "
                              f"{_dims(got['input'])}, the spec {_dims(base['input'])}")
    if len(base["layers"]) != len(got["layers"]):
        raise CheckpointError(f"{show(source)}: its model has {len(got['layers'])} layers, "
                              f"the spec {len(base['layers'])}")
    # nested layers compared one by one: walk yields a block before its layers, and a block
    # whose body or shortcut length differs is refused there, so both walks stay aligned
    for want, have in zip(specmod.walk(base), specmod.walk(got)):
        if want["type"] == have["type"] == "residual":
            for part in specmod.BLOCK_PARTS:
                if len(want[part]) != len(have[part]):
                    raise CheckpointError(
                        f"{show(source)}: block {have['name']} has {len(have[part])} {part} "
                        f"layers, the spec's {want['name']} {len(want[part])}")
        binary = want["type"] in ("conv", "linear") and want["precision"] != "float"
        if binary != (have["type"] in ("conv", "linear") and have["precision"] != "float"):
            raise CheckpointError(f"{show(source)}: layer {have['name']} is "
                                  f"{have.get('precision')}, the spec's {want['name']} is "
                                  f"{want.get('precision')}")
        for key in ["type"] + sorted((set(want) | set(have)) - {"type"}):
            if key in specmod.BLOCK_PARTS and want["type"] == have["type"] == "residual":
                continue  # compared layer by layer
            if binary and key in _RETUNABLE:
                continue
            if want.get(key) != have.get(key):
                raise CheckpointError(
                    f"{show(source)}: layer {have['name']} differs from the spec's "
                    f"{want['name']} in {key} ({one_line(repr(have.get(key)), 30)} vs "
                    f"{one_line(repr(want.get(key)), 30)})")


def _dims(inp: dict) -> str:
    return f"{inp['channels']}x{inp['height']}x{inp['width']}"


def center_clamp_all(model: torch.nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, _CFMixin) and m.center_clamp:
            m.center_clamp_()


# ----------------------------------------------------------------------------- state

def state_path(output) -> Path:
    return Path(str(output) + ".state")


def load_state(path: Path) -> dict:
    """Load OUT.state (weights_only=True) and check every part that resume uses; one-line
    CheckpointError when unusable."""
    try:
        check_archive(path, "training state")
        state = torch_load(path, "training state")
    except CheckpointError as exc:
        raise CheckpointError(f"{exc}; delete it to start afresh") from None
    where = show(path)
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{where}: not a cfgen training state")
    version = state.get("version")
    if isinstance(version, bool) or version != STATE_VERSION:
        raise CheckpointError(f"{where}: training state version {one_line(repr(version), 40)} "
                              f"is not supported (this cfgen reads {STATE_VERSION})")
    for key, kind in (("config", dict), ("epoch", int), ("spec", dict), ("model", dict),
                      ("optimizer", dict), ("rng", dict)):
        if key not in state:
            raise CheckpointError(f"{where}: missing '{key}'")
        if not isinstance(state[key], kind) or isinstance(state[key], bool):
            raise CheckpointError(f"{where}: '{key}' is a {type(state[key]).__name__}, "
                                  f"not a{'n' if kind is int else ''} {kind.__name__}")
    for key in ("config", "spec", "history", "origin", "seconds"):
        check_plain(state.get(key), f"{where}: {key}")
    _check_saved_config(state["config"], where)
    epochs = state["config"]["epochs"]
    if not 0 <= state["epoch"] <= epochs:
        raise CheckpointError(f"{where}: epoch {state['epoch']} is outside 0..{epochs}")
    seconds = state.get("seconds", 0.0)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise CheckpointError(f"{where}: 'seconds' is not a non-negative number")
    if not isinstance(state.get("history") or [], list) or \
            not all(isinstance(h, dict) for h in state.get("history") or []):
        raise CheckpointError(f"{where}: 'history' is not a list of dicts")
    if not isinstance(state.get("origin") or {}, dict):
        raise CheckpointError(f"{where}: 'origin' is not a dict")
    try:
        state["spec"] = check_resolved_spec(state["spec"], where)
    except SpecError as exc:
        raise CheckpointError(f"{where}: bad spec: {exc}") from None
    check_state_dict(state["spec"], state["model"], f"{where}: model")
    rng = state["rng"]
    want = torch.get_rng_state()
    for key in ("torch", "cuda"):
        t = rng.get(key)
        if key == "cuda" and t is None:
            continue
        if not isinstance(t, torch.Tensor) or t.dtype != torch.uint8 or t.dim() != 1 or \
                (key == "torch" and t.shape != want.shape):
            raise CheckpointError(f"{where}: rng.{key} is not a random generator state")
    return state


def _check_saved_config(config: dict, where: str) -> None:
    """The saved run options: every key present and of the type the run wrote."""
    for name in RUN_OPTIONS + ("epochs",):
        if name not in config:
            raise CheckpointError(f"{where}: config lacks '{name}'")
    problems = []
    ints = {"cf": (1, LIMITS["cf"]), "batch_size": (1, LIMITS["batch_size"]),
            "seed": (0, LIMITS["seed"]), "epochs": (1, LIMITS["epochs"])}
    for name, (lo, hi) in ints.items():
        v = config[name]
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            problems.append(name)
    for name, hi in (("lr", LIMITS["lr"]), ("weight_decay", LIMITS["weight_decay"])):
        v = config[name]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= hi or \
                (name == "lr" and v == 0):
            problems.append(name)
    m = config["milestones"]
    if not isinstance(m, list) or len(m) > LIMITS["milestones"] or \
            not all(isinstance(x, int) and not isinstance(x, bool) and 1 <= x <= LIMITS["epochs"]
                    for x in m):
        problems.append("milestones")
    if not isinstance(config["arch"], str) or not config["arch"]:
        problems.append("arch")
    if config["mode"] is not None and config["mode"] not in specmod.BINARY:
        problems.append("mode")
    if config["data"] not in DATASETS:
        problems.append("data")
    if not isinstance(config["center_clamp"], bool):
        problems.append("center_clamp")
    if config["from_ckpt"] is not None and not isinstance(config["from_ckpt"], str):
        problems.append("from_ckpt")
    if problems:
        raise CheckpointError(f"{where}: config.{problems[0]} = "
                              f"{one_line(repr(config[problems[0]]), 40)} is not a valid value")


def _merge_resume(cfg: TrainConfig, saved: dict, path: Path) -> TrainConfig:
    """Saved run options win; a conflicting explicit option is an error. --epochs may change."""
    merged = dataclasses.replace(cfg)
    for name in RUN_OPTIONS:
        given, old = getattr(cfg, name), saved.get(name)
        if name == "center_clamp" and not given:
            given = None
        if given is not None and given != old and not (name == "arch" and
                                                       Path(str(given)).stem == Path(str(old)).stem):
            opt = {"arch": "ARCH", "from_ckpt": "--from"}.get(name, "--" + name.replace("_", "-"))
            used = f"did not use {opt}" if old is None else f"used {opt} {old!r}"
            raise CfgenError(f"{path}: that run {used}, not {opt} {given!r}; "
                             "drop the option or start afresh without --resume")
        setattr(merged, name, old)
    if merged.epochs is None:
        merged.epochs = saved["epochs"]
    return merged


def _git_sha() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


# ----------------------------------------------------------------------------- distributed

@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def main(self) -> bool:
        return self.rank == 0


def _setup_distributed(device_pref: str) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    use_cuda = device_pref != "cpu" and torch.cuda.is_available()
    backend = "nccl" if use_cuda else "gloo"
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return Dist(dist.get_rank(), dist.get_world_size(), local, backend)


def _pick_device(pref: str, d: Dist) -> torch.device:
    if pref == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda", d.local_rank if d.world > 1 else torch.cuda.current_device())
    if pref == "cuda":
        raise CfgenError("--device cuda: no CUDA device is available")
    return torch.device("cpu")


# ----------------------------------------------------------------------------- training

@dataclass
class TrainResult:
    output: str
    epochs_done: int
    epochs: int
    complete: bool
    accuracy: dict = field(default_factory=dict)
    seconds: float = 0.0
    history: list = field(default_factory=list)
    main: bool = True           # rank 0 (the process that wrote the files)
    summary: str | None = None  # one line for stdout (rank 0, complete runs)


def train(cfg: TrainConfig, log=None) -> TrainResult:
    """Run (or resume) a training job; returns on every rank, files written by rank 0."""
    d = _setup_distributed(cfg.device)
    threads = torch.get_num_threads()
    try:
        if cfg.threads is not None:
            if cfg.threads < 1:
                raise CfgenError("--threads must be >= 1")
            torch.set_num_threads(cfg.threads)
        elif cfg.data == "digits" and d.world == 1:
            torch.set_num_threads(DIGITS_THREADS)
        return _train(cfg, d, log)
    finally:
        torch.set_num_threads(threads)
        if d.world > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def _train(cfg: TrainConfig, d: Dist, log) -> TrainResult:
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    say = log if d.main else (lambda msg: None)
    spath = state_path(cfg.output)
    state = None
    if cfg.resume and os.path.lexists(spath):
        state = load_state(spath)
        cfg = _merge_resume(cfg, state["config"], spath)
    check_output_path(cfg.output)
    check_output_path(spath)
    if cfg.resume and state is None:
        say(f"note: {show(spath)} not found; starting a new run")
    cfg = cfg.finalize(check_milestones=state is None)
    if cfg.data not in ("digits", "cifar10"):
        raise DataError(f"unknown dataset '{cfg.data}' (known: digits, cifar10)")
    device = _pick_device(cfg.device, d)
    if cfg.batch_size % d.world:
        raise CfgenError(f"--batch-size {cfg.batch_size} is not divisible by the "
                         f"{d.world} processes")
    local_batch = cfg.batch_size // d.world

    if state is not None:
        model = CFNet(state["spec"], center_clamp=cfg.center_clamp)
        model.load_state_dict(state["model"], strict=True)
        origin = dict(state.get("origin") or {})
    else:
        model, origin = build_model(cfg)
    _check_batchnorm_batch(model.spec, local_batch)
    ds = load_dataset(cfg.data, cfg.data_dir)
    check_compatible(model.spec, ds.train.images, cfg.data)
    n_out = specmod.shapes(model.spec)[-1]
    if n_out != (len(ds.classes),):
        raise DataError(f"model '{model.spec['name']}' outputs {n_out}, but {cfg.data} has "
                        f"{len(ds.classes)} classes")

    start_epoch, seconds, history = 0, 0.0, []
    if state is not None:
        start_epoch = int(state["epoch"])
        seconds = float(state.get("seconds", 0.0))
        history = list(state.get("history") or [])

    model.to(device)
    net = model
    if d.world > 1:
        import warnings

        from torch.nn.parallel import DistributedDataParallel as DDP

        # 1x1 convolutions get channels-last gradients; harmless for DDP, but it warns each step.
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
        net = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if state is not None:
        _load_optimizer(optimizer, state["optimizer"], model, cfg, spath)
        try:
            torch.set_rng_state(state["rng"]["torch"])
            if device.type == "cuda" and state["rng"].get("cuda") is not None and d.world == 1:
                torch.cuda.set_rng_state(state["rng"]["cuda"], device)
        except (RuntimeError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{show(spath)}: bad random generator state "
                                  f"({one_line(str(exc), 80)})") from None
        if d.world > 1:  # per-rank dropout streams
            torch.manual_seed(cfg.seed * 1000 + start_epoch * 100 + d.rank)
    else:
        torch.manual_seed(cfg.seed + d.rank)  # dropout stream (rank 0: same as the init seed)

    from torch.utils.data.distributed import DistributedSampler

    train_x = torch.as_tensor(ds.train.images).to(device)
    train_y = torch.as_tensor(ds.train.labels).to(device)
    test_x = torch.as_tensor(ds.test.images)
    test_x_dev = test_x.to(device)
    n_train = len(train_y)
    sampler = DistributedSampler(range(n_train), num_replicas=d.world, rank=d.rank,
                                 shuffle=True, seed=cfg.seed, drop_last=False)
    # A last batch of one image is dropped (batch-norm of a flat (1, F) input is undefined).
    steps = len(sampler) // local_batch + (len(sampler) % local_batch > 1)

    meta_base = {
        "kind": "train", "arch": cfg.arch, "data": cfg.data, "cf": cfg.cf,
        "mode": cfg.mode, "epochs": cfg.epochs, "batch_size": cfg.batch_size, "lr": cfg.lr,
        "optimizer": "adam", "weight_decay": cfg.weight_decay, "lr_milestones": cfg.milestones,
        "lr_gamma": PAPER["gamma"], "seed": cfg.seed, "center_clamp": cfg.center_clamp,
        "device": str(device), "world_size": d.world, "train_frames": n_train,
        "test_frames": len(ds.test.labels), "git_sha": _git_sha(), **origin,
    }
    if start_epoch >= cfg.epochs:
        say(f"{spath}: all {cfg.epochs} epochs already done")
    elif start_epoch:
        say(f"resuming {cfg.output} at epoch {start_epoch + 1} of {cfg.epochs}")

    bar = None
    if d.main and cfg.progress and start_epoch < cfg.epochs:
        from tqdm import tqdm

        bar = tqdm(total=(cfg.epochs - start_epoch) * steps, unit="step", file=sys.stderr,
                   dynamic_ncols=True, mininterval=0.5, desc=Path(cfg.output).name)
    last = cfg.epochs if cfg.stop_after is None else min(cfg.epochs, cfg.stop_after)
    epoch = start_epoch
    try:
        for epoch in range(start_epoch, last):
            t0 = time.perf_counter()
            lr = lr_at(cfg, epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            sampler.set_epoch(epoch)
            order = torch.tensor(list(iter(sampler)), dtype=torch.long, device=device)
            net.train()
            sums = torch.zeros(3, dtype=torch.float64, device=device)
            for step in range(steps):
                idx = order[step * local_batch:(step + 1) * local_batch]
                x = pixels_to_input(train_x[idx])
                y = train_y[idx]
                out = net(x)
                loss = F.cross_entropy(out, y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                with torch.no_grad():
                    sums += torch.stack([loss.detach().double() * len(y),
                                         (out.argmax(1) == y).sum().double(),
                                         torch.tensor(float(len(y)), dtype=torch.float64,
                                                      device=device)])
                if bar is not None:
                    bar.update(1)
            center_clamp_all(model)  # the reference binarizes centered, clamped weights
            if d.world > 1:
                import torch.distributed as dist

                dist.all_reduce(sums)
            loss_avg, train_acc = (sums[0] / sums[2]).item(), (sums[1] / sums[2]).item()
            if d.main:
                test_acc = accuracy_of(predict_float(model, test_x_dev), ds.test.labels)
                history.append({"epoch": epoch + 1, "lr": lr, "loss": round(loss_avg, 6),
                                "train_acc": round(train_acc, 6), "test_acc": round(test_acc, 6)})
                if bar is not None:
                    bar.set_postfix(epoch=f"{epoch + 1}/{cfg.epochs}", loss=f"{loss_avg:.3f}",
                                    test=f"{test_acc:.4f}", lr=f"{lr:g}", refresh=False)
            seconds += time.perf_counter() - t0
            if d.main:
                _save_progress(cfg, model, optimizer, epoch + 1, seconds, history, meta_base,
                               origin, device, d)
    finally:
        if bar is not None:
            bar.close()
    done = max(start_epoch, last)
    complete = done >= cfg.epochs
    accuracy: dict = {}
    summary = None
    if d.main:
        if complete:
            model.to("cpu").eval()
            accuracy = {cfg.data: float_accuracy(model, test_x, ds.test.labels)}
            meta = {**meta_base, "epochs_done": done, "seconds": round(seconds, 3),
                    "complete": True, "accuracy_measured_on": "cpu, float model, batch 256",
                    "history": history}
            save_checkpoint(cfg.output, model, meta=meta, accuracy=accuracy)
            summary = (f"wrote {cfg.output}: {model.spec['name']} CF-{cfg.cf} "
                       f"{_modes(model.spec)}, {cfg.data} test accuracy "
                       f"{accuracy[cfg.data]:.4f} ({len(ds.test.labels)} frames), {done} epochs "
                       f"in {seconds:.1f} s")
        else:
            say(f"stopped after epoch {done} of {cfg.epochs}: {cfg.output} holds the current "
                f"weights; continue with --resume")
    if d.world > 1:
        import torch.distributed as dist

        dist.barrier()
    return TrainResult(str(cfg.output), done, cfg.epochs, complete, accuracy, seconds, history,
                       d.main, summary)


_ADAM_STATE = ("step", "exp_avg", "exp_avg_sq")


def _load_optimizer(optimizer, saved, model, cfg, path) -> None:
    """Load the saved Adam state; refuse (one line) anything but what this trainer wrote."""
    where = show(path)
    params = list(model.parameters())
    fresh = optimizer.state_dict()
    groups, per_param = saved.get("param_groups"), saved.get("state")
    if set(saved) != {"state", "param_groups"} or not isinstance(groups, list) or \
            len(groups) != 1 or not isinstance(groups[0], dict) or not isinstance(per_param, dict):
        raise CheckpointError(f"{where}: optimizer is not the Adam state this trainer saves")
    group, want = groups[0], fresh["param_groups"][0]
    if set(group) != set(want) or group["params"] != want["params"]:
        raise CheckpointError(f"{where}: optimizer holds parameter groups of another model")
    for key, value in want.items():  # lr is set every epoch; the rest must be as created
        if key not in ("lr", "initial_lr", "params") and group[key] != value:
            raise CheckpointError(f"{where}: optimizer.{key} = {one_line(repr(group[key]), 40)}, "
                                  f"this run needs {one_line(repr(value), 40)}")
    for index, entry in per_param.items():
        if isinstance(index, bool) or not isinstance(index, int) or \
                not 0 <= index < len(params) or not isinstance(entry, dict) or \
                set(entry) != set(_ADAM_STATE):
            raise CheckpointError(f"{where}: optimizer state has a bad entry")
        p = params[index]
        for key in _ADAM_STATE:
            t = entry[key]
            shape = () if key == "step" else p.shape
            if not isinstance(t, torch.Tensor) or t.dtype != torch.float32 or \
                    t.shape != shape or t.layout != torch.strided:
                raise CheckpointError(f"{where}: optimizer state {index}.{key} does not match "
                                      "its parameter")
            if not bool(torch.isfinite(t).all()) or (key != "exp_avg" and bool((t < 0).any())):
                raise CheckpointError(f"{where}: optimizer state {index}.{key} holds "
                                      "non-finite or negative values")
    try:
        optimizer.load_state_dict(saved)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{where}: bad optimizer state ({one_line(str(exc), 80)})") from None


def _check_batchnorm_batch(spec: dict, local_batch: int) -> None:
    """Training batch-norm needs more than one value per channel in every batch."""
    io = specmod.layer_shapes(spec)
    for layer in specmod.walk(spec):
        shape = io[layer["name"]][1]
        per_image = 1
        for n in shape[1:]:
            per_image *= n
        if layer["type"] == "batchnorm" and local_batch * per_image < 2:
            raise CfgenError(f"batches of {local_batch} image: batch-norm layer {layer['name']} "
                             "sees one value per channel per image and needs at least 2 images "
                             "per batch (per process under torchrun): raise --batch-size")


def _modes(spec: dict) -> str:
    modes = sorted({l["precision"] for l in specmod.walk(spec)
                    if l["type"] in ("conv", "linear") and l["precision"] != "float"})
    return "/".join(modes) or "float"


def _save_progress(cfg, model, optimizer, epoch, seconds, history, meta_base, origin,
                   device, d) -> None:
    """Rank 0: OUT (current weights, no accuracy yet) and OUT.state (everything to resume)."""
    config = {name: getattr(cfg, name) for name in RUN_OPTIONS}
    config["epochs"] = cfg.epochs
    state = {
        "format": STATE_FORMAT,
        "version": STATE_VERSION,
        "config": config,
        "epoch": epoch,
        "seconds": seconds,
        "history": history,
        "origin": origin,
        "spec": model.spec,
        "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "optimizer": _to_cpu(optimizer.state_dict()),
        "rng": {"torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None},
    }
    atomic_torch_save(state, state_path(cfg.output))
    meta = {**meta_base, "epochs_done": epoch, "seconds": round(seconds, 3), "complete": False,
            "history": history}
    save_checkpoint(cfg.output, model, meta=meta)


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    return obj
