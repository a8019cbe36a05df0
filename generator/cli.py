"""Command-line entry: `python -m generator SUBCOMMAND ...`.

Each subcommand lives in generator/commands/<name>.py with add_parser(sub) and run(args).
User errors (CfgenError) print one line and exit 2; SIGINT / SIGTERM / SIGHUP exit 128 + the
signal number after every staged output is removed (generator/signals.py).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import CfgenError

COMMANDS = ("init", "train", "eval", "convert", "build")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is the single line `error: ...` (exit 2), no usage dump.

    Subparsers inherit the class (add_subparsers uses type(parent) by default).
    """

    def error(self, message):
        from .escape import one_line

        where = self.prog.split(" ", 3)[3] + ": " if self.prog.count(" ") >= 3 else ""
        self.exit(2, f"error: {where}{one_line(' '.join(str(message).split()), 300)}\n")


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
    from . import signals
    from .escape import one_line

    try:
        parser = make_parser()
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except CfgenError as exc:
        print(f"error: {one_line(' '.join(str(exc).split()), 400)}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, signals.Terminated) as exc:
        print(f"error: {signals.describe(exc)}", file=sys.stderr)
        return signals.exit_code(exc)
