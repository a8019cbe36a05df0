"""Reading a user's JSON file (spec, board, folding): bounded, non-blocking, strict.

Every way a file can be wrong (missing, a folder or FIFO, too big, not UTF-8, not JSON,
NaN / Infinity literals, nested too deep, a 5000-digit integer) is one line of `error`."""

from __future__ import annotations

import json
import os
import stat

from .escape import one_line


def regular_file(path, what: str, error, shown: str, reason=None) -> os.stat_result:
    """os.stat of a user's input file that must be a regular file, or `error(<one line>)`
    naming what is wrong (missing, a parent not a folder, a folder, a FIFO or device)."""
    reason = reason or (lambda exc: getattr(exc, "strerror", None) or str(exc))
    article = "an" if what[:1].lower() in "aeiou" else "a"
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise error(f"{shown}: no such {what} file") from None
    except NotADirectoryError:
        raise error(f"{shown}: no such {what} file (a parent is not a folder)") from None
    except (OSError, ValueError) as exc:        # ValueError: a NUL byte in the path
        raise error(f"{shown}: cannot read: {reason(exc)}") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{shown}: is a folder, not {article} {what} file")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{shown}: not a regular file")
    return st


def replaceable_file(path, what: str, error, shown: str, reason=None) -> os.stat_result | None:
    """os.stat of an output file about to be (re)written: None when it does not exist yet,
    else a regular file (the caller checks it is one of its own), or `error(<one line>)`."""
    reason = reason or (lambda exc: (getattr(exc, "strerror", None) or "").lower())
    article = "an" if what[:1].lower() in "aeiou" else "a"
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise error(f"{shown}: cannot write: a parent is a file, not a folder") from None
    except OSError as exc:
        raise error(f"{shown}: cannot write: {reason(exc)}") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{shown}: is a folder, not {article} {what} file")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{shown}: exists and is not a regular file; refusing to replace it")
    return st


def _no_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def read_json(path, what: str, error, max_bytes: int = 1 << 24):
    """The parsed contents of the JSON file `path`, or `error(<one line>)`."""
    shown = one_line(path, 200)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise error(f"{shown}: not a {what} (not a regular file)")
        # O_NONBLOCK: a /proc or FIFO file posing as a regular one must not block the read.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except (OSError, ValueError) as exc:   # ValueError: a NUL byte in the path
        why = (getattr(exc, "strerror", None) or type(exc).__name__).lower()
        raise error(f"{shown}: cannot read the {what} ({why})") from None
    if len(data) > max_bytes:
        raise error(f"{shown}: more than {max_bytes:,} bytes, not a {what}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{shown}: not a JSON {what} (not UTF-8 text)") from None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise error(f"{shown}: not a readable JSON {what} ({exc})") from None
    except RecursionError:
        raise error(f"{shown}: not a JSON {what} (nested too deeply)") from None
    except ValueError as exc:  # NaN/Infinity literals; integers of more than 4300 digits
        raise error(f"{shown}: not a JSON {what} ({one_line(exc, 80)})") from None



