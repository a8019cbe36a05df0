"""`train ARCH --cf N --data D -o FILE.pt`: train a CF-n model (paper schedule, resumable).

Works under `torchrun --nproc_per_node K -m generator train ...` (DistributedDataParallel).
"""

from __future__ import annotations

from ..model import spec as specmod
from ..model.data import DATASETS
from ..model.train import DIGITS_EPOCHS, LIMITS, PAPER, PAPER_EPOCHS, PAPER_MILESTONES, TrainConfig, train
from ..core.options import finite_float, int_list, positive_int, seed


def add_parser(sub):
    p = sub.add_parser(
        "train", help="train a CF-n binarized model",
        description="Train a CF-n binarized model with the paper's schedule: Adam, lr 0.01, "
                    "weight decay 1e-5, lr x0.1 at epochs 120/200/240/280 of 320 (scaled to "
                    "--epochs), batch 128, no augmentation. Writes OUT and OUT.state every "
                    "epoch; the final OUT stores the measured test accuracy. Runs on CUDA when "
                    "available; under torchrun it trains with DistributedDataParallel.")
    p.add_argument("arch", help="zoo name (%s) or a spec JSON file" % ", ".join(specmod.zoo_names()))
    p.add_argument("--cf", type=positive_int(LIMITS["cf"]), required=True,
                   help="filters per shared scale (CF-n)")
    p.add_argument("--data", required=True, choices=DATASETS, help="training data set")
    p.add_argument("--data-dir", default=None,
                   help="folder with the CIFAR-10 python batches (data_batch_1..5, test_batch)")
    p.add_argument("--mode", choices=specmod.BINARY, default=None,
                   help="precision of the binary layers (default: as the spec says)")
    p.add_argument("--epochs", type=positive_int(LIMITS["epochs"]), default=None,
                   help=f"epochs (default {PAPER_EPOCHS}; {DIGITS_EPOCHS} for --data digits)")
    p.add_argument("--batch-size", type=positive_int(LIMITS["batch_size"]), default=None,
                   help=f"global batch size, split across torchrun processes "
                        f"(default {PAPER['batch_size']})")
    p.add_argument("--lr", type=finite_float(0.0, LIMITS["lr"], lo_open=True), default=None,
                   help=f"Adam learning rate (default {PAPER['lr']})")
    p.add_argument("--weight-decay", type=finite_float(0.0, LIMITS["weight_decay"]),
                   default=None,
                   help=f"Adam weight decay (default {PAPER['weight_decay']})")
    p.add_argument("--milestones", type=int_list(1, LIMITS["epochs"], LIMITS["milestones"]),
                   default=None, metavar="E1,E2,...",
                   help="epochs at which lr is multiplied by 0.1 (default: %s scaled by "
                        "epochs/%d)" % ("/".join(map(str, PAPER_MILESTONES)), PAPER_EPOCHS))
    p.add_argument("--seed", type=seed, default=None, help="random seed (default 0)")
    p.add_argument("--center-clamp", action="store_true", default=None,
                   help="center latent weights over input channels and clamp them to [-1, 1] "
                        "before binarizing, as the XNOR-Net reference does")
    p.add_argument("--from", dest="from_ckpt", default=None, metavar="CKPT",
                   help="fine-tune from a checkpoint, re-grouped to --cf N if its n differs")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT.state (saved every epoch); --epochs may extend the run")
    p.add_argument("--stop-after", type=positive_int(LIMITS["epochs"]), default=None, metavar="E",
                   help="stop after epoch E, leaving a resumable run (for time-limited jobs)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto: CUDA when available (default)")
    p.add_argument("--threads", type=positive_int(LIMITS["threads"]), default=None,
                   help="CPU threads (default: 1 for --data digits, else all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("-o", "--output", required=True, help="checkpoint file to write (.pt)")
    p.set_defaults(func=run)


def config_from_args(args) -> TrainConfig:
    return TrainConfig(
        arch=args.arch, cf=args.cf, data=args.data, output=args.output, mode=args.mode,
        data_dir=args.data_dir, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, milestones=args.milestones, seed=args.seed,
        center_clamp=args.center_clamp, from_ckpt=args.from_ckpt, resume=args.resume,
        stop_after=args.stop_after, device=args.device, progress=not args.quiet,
        threads=args.threads)


def run(args) -> int:
    result = train(config_from_args(args))
    if result.main and result.summary:
        print(result.summary)
    return 0
