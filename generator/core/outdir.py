"""The build folder as one atomic, locked, replaceable unit.

A build is staged in a hidden folder beside `-o` and renamed into place at the end, so an
interrupted or failed build leaves nothing behind. The marker file `.cfgen-build`
(written last) is what `--force` looks for: a folder without it is not cfgen's to delete.
A lock file beside `-o` keeps two builds from writing the same folder at once.

Signals (signals.py): setting up (parents, lock, staging folder), the swap and the clean-up
run with signals deferred, so a SIGTERM never lands between creating something and recording
it. The swap happens only if no signal was received before it, even one whose exception was
swallowed on the way; a signal that arrives during the swap itself is raised right after it
(exit 128 + N with the complete new folder in place, never a torn one).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path

from . import signals
from .errors import BuildError
from .escape import one_line

MARKER = ".cfgen-build"
MARKER_FORMAT = "cfgen-build"
MARKER_VERSION = 1


def is_build_folder(path: Path) -> bool:
    """True when `path` is a folder that cfgen wrote (a readable marker of a known version)."""
    marker = Path(path) / MARKER
    try:
        if not marker.is_file() or marker.stat().st_size > 4096:
            return False
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == MARKER_FORMAT and \
        data.get("version") == MARKER_VERSION


def _reason(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else type(exc).__name__


def check_output_path(out: Path, force: bool) -> None:
    """Refuse, before any work, an `-o` that cannot become a build folder."""
    text = str(out)
    if not text or any(c in text for c in "\n\r\0"):
        raise BuildError(f"build folder {text!r:.80}: a path must be one line without NUL")
    try:
        _check_output_path(out, force)
    except OSError as exc:          # a name too long, a loop of links, ...
        raise BuildError(f"{one_line(out, 120)}: cannot write here ({_reason(exc)})") from None


def _check_output_path(out: Path, force: bool) -> None:
    if out.is_symlink():
        raise BuildError(f"{out}: is a symbolic link; pass the real folder")
    if out.exists():
        if not out.is_dir():
            raise BuildError(f"{out}: exists and is not a folder; refusing to replace it")
        if not force:
            raise BuildError(f"{out} exists; pass --force to replace it")
        if not is_build_folder(out):
            raise BuildError(f"{out}: exists and is not a cfgen build folder (no {MARKER} "
                             "marker); --force only replaces folders cfgen wrote")
    for parent in [out.parent, *out.parent.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise BuildError(f"{out}: {parent} is not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise BuildError(f"{out}: {parent} is not writable")
            break


class BuildFolder:
    """`with BuildFolder(out, force) as f:` write into `f.tmp`, then `f.commit()`; leaving the
    block without committing (an error, a signal) removes everything it staged."""

    def __init__(self, out, force: bool = False):
        self.out = Path(out)
        self.force = force
        self.tmp: Path | None = None
        self._lock_fd: int | None = None
        self._lock_path = self.out.parent / f".{self.out.name}.lock"
        self._made_dirs: list[Path] = []

    # -- lock -------------------------------------------------------------------------
    def _lock(self) -> None:
        while True:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise BuildError(f"{self.out}: another build is writing this folder "
                                     f"(lock {self._lock_path}); wait for it to finish") from None
                raise
            # The previous holder may have unlinked the file after we opened it.
            try:
                same = os.stat(self._lock_path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._lock_fd = fd
                return
            os.close(fd)

    def _unlock(self) -> None:
        if self._lock_fd is None:
            return
        try:
            os.unlink(self._lock_path)
        except FileNotFoundError:
            pass
        os.close(self._lock_fd)
        self._lock_fd = None

    # -- staging ----------------------------------------------------------------------
    def __enter__(self) -> "BuildFolder":
        check_output_path(self.out, self.force)
        try:
            with signals.deferred():    # each thing made is recorded before a signal lands
                missing = [p for p in [self.out.parent, *self.out.parent.parents]
                           if not p.exists()]
                self.out.parent.mkdir(parents=True, exist_ok=True)
                self._made_dirs = missing
                self._lock()
                check_output_path(self.out, self.force)  # again, under the lock
                self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.",
                                                 dir=self.out.parent))
        except OSError as exc:
            self._abandon()
            raise BuildError(f"{one_line(self.out, 120)}: cannot write here ({_reason(exc)})") from None
        except BaseException:
            self._abandon()
            raise
        return self

    def commit(self) -> None:
        """Mark the staged folder as cfgen's and move it into place."""
        assert self.tmp is not None
        signals.check()     # a signal received on the way (its exception swallowed): no swap
        try:
            (self.tmp / MARKER).write_text(json.dumps(
                {"format": MARKER_FORMAT, "version": MARKER_VERSION}) + "\n")
            with signals.deferred():    # the swap is never torn; a signal is raised after it
                if self.out.exists():
                    if not is_build_folder(self.out):   # changed since we checked
                        raise BuildError(f"{self.out}: is no longer a cfgen build folder; "
                                         "refusing to replace it")
                    signals.check()     # the last moment a signal still cancels the build
                    old = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.old.",
                                                dir=self.out.parent))
                    try:
                        os.replace(self.out, old / "x")
                    except OSError:
                        old.rmdir()
                        raise
                    try:
                        os.replace(self.tmp, self.out)
                    except OSError:
                        os.replace(old / "x", self.out)     # put the old build back
                        old.rmdir()
                        raise
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    signals.check()
                    os.replace(self.tmp, self.out)
                self.tmp = None
        except OSError as exc:
            raise BuildError(f"{self.out}: cannot write here ({_reason(exc)})") from None

    def _cleanup(self) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        self._unlock()

    def _remove_made_dirs(self) -> None:
        """Parent folders this build created and left empty go too."""
        for d in self._made_dirs:
            try:
                d.rmdir()
            except OSError:
                break
        self._made_dirs = []

    def _abandon(self) -> None:
        with signals.deferred():    # a second signal does not cut the clean-up short
            self._cleanup()
            self._remove_made_dirs()

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            self._abandon()
        else:
            with signals.deferred():
                self._cleanup()
        return False
