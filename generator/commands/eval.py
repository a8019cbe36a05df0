"""`eval FILE.pt --data D`: top-1 accuracy of a checkpoint's float model on the test split.

Extending: add options in add_parser and fill more keys of the result dict in run();
report() prints every key (text) or the whole dict (--json).
"""

from __future__ import annotations

import json

import torch

from ..model.checkpoint import load_checkpoint
from ..model.data import DATASETS, load_cifar10, load_dataset
from ..core.errors import CfgenError
from ..model.evaluate import check_compatible, float_accuracy
from ..core.options import positive_int


def add_parser(sub):
    p = sub.add_parser("eval", help="measure a checkpoint's test accuracy",
                       description="Top-1 accuracy of the checkpoint's float model on the test "
                                   "split (CPU, batches of 256: reproduces the figure train stores).")
    p.add_argument("checkpoint", help="checkpoint file (.pt)")
    p.add_argument("--data", required=True, choices=DATASETS, help="data set (its test split)")
    p.add_argument("--data-dir", default=None, help="folder with the CIFAR-10 python batches")
    p.add_argument("--limit", type=positive_int(1 << 30), default=None, metavar="N",
                   help="evaluate only the first N test frames")
    p.add_argument("--golden", action="store_true",
                   help="also lower to the hardware graph and report golden_acc and the top-1 "
                        "agreement of the bit-exact golden model with the float model")
    p.add_argument("--layers", action="store_true",
                   help="with --golden: per-layer bit agreement (teacher forced) as well")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)


def load_test_frames(args, spec: dict):
    """(images uint8 (N, C, H, W), labels) of the test split, cut to --limit, shape-checked."""
    if args.data == "cifar10":  # the test batch only
        ds = load_cifar10(args.data_dir, train=False)
    else:
        ds = load_dataset(args.data, args.data_dir)
    images, labels = ds.test.images, ds.test.labels
    if args.limit is not None:
        if args.limit < 1:
            raise CfgenError("--limit must be >= 1")
        images, labels = images[:args.limit], labels[:args.limit]
    check_compatible(spec, images, args.data)
    return images, labels


def run(args) -> int:
    ckpt = load_checkpoint(args.checkpoint)
    model = ckpt.model()
    images, labels = load_test_frames(args, ckpt.spec)
    result = {"checkpoint": str(args.checkpoint), "data": args.data, "frames": int(len(labels))}
    with torch.no_grad():
        result["float_acc"] = float_accuracy(model, images, labels)
    if args.golden:
        from ..hw.compare import agreement, layerwise
        from ..hw.lower import lower

        graph = lower(ckpt)
        result.update({k: v for k, v in agreement(graph, model, images, labels).items()
                       if k in ("golden_acc", "agreement")})
        if args.layers:
            result["layers"] = layerwise(graph, model, images)
    stored = ckpt.accuracy.get(args.data)
    if stored is not None and args.limit is None:
        result["stored_acc"] = stored
    report(result, args.json)
    return 0


def report(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
        return
    print(f"{result['checkpoint']}: {result['data']} test, {result['frames']} frames")
    for key, value in result.items():
        if key in ("checkpoint", "data", "frames", "layers"):
            continue
        print(f"  {key:12s} {value:.4f}" if isinstance(value, float) else f"  {key:12s} {value}")
    for entry in result.get("layers", []):
        nodes = "+".join(entry["nodes"])
        if "mismatches" in entry:
            print(f"  {nodes:28s} {entry['mismatches']:>8} of {entry['values']:>9} bits differ "
                  f"({entry['near_threshold']} within rounding of a threshold, "
                  f"{entry['unexplained']} unexplained)")
        else:
            print(f"  {nodes:28s} logits max error {entry['max_abs_error']:.3g} (bound "
                  f"{entry['max_bound']:.3g}, {entry['beyond_bound']} beyond), "
                  f"top-1 {entry['top1_agreement']:.4f}")
