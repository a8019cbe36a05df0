"""Command-line entry: `python -m generator SUBCOMMAND ...`.

Each subcommand lives in generator/commands/<name>.py with add_parser(sub) and run(args).
User errors (CfgenError) print one line and exit 2; Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import CfgenError

COMMANDS = ("init", "train", "eval", "convert", "build")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m generator",
        description="cfgen: FPGA accelerators for cross-filter compressed binarized CNNs.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        try:
            module = importlib.import_module(f".commands.{name}", __package__)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.endswith(f"commands.{name}"):
                continue  # subcommand not built yet
            raise
        module.add_parser(sub)
    return parser


def main(argv=None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CfgenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
