"""What every command-line entry point shares (`python -m generator` and the build-folder
tools `python -m generator.flows.csim|rtlsim|synth|report|package|notebook`): argparse whose usage
errors are one line, and a runner that turns user errors, missing tools and signals into
one `error:` line and an exit code (2 for errors, 128 + N for signal N)."""

from __future__ import annotations

import argparse
import sys

from . import signals
from .errors import CfgenError
from .escape import one_line


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is the single line `error: ...` (exit 2), no usage dump.
    Subparsers inherit the class (add_subparsers uses type(parent) by default)."""

    def error(self, message):
        words = self.prog.split(" ")
        where = " ".join(words[3:]) + ": " if len(words) > 3 else ""
        self.exit(2, f"error: {where}{one_line(' '.join(str(message).split()), 300)}\n")


# long enough for a refusal that names what a design needs per memory kind and where it
# would fit; still bounded, as user data can reach an error message
ERROR_LINE_CHARS = 700


def error_line(exc: BaseException) -> str:
    return f"error: {one_line(' '.join(str(exc).split()), ERROR_LINE_CHARS)}"


def run_main(body, install_signals: bool = True) -> int:
    """Call `body()` with signals handled; user errors and missing tools become one line.

    A signal wins over the outcome of `body()`: if one was received while it ran, even one
    whose exception was swallowed on the way (signals.py), the command reports it and exits
    128 + N, not 0 or 2."""
    from .tools import ToolMissing

    if install_signals:
        signals.install()
    try:
        rc = int(body() or 0)
    except (CfgenError, ToolMissing) as exc:
        if signals.received() is None:
            print(error_line(exc), file=sys.stderr)
            return 2
        rc = 2
    except (KeyboardInterrupt, signals.Terminated) as exc:
        return _interrupted(exc)
    sig = signals.received()
    if sig is not None:
        return _interrupted(signals.exception_for(sig))
    return rc


def _interrupted(exc: BaseException) -> int:
    with signals.deferred(raise_held=False):    # a second signal does not cut the line short
        print(f"error: {signals.describe(exc)}", file=sys.stderr)
        code = signals.exit_code(exc)
    signals.take()
    return code
