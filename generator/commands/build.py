"""`build CKPT --board B`: generate the accelerator project for a board."""

from __future__ import annotations

from ..hw.boards import board_names
from ..build import MAX_FRAMES
from ..core import options


def add_parser(sub):
    p = sub.add_parser("build", help="generate HLS + RTL accelerator project for a board",
                       description="Lower a checkpoint to the hardware graph, fold it for a board, "
                                   "and write the HLS/RTL project with golden test vectors.")
    p.add_argument("checkpoint", help="cfgen checkpoint (.pt)")
    p.add_argument("--board", required=True,
                   help="one of: " + ", ".join(board_names()) + "; or a board .json file")
    p.add_argument("-o", "--output", default=None, help="build folder (default: build/<ckpt name>)")
    p.add_argument("--data", default="random", choices=("random", "digits", "cifar10"),
                   help="test images for the vectors (default: random uint8 images)")
    p.add_argument("--data-dir", default=None, help="CIFAR-10 folder for --data cifar10")
    p.add_argument("--frames", type=options.positive_int(MAX_FRAMES), default=100,
                   help="test vectors to generate")
    p.add_argument("--fps", type=options.finite_float(0, 1e9, lo_open=True), default=None,
                   help="target frames/s at the board clock")
    p.add_argument("--folding", default=None,
                   help="folding JSON: {node: {pe, simd[, mult]}} (OUT/folding.json of a build works)")
    p.add_argument("--mult", default="auto", choices=("auto", "any", "dsp", "dsp2", "lut"),
                   help="int8 multipliers of the first layer: one per DSP48 (dsp), two per DSP48 "
                        "(dsp2), LUTs (lut); the cheapest of those the RTL backend implements "
                        "(auto, default) or of all three (any)")
    p.add_argument("--util", default=None, metavar="R=F,...",
                   help="folding budget as fractions of the board, e.g. LUT=0.8,FF=0.8,BRAM36=0.9,"
                        "DSP=0.9 (the default)")
    p.add_argument("--clock", type=options.finite_float(1, 1000), default=None, metavar="MHZ",
                   help="target clock in MHz (overrides the board's): folding, pipelining, "
                        "frames/s and the timing estimate use it")
    p.add_argument("--over-budget", action="store_true",
                   help="build even when the predicted resources exceed the board's budget "
                        "(otherwise refused with the numbers)")
    p.add_argument("--accept-slow", action="store_true",
                   help="build a folding that memory holds 10x or more below what the board's "
                        "logic could reach (otherwise refused with both frame rates)")
    p.add_argument("--runtime-weights", action="store_true",
                   help="weights and thresholds in RAMs the driver writes after the overlay "
                        "loads (docs/WEIGHTS.md): a retrained model of the same architecture "
                        "runs on the same bitstream (`weights MODEL BUILD`); always on when the "
                        "folding puts weights in UltraRAM")
    p.add_argument("--seed", type=options.seed, default=0)
    p.add_argument("--force", action="store_true", help="replace an existing build folder")
    p.set_defaults(func=run)


def run(args) -> int:
    import threading

    from ..core import signals
    if threading.current_thread() is threading.main_thread():
        signals.install()   # again: libraries imported since start-up may have taken SIGTERM
    from pathlib import Path

    from ..build import build

    out = args.output or str(Path("build") / Path(args.checkpoint).stem)
    from ..hw.fold import parse_util

    build(args.checkpoint, args.board, out, data=args.data, data_dir=args.data_dir,
          frames=args.frames, fps=args.fps, folding_file=args.folding, force=args.force,
          seed=args.seed, mult=args.mult, util=parse_util(args.util), clock_mhz=args.clock,
          over_budget=args.over_budget, runtime_weights=args.runtime_weights,
          accept_slow=args.accept_slow)
    return 0
