"""`init ARCH --cf N`: an untrained model with calibrated batch-norm, for hardware bring-up."""

from __future__ import annotations

import numpy as np
import torch

from ..model import spec as specmod
from ..model.checkpoint import check_output_path, save_checkpoint
from ..model.network import CFNet, calibrate_batchnorm, pixels_to_input
from ..core.errors import CfgenError
from ..core.options import SEED_MAX, positive_int, seed

MAX_CF = 1 << 16
MAX_CALIB_BATCHES = 1000


def add_parser(sub):
    p = sub.add_parser("init", help="create an untrained CF model with calibrated batch-norm",
                       description="Create an untrained CF model (random weights, batch-norm "
                                   "statistics calibrated on random images) for hardware bring-up.")
    p.add_argument("arch", help="zoo name (%s) or a spec JSON file" % ", ".join(specmod.zoo_names()))
    p.add_argument("--cf", type=positive_int(MAX_CF), required=True, help="filters per shared scale (CF-n)")
    p.add_argument("--mode", choices=specmod.BINARY, default=None,
                   help="binary layer precision (default: as the spec says)")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--calib-batches", type=positive_int(MAX_CALIB_BATCHES), default=4,
                   help="batches of 32 random images for the batch-norm statistics (default 4)")
    p.add_argument("-o", "--output", required=True, help="checkpoint file to write (.pt)")
    p.set_defaults(func=run)


def init_model(arch: str, cf: int, mode: str | None = None, seed: int = 0,
               calib_batches: int = 4, batch: int = 32) -> CFNet:
    if isinstance(calib_batches, bool) or not isinstance(calib_batches, int) or \
            not 1 <= calib_batches <= MAX_CALIB_BATCHES:
        raise CfgenError(f"--calib-batches must be an integer in [1, {MAX_CALIB_BATCHES}], "
                         f"got {calib_batches!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise CfgenError(f"--seed must be an integer in [0, {SEED_MAX}], got {seed!r}")
    spec = specmod.resolve(specmod.load_spec(arch), cf, mode)
    torch.manual_seed(seed)
    model = CFNet(spec)
    rng = np.random.default_rng(seed)
    c, h, w = specmod.shapes(spec)[0]
    batches = [pixels_to_input(rng.integers(0, 256, (batch, c, h, w), dtype=np.uint8))
               for _ in range(calib_batches)]
    calibrate_batchnorm(model, batches)
    return model


def run(args) -> int:
    check_output_path(args.output)
    model = init_model(args.arch, args.cf, args.mode, args.seed, args.calib_batches)
    save_checkpoint(args.output, model, meta={"kind": "init", "seed": args.seed,
                                              "calibration": "random uint8 images"})
    print(f"wrote {args.output}: {model.spec['name']} CF-{args.cf}, untrained, "
          f"batch-norm calibrated on {args.calib_batches} random batches")
    return 0
