"""SIGTERM and SIGHUP end a command the way Ctrl-C does: the exception unwinds through every
`finally` and context manager (staging folders, locks, temp files are removed), and the CLI
prints one line and exits 128 + the signal number. Installed before anything heavy is
imported, so a signal during start-up is handled too."""

from __future__ import annotations

import signal

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Terminated(BaseException):
    """Raised in the main thread by a SIGTERM / SIGHUP (BaseException, like KeyboardInterrupt,
    so that `except Exception` blocks do not swallow it)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise(signum, frame):
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated(signum)


def install() -> None:
    for sig in HANDLED:
        signal.signal(sig, _raise)
    # A mask inherited from the parent (exec keeps it) would hold the signals forever.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED)


def exit_code(exc: BaseException) -> int:
    return 128 + (exc.signum if isinstance(exc, Terminated) else signal.SIGINT)


def describe(exc: BaseException) -> str:
    signum = exc.signum if isinstance(exc, Terminated) else signal.SIGINT
    return f"interrupted by {signal.Signals(signum).name}"
