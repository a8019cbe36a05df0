"""`python -m generator.flows.notebook OUT`: render and execute the demo notebook headless.

The notebook (templates/host/cfgen_demo.py.j2, percent-format cells) is rendered into
OUT/notebook/cfgen_demo.ipynb, executed with nbclient in OUT/notebook/ on the C-simulation
backend by default (CFGEN_BACKEND), saved executed in place, and writes
OUT/notebook/results.json (frames, accuracy, agreement_with_golden, outputs_equal_golden,
backend, frames/s). Exit status 1 when a cell fails, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from ..backends.notebook import (NOTEBOOK, REPO_ROOT, TEMPLATES, jinja_env,  # noqa: F401
                                notebook_from_percent, render_notebook, render_notebook_text)


def execute(path, *, cwd=None, env: dict | None = None, timeout: int = 3600):
    """Run every cell (nbclient) in `cwd` with extra environment variables; save in place."""
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(str(path), as_version=4)
    old = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(cwd or path.parent)}})
        try:
            client.execute()
        finally:
            nbformat.write(nb, str(path))
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


MAX_FRAMES = 1_000_000
MAX_TIMEOUT = 7 * 86_400


def check_count(value, what: str, hi: int):
    """An int in 1..hi (bool and floats refused): BuildError, one line."""
    from ..core.errors import BuildError

    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
        raise BuildError(f"{what} must be an integer in 1..{hi}, got {value!r}")
    return value


def run(out_dir, *, backend: str = "csim", frames: int | None = None, timeout: int = 3600,
        log=print) -> dict:
    from ..backends.host import build_meta, driver, read_build_json
    from ..core.errors import BuildError
    from ..core.escape import one_line

    if frames is not None:
        check_count(frames, "--frames", MAX_FRAMES)
    check_count(timeout, "--timeout", MAX_TIMEOUT)
    if backend not in ("csim", "golden", "auto"):
        raise BuildError(f"unknown backend {one_line(repr(backend), 40)} (csim, golden or auto)")
    out = Path(out_dir).resolve()
    if not (out / "graph.json").is_file():
        raise BuildError(f"{one_line(out)} is not a cfgen build folder (no graph.json)")
    meta_file = out / "host" / "cfgen_meta.json"
    if meta_file.is_file():
        meta = driver().meta.load(meta_file)
    else:  # a build made before the host backend was wired into `build`
        meta = build_meta(read_build_json(out / "graph.json"), out, _board(out))
        driver().meta.save(meta, out / "host")
    if not (out / "host" / "csim_shim.cpp").is_file():
        import shutil
        shutil.copy2(TEMPLATES / "csim_shim.cpp", out / "host" / "csim_shim.cpp")
    nb_path = render_notebook(out / "notebook" / NOTEBOOK, meta, package=False)
    results = out / "notebook" / "results.json"
    results.unlink(missing_ok=True)
    env = {"CFGEN_BACKEND": backend, "CFGEN_BUILD_DIR": str(out), "CFGEN_RESULTS": str(results)}
    if frames is not None:
        env["CFGEN_FRAMES"] = str(frames)
    log(f"executing {nb_path} on the {backend} backend ...")
    t0 = time.perf_counter()
    execute(nb_path, cwd=nb_path.parent, env=env, timeout=timeout)
    res = json.loads(results.read_text())
    res["notebook_seconds"] = round(time.perf_counter() - t0, 2)
    results.write_text(json.dumps(res, indent=2))
    log(f"notebook ran in {res['notebook_seconds']} s: {res['frames']} frames on {res['backend']}, "
        f"agreement with golden {res['agreement_with_golden']}, outputs equal golden "
        f"{res['outputs_equal_golden']}, accuracy {res['accuracy']}; wrote {results}")
    return res


def _board(out: Path):
    """The build's boards.Board (OUT/board.json, else report.json's board name), None when
    neither says (or names a board file that is gone)."""
    from ..backends.host import build_board
    from ..core.errors import CfgenError
    try:
        return build_board(out)
    except CfgenError:
        return None


def _count_arg(what: str, hi: int):
    """argparse type: an integer in 1..hi, else a one-line usage error."""
    def parse(text: str) -> int:
        t = text.strip()
        if not (t.isdigit() and 1 <= int(t) <= hi):
            raise argparse.ArgumentTypeError(f"{what} must be an integer in 1..{hi}, got {text!r}")
        return int(t)
    return parse


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are the single line `error: ...` (exit 2), no usage dump."""

    def error(self, message):
        from ..core.escape import one_line

        self.exit(2, f"error: {one_line(' '.join(str(message).split()), 300)}\n")


def parser(prog: str, doc: str) -> argparse.ArgumentParser:
    return OneLineParser(prog=prog, description=doc.splitlines()[0])


def main(argv=None) -> int:
    p = parser("python -m generator.flows.notebook", __doc__)
    p.add_argument("out", help="build folder")
    p.add_argument("--backend", default="csim", choices=("csim", "golden", "auto"))
    p.add_argument("--frames", type=_count_arg("--frames", MAX_FRAMES), default=None,
                   help="images to classify (default: the notebook's 100)")
    p.add_argument("--timeout", type=_count_arg("--timeout", MAX_TIMEOUT), default=3600,
                   help="seconds per cell (C simulation of a large model is slow)")
    a = p.parse_args(argv)
    from ..backends.host import driver
    from ..core.errors import CfgenError
    from ..core.escape import one_line
    try:
        res = run(a.out, backend=a.backend, frames=a.frames, timeout=a.timeout)
    except (CfgenError, driver().DriverError) as e:
        print(f"error: {one_line(e, 400)}", file=sys.stderr)
        return 2
    except Exception as e:  # a failing cell: the executed notebook keeps the traceback
        name, value = getattr(e, "ename", None), getattr(e, "evalue", None)
        what = f"{name}: {value}" if name else f"{type(e).__name__}: {str(e).strip()}"
        print(f"error: the notebook failed ({one_line(what, 300)}); the traceback is in "
              f"{one_line(Path(a.out) / 'notebook' / NOTEBOOK)}", file=sys.stderr)
        return 1
    ok = res["agreement_with_golden"] in (None, 1.0) and res["outputs_equal_golden"] in (None, True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
