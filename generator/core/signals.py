"""SIGTERM and SIGHUP end a command the way Ctrl-C does: the exception unwinds through every
`finally` and context manager (staging folders, locks, temp files are removed), and the CLI
prints one line and exits 128 + the signal number. Installed before anything heavy is
imported, so a signal during start-up is handled too.

Two things keep a signal from being lost:

* `Terminated` is a KeyboardInterrupt. CPython runs a Python signal handler at the next
  signal check, which may be inside C code: compile() folding a constant such as `2**62`
  (long multiplication checks for signals). C code that clears the errors it does not
  expect keeps a KeyboardInterrupt only: Python/ast_opt.c make_const clears every other
  error raised while folding. A module compiled from source (no .pyc, as under
  PYTHONDONTWRITEBYTECODE=1) while a SIGTERM was pending used to swallow it silently: the
  build ran on and exited 0.
* Every signal received is also remembered until `take()` reports it: code that must not run
  after a signal (the final swap of a build folder) calls `check()`, and the CLI runner
  reports a signal whose exception was swallowed anyway.

`deferred()` holds signals over a few statements that must not be torn (rename a folder and
record that it was renamed); a signal that arrives inside is raised when the block ends.
"""

from __future__ import annotations

import signal

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """Raised in the main thread by a SIGTERM / SIGHUP. A KeyboardInterrupt (so a
    BaseException: `except Exception` does not swallow it), because CPython's C code keeps a
    KeyboardInterrupt where it clears any other error (see the module docstring)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


_seen: int | None = None      # the first signal received and not yet reported (take())
_held: int | None = None      # a signal that arrived inside deferred(), raised at its end
_deferring = 0


def exception_for(signum: int) -> BaseException:
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def _raise(signum, frame):
    global _seen, _held
    if _seen is None:
        _seen = signum
    if _deferring:
        if _held is None:
            _held = signum
        return
    raise exception_for(signum)


def install() -> None:
    for sig in HANDLED:
        signal.signal(sig, _raise)
    # A mask inherited from the parent (exec keeps it) would hold the signals forever.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED)


def received() -> int | None:
    """The signal received since the last take(), even if its exception was swallowed."""
    return _seen


def check() -> None:
    """Raise the exception of a signal received earlier (its own exception may have been
    swallowed on the way); nothing when none was."""
    if _seen is not None:
        raise exception_for(_seen)


def take() -> int | None:
    """The signal received (None if none), forgotten: the caller reports it."""
    global _seen, _held
    sig, _seen, _held = _seen, None, None
    return sig


class deferred:
    """`with deferred():` a SIGINT/SIGTERM/SIGHUP arriving inside the block is raised when it
    ends (at once, if nothing else is being raised), never between two of its statements.
    `deferred(raise_held=False)` only holds it (received() still tells)."""

    def __init__(self, raise_held: bool = True):
        self.raise_held = raise_held

    def __enter__(self):
        global _deferring
        _deferring += 1
        return self

    def __exit__(self, exc_type, exc, tb):
        global _deferring, _held
        _deferring -= 1
        if _deferring == 0 and _held is not None:
            sig, _held = _held, None
            if exc_type is None and self.raise_held:
                raise exception_for(sig)
            # else something is being raised (it goes on), or the caller reports received()
        return False


def exit_code(exc: BaseException) -> int:
    return 128 + (exc.signum if isinstance(exc, Terminated) else signal.SIGINT)


def describe(exc: BaseException) -> str:
    signum = exc.signum if isinstance(exc, Terminated) else signal.SIGINT
    return f"interrupted by {signal.Signals(signum).name}"
