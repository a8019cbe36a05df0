"""`init ARCH --cf N`: an untrained model with calibrated batch-norm, for hardware bring-up."""

from __future__ import annotations

import numpy as np
import torch

from .. import spec as specmod
from ..checkpoint import save_checkpoint
from ..model import CFNet, calibrate_batchnorm, pixels_to_input


def add_parser(sub):
    p = sub.add_parser("init", help="create an untrained CF model with calibrated batch-norm",
                       description="Create an untrained CF model (random weights, batch-norm "
                                   "statistics calibrated on random images) for hardware bring-up.")
    p.add_argument("arch", help="zoo name (%s) or a spec JSON file" % ", ".join(specmod.zoo_names()))
    p.add_argument("--cf", type=int, required=True, help="filters per shared scale (CF-n)")
    p.add_argument("--mode", choices=specmod.BINARY, default=None,
                   help="binary layer precision (default: as the spec says)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--calib-batches", type=int, default=4)
    p.add_argument("-o", "--output", required=True, help="checkpoint file to write (.pt)")
    p.set_defaults(func=run)


def init_model(arch: str, cf: int, mode: str | None = None, seed: int = 0,
               calib_batches: int = 4, batch: int = 32) -> CFNet:
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
    model = init_model(args.arch, args.cf, args.mode, args.seed, args.calib_batches)
    save_checkpoint(args.output, model, meta={"kind": "init", "seed": args.seed,
                                              "calibration": "random uint8 images"})
    print(f"wrote {args.output}: {model.spec['name']} CF-{args.cf}, untrained, "
          f"batch-norm calibrated on {args.calib_batches} random batches")
    return 0
