"""`convert FILE.pt --cf N -o OUT.pt`: re-group binary layers into CF-n without float weights."""

from __future__ import annotations

from ..model.checkpoint import check_output_path, load_checkpoint, save_checkpoint
from ..core.errors import CheckpointError, SpecError
from ..model.train import convert_model
from ..core.options import positive_int


def add_parser(sub):
    p = sub.add_parser(
        "convert", help="convert a checkpoint to CF-n",
        description="Convert every binary layer to CF-n: n consecutive filters share "
                    "alpha_g = mean of their filter-wise alphas; signs are kept. The result "
                    "needs fine-tuning (train --from) or re-evaluation before use.")
    p.add_argument("checkpoint", help="checkpoint file (.pt)")
    p.add_argument("--cf", type=positive_int(1 << 16), required=True, help="filters per shared scale (CF-n)")
    p.add_argument("-o", "--output", required=True, help="checkpoint file to write (.pt)")
    p.set_defaults(func=run)


def run(args) -> int:
    check_output_path(args.output)
    ckpt = load_checkpoint(args.checkpoint)
    try:
        model = convert_model(ckpt.model(), args.cf)
    except SpecError as exc:
        raise CheckpointError(f"{args.checkpoint}: cannot convert to CF-{args.cf}: {exc}") from None
    before = sorted({l["cf"] for l in ckpt.layers() if l["precision"] != "float"})
    meta = {"kind": "convert", "from": str(args.checkpoint), "from_cf": before, "cf": args.cf,
            "parent_meta_kind": ckpt.meta.get("kind"), "parent_accuracy": ckpt.accuracy}
    save_checkpoint(args.output, model.eval(), meta=meta)
    print(f"wrote {args.output}: {model.spec['name']} CF-{'/'.join(map(str, before))} -> "
          f"CF-{args.cf} ({sum(1 for l in ckpt.layers() if l['precision'] != 'float')} binary "
          "layers); accuracy not measured: run eval")
    return 0
