"""`python -m generator.package OUT`: collect what goes onto the board into OUT/package/.

    OUT/package/  <top>.bit + <top>.hwh   overlay (from `make bitstream`: OUT/vivado/)
                  cfgen_driver/           the driver (host/cfgen_driver)
                  cfgen_meta.json         weights-independent metadata
                  cfgen_demo.ipynb        demo notebook
                  vectors/                test images, labels, golden predictions and outputs
                  README.md               copy-and-run steps
                  MANIFEST.json           files + SHA-256, complete flag, what is missing
    OUT/package.tar.gz                    the same, one file to copy

Without a bitstream the package is still made, flagged incomplete (MANIFEST.json
"complete": false, a banner in README.md, a warning on stderr); --strict makes that an
error (exit 2) instead. The folder is written atomically (replaced as a whole).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

from .backends.host import HOST_DIR, TEMPLATES, build_meta, driver
from .errors import BuildError, CfgenError
from .notebook import NOTEBOOK, render_notebook

VECTOR_FILES = ("input.npy", "labels.npy", "meta.json")


def find_overlay(out: Path, top: str) -> tuple[Path | None, Path | None]:
    """(.bit, .hwh) written by `make bitstream`: OUT/vivado/<top>.bit/.hwh, else any pair in OUT."""
    viv = out / "vivado"
    if (viv / f"{top}.bit").is_file() and (viv / f"{top}.hwh").is_file():
        return viv / f"{top}.bit", viv / f"{top}.hwh"
    skip = {out / "package"}

    def found(pattern):
        return sorted((p for p in out.rglob(pattern) if not any(s in p.parents for s in skip)),
                      key=lambda p: p.stat().st_mtime, reverse=True)
    bits, hwhs = found("*.bit"), found("*.hwh")
    for b in bits:
        if b.with_suffix(".hwh").is_file():
            return b, b.with_suffix(".hwh")
    return (bits[0] if bits else None), (hwhs[0] if hwhs else None)


def _sha256(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _report(out: Path) -> dict:
    p = out / "report.json"
    return json.loads(p.read_text()) if p.is_file() else {}


def make_package(out_dir, *, strict: bool = False, class_names=None, log=print, warn=None) -> dict:
    warn = warn or (lambda m: print(m, file=sys.stderr))
    out = Path(out_dir).resolve()
    if not (out / "graph.json").is_file():
        raise BuildError(f"{out} is not a cfgen build folder (no graph.json): run `python -m generator build` first")
    graph = json.loads((out / "graph.json").read_text())
    report = _report(out)
    board = None
    if report.get("board"):
        from .boards import load_board
        board = load_board(report["board"])
    meta = build_meta(graph, out, board, data=(report.get("vectors") or {}).get("data"),
                      class_names=class_names, predicted=report.get("predicted"))
    driver().meta.save(meta, out / "host")  # keep the build's copy in step

    bit, hwh = find_overlay(out, meta["ip"]["top"])
    missing = []
    if bit is None:
        missing.append("no bitstream (.bit): run `make bitstream`")
    if hwh is None:
        missing.append("no hardware handoff (.hwh): run `make bitstream`")
    if missing and strict:
        raise BuildError("package refused (--strict): " + "; ".join(missing))

    tmp = Path(tempfile.mkdtemp(prefix=".package.", dir=out))
    try:
        shutil.copytree(HOST_DIR / "cfgen_driver", tmp / "cfgen_driver",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        pkg_meta = dict(meta, build_dir=str(out))  # off-board convenience; ignored when absent
        driver().meta.save(pkg_meta, tmp)
        names = {}
        if bit is not None:
            names["bit"] = f"{meta['ip']['top']}.bit"
            shutil.copy2(bit, tmp / names["bit"])
        if hwh is not None:
            names["hwh"] = f"{meta['ip']['top']}.hwh"  # pynq finds <name>.hwh next to <name>.bit
            shutil.copy2(hwh, tmp / names["hwh"])
        vec = out / "vectors"
        if (vec / "meta.json").is_file():
            (tmp / "vectors").mkdir()
            vmeta = json.loads((vec / "meta.json").read_text())
            for f in VECTOR_FILES + (f"{vmeta.get('output')}.npy",):
                if (vec / f).is_file():
                    shutil.copy2(vec / f, tmp / "vectors" / f)
        render_notebook(tmp / NOTEBOOK, pkg_meta, package=True)
        import jinja2
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                                 keep_trailing_newline=True)
        created = datetime.datetime.now().isoformat(timespec="seconds")
        (tmp / "README.md").write_text(env.get_template("README.md.j2").render(
            meta=pkg_meta, complete=not missing, missing=missing, bitfile=names.get("bit"),
            hwhfile=names.get("hwh"), build_dir=str(out), created=created))
        files = {str(p.relative_to(tmp)): _sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        manifest = {"name": meta["name"], "board": meta["board"], "created": created, "complete": not missing,
                    "missing": missing, "overlay": {"bit": str(bit) if bit else None, "hwh": str(hwh) if hwh else None},
                    "files": files}
        (tmp / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
        for d in [tmp] + [p for p in tmp.rglob("*") if p.is_dir()]:
            d.chmod(0o755)
        dest = out / "package"
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    tar = out / "package.tar.gz"
    with tarfile.open(tar, "w:gz") as t:
        t.add(dest, arcname=f"{meta['name']}-{meta['board']}")
    log(f"wrote {dest}/ ({len(manifest['files']) + 1} files) and {tar}")
    if missing:
        warn("WARNING: package INCOMPLETE: " + "; ".join(missing) + ". The driver, metadata, notebook and "
             "vectors are there; copy it to the board after `make bitstream` && `make package`.")
    return manifest


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m generator.package", description=__doc__.splitlines()[0])
    p.add_argument("out", help="build folder")
    p.add_argument("--strict", action="store_true", help="refuse (exit 2) when the bitstream is missing")
    p.add_argument("--class-names", default=None, help="comma-separated class names (default: from the data set)")
    a = p.parse_args(argv)
    try:
        names = a.class_names.split(",") if a.class_names else None
        make_package(a.out, strict=a.strict, class_names=names)
    except (CfgenError, driver().MetadataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
