"""`weights MODEL BUILD -o OUT`: the weight file of another model for an existing build made
with --runtime-weights (a retrained model of the same architecture on the same bitstream)."""

from __future__ import annotations

from ..core import options


def add_parser(sub):
    p = sub.add_parser(
        "weights", help="write the run-time weight file of a model for an existing build",
        description="Lower MODEL with BUILD's folding and write OUT/weights.{bin,hex,json} (what "
                    "the driver loads through the weight port), the model's golden graph and "
                    "test vectors. Refused unless BUILD was made with --runtime-weights and the "
                    "model's hardware (architecture, folding, number formats) is BUILD's.")
    p.add_argument("model", help="cfgen checkpoint (.pt) or QONNX file (.onnx)")
    p.add_argument("build", help="build folder made with `build --runtime-weights`")
    p.add_argument("-o", "--output", required=True, help="folder to write")
    p.add_argument("--data", default="random", choices=("random", "digits", "cifar10"),
                   help="test images for the vectors (default: random uint8 images)")
    p.add_argument("--data-dir", default=None, help="CIFAR-10 folder for --data cifar10")
    p.add_argument("--frames", type=options.positive_int(100000), default=16,
                   help="golden test vectors to write (default 16)")
    p.add_argument("--seed", type=options.seed, default=0)
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..runtime_weights import write_model_weights

    man = write_model_weights(args.model, args.build, args.output, data=args.data,
                              data_dir=args.data_dir, frames=args.frames, seed=args.seed,
                              force=args.force)
    print(f"wrote {args.output}/ ({man['words']:,} weight words for {args.build}, checksum "
          f"{man['checksum'][0]:08x} {man['checksum'][1]:08x})")
    return 0
