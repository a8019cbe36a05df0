"""`python -m generator.flows.package OUT`: collect what goes onto the board into OUT/package/.

    OUT/package/  <top>.bit + <top>.hwh   overlay (from `make bitstream`: OUT/vivado/)
                  cfgen_driver/           the driver (host/cfgen_driver)
                  cfgen_meta.json         weights-independent metadata
                  weights/                run-time weights builds: weights.json + weights.bin
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

import datetime
import hashlib
import json
import os
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

from ..backends.host import HOST_DIR, build_board, build_meta, driver, read_build_json
from ..core.errors import BuildError, CfgenError
from ..core.escape import one_line
from ..core.names import check_name, name_from
from .notebook import NOTEBOOK, jinja_env, parser, render_notebook

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
    return read_build_json(p) if p.is_file() else {}


def check_class_names(names) -> list[str] | None:
    """--class-names: each a safe name (generator/core/names.py), none twice."""
    if names is None:
        return None
    if isinstance(names, str) or not isinstance(names, (list, tuple)):
        raise BuildError(f"class names must be a list of names, got {type(names).__name__}")
    seen = set()
    for n in names:
        check_name(n, "class name", BuildError)
        if n in seen:
            raise BuildError(f"class name {n!r} is given twice")
        seen.add(n)
    return list(names)


def make_package(out_dir, *, strict: bool = False, class_names=None, log=print, warn=None) -> dict:
    warn = warn or (lambda m: print(m, file=sys.stderr))
    class_names = check_class_names(class_names)
    out = Path(out_dir).resolve()
    if not (out / "graph.json").is_file():
        raise BuildError(f"{one_line(out)} is not a cfgen build folder (no graph.json): run "
                         "`python -m generator build` first")
    graph = read_build_json(out / "graph.json")
    report = _report(out)
    board = build_board(out)
    vectors = report.get("vectors") if isinstance(report.get("vectors"), dict) else {}
    predicted = report.get("predicted") if isinstance(report.get("predicted"), dict) else None
    meta = build_meta(graph, out, board, data=vectors.get("data"), class_names=class_names, predicted=predicted)

    bit, hwh = find_overlay(out, meta["ip"]["top"])
    missing = []
    if bit is None:
        missing.append("no bitstream (.bit): run `make bitstream`")
    if hwh is None:
        missing.append("no hardware handoff (.hwh): run `make bitstream`")
    if missing and strict:
        raise BuildError("package refused (--strict): " + "; ".join(missing))

    vec = out / "vectors"
    vmeta = read_build_json(vec / "meta.json") if (vec / "meta.json").is_file() else None
    # file and folder names on the board: safe whatever the model and board are called
    safe = name_from(meta["name"])
    tmp = tar_tmp = None
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".package.", dir=out))
        shutil.copytree(HOST_DIR / "cfgen_driver", tmp / "cfgen_driver",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        pkg_meta = dict(meta, build_dir=str(out))  # off-board convenience; ignored when absent
        driver().meta.save(pkg_meta, tmp)
        names = {}
        if bit is not None:
            names["bit"] = f"{meta['ip']['top']}.bit"  # an identifier (checked by the metadata)
            shutil.copy2(bit, tmp / names["bit"])
        if hwh is not None:
            names["hwh"] = f"{meta['ip']['top']}.hwh"  # pynq finds <name>.hwh next to <name>.bit
            shutil.copy2(hwh, tmp / names["hwh"])
        if vmeta is not None:
            (tmp / "vectors").mkdir()
            output = vmeta.get("output")
            extra = (f"{output}.npy",) if isinstance(output, str) and output == name_from(output) else ()
            for f in VECTOR_FILES + extra:
                if (vec / f).is_file():
                    shutil.copy2(vec / f, tmp / "vectors" / f)
        if meta.get("weights"):
            # run-time weights: the driver loads these after the overlay (docs/WEIGHTS.md)
            wdir = out / "weights"
            if not all((wdir / f).is_file() for f in ("weights.json", "weights.bin")):
                raise BuildError(f"{out}: this build loads its weights at run time and weights/ "
                                 "lacks weights.json / weights.bin: rebuild")
            (tmp / "weights").mkdir()
            for f in ("weights.json", "weights.bin"):
                shutil.copy2(wdir / f, tmp / "weights" / f)
        render_notebook(tmp / NOTEBOOK, pkg_meta, package=True)
        created = datetime.datetime.now().isoformat(timespec="seconds")
        (tmp / "README.md").write_text(jinja_env().get_template("README.md.j2").render(
            meta=pkg_meta, complete=not missing, missing=missing, bitfile=names.get("bit"),
            hwhfile=names.get("hwh"), build_dir=str(out), created=created, safe_name=safe))
        files = {str(p.relative_to(tmp)): _sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        manifest = {"name": meta["name"], "board": meta["board"], "created": created, "complete": not missing,
                    "missing": missing, "overlay": {"bit": str(bit) if bit else None, "hwh": str(hwh) if hwh else None},
                    "files": files}
        (tmp / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
        for d in [tmp] + [p for p in tmp.rglob("*") if p.is_dir()]:
            d.chmod(0o755)
        fd, tar_tmp = tempfile.mkstemp(prefix=".package.", suffix=".tar.gz", dir=out)
        os.close(fd)
        tar_tmp = Path(tar_tmp)
        with tarfile.open(tar_tmp, "w:gz") as t:
            t.add(tmp, arcname=f"{safe}-{name_from(str(meta['board']), 'board')}")
        dest = out / "package"
        if dest.is_symlink() or dest.is_file():
            dest.unlink()
        elif dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
        tmp = None
        tar = out / "package.tar.gz"
        os.replace(tar_tmp, tar)
        tar_tmp = None
        driver().meta.save(meta, out / "host")  # keep the build's copy in step
    except OSError as e:
        raise BuildError(f"cannot write the package into {one_line(out)}: {one_line(e, 200)}") from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if tar_tmp is not None:
            tar_tmp.unlink(missing_ok=True)
    log(f"wrote {dest}/ ({len(manifest['files']) + 1} files) and {tar}")
    if missing:
        warn("WARNING: package INCOMPLETE: " + "; ".join(missing) + ". The driver, metadata, notebook and "
             "vectors are there; copy it to the board after `make bitstream` && `make package`.")
    return manifest


def main(argv=None) -> int:
    p = parser("python -m generator.flows.package", __doc__)
    p.add_argument("out", help="build folder")
    p.add_argument("--strict", action="store_true", help="refuse (exit 2) when the bitstream is missing")
    p.add_argument("--class-names", default=None,
                   help="comma-separated class names, one per class (default: from the data set)")
    a = p.parse_args(argv)
    try:
        names = a.class_names.split(",") if a.class_names is not None else None
        make_package(a.out, strict=a.strict, class_names=names)
    except (CfgenError, driver().DriverError) as e:
        print(f"error: {one_line(e, 400)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
