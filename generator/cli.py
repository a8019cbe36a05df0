"""Command-line entry: `python -m generator SUBCOMMAND ...`.

Each subcommand lives in generator/commands/<name>.py with add_parser(sub) and run(args).
User errors (CfgenError) print one line and exit 2; SIGINT / SIGTERM / SIGHUP exit 128 + the
signal number after every staged output is removed (generator/core/signals.py).
"""

from __future__ import annotations

import argparse
import importlib

from .core.entry import OneLineParser, run_main

COMMANDS = ("init", "train", "eval", "convert", "build", "weights", "import", "export")
# subcommands whose module name differs (`import` is a Python keyword)
MODULES = {"import": "import_"}


def make_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m generator",
        description="cfgen: FPGA accelerators for cross-filter compressed binarized CNNs.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        try:
            module = importlib.import_module(f".commands.{MODULES.get(name, name)}",
                                             __package__)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.endswith(f"commands.{MODULES.get(name, name)}"):
                continue  # subcommand not built yet
            raise
        module.add_parser(sub)
    return parser


def main(argv=None) -> int:
    def body():
        args = make_parser().parse_args(argv)
        return args.func(args)

    # The handlers are installed by __main__ before the imports (and stay the caller's own
    # business when main() is called in-process).
    return run_main(body, install_signals=False)
